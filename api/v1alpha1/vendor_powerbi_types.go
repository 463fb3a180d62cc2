/*
Copyright 2026 The embed-token-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package v1alpha1

// This file is the whole API of one vendor, Power BI Embedded: embed tokens
// from the Power BI REST API's GenerateToken, called with a Microsoft Entra
// ID access token of a service principal. Its provider block and request
// block join the unions in vendors.go.

// VendorPowerBI names the Power BI block of a provider and of a request. It
// equals the block's JSON name, as every Vendor* constant does.
const VendorPowerBI = "powerBI"

// PowerBIProvider is a Microsoft Entra ID service principal (an app
// registration with a client secret) allowed to use the Power BI REST API.
type PowerBIProvider struct {
	// TenantID of the Microsoft Entra ID tenant: its GUID or a domain such
	// as contoso.onmicrosoft.com.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9.-]*$`
	TenantID string `json:"tenantID"`

	// ClientID (application ID) of the app registration.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	ClientID string `json:"clientID"`

	// ClientSecretSecretRef is the Secret key holding the app registration's
	// client secret.
	ClientSecretSecretRef SecretKeySelector `json:"clientSecretSecretRef"`

	// AuthorityURL of Microsoft Entra ID; a sovereign cloud has its own,
	// e.g. https://login.microsoftonline.us.
	// +optional
	// +kubebuilder:default="https://login.microsoftonline.com"
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && self.matches('^https?://[^/]+')",message="authorityURL must be an absolute http(s) URL"
	AuthorityURL string `json:"authorityURL,omitempty"`

	// APIURL of the Power BI REST API; a sovereign cloud has its own, e.g.
	// https://api.powerbigov.us.
	// +optional
	// +kubebuilder:default="https://api.powerbi.com"
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && self.matches('^https?://[^/]+')",message="apiURL must be an absolute http(s) URL"
	APIURL string `json:"apiURL,omitempty"`

	// Scope requested from Microsoft Entra ID for the Power BI API.
	// +optional
	// +kubebuilder:default="https://analysis.windows.net/powerbi/api/.default"
	// +kubebuilder:validation:MaxLength=1024
	Scope string `json:"scope,omitempty"`
}

// PowerBIParams say what one embed token may open (Power BI's
// GenerateTokenRequestV2): reports, datasets and workspaces, and the
// effective identities for row-level security.
// +kubebuilder:validation:XValidation:rule="(has(self.reports) && size(self.reports) > 0) || (has(self.datasets) && size(self.datasets) > 0)",message="powerBI needs at least one report or dataset"
type PowerBIParams struct {
	// Reports the token may open.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	Reports []PowerBIReport `json:"reports,omitempty"`

	// Datasets the token may query; Power BI wants the datasets of the
	// reports listed here too.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	Datasets []PowerBIDataset `json:"datasets,omitempty"`

	// TargetWorkspaces in which the token may save new reports.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	TargetWorkspaces []PowerBIWorkspace `json:"targetWorkspaces,omitempty"`

	// Identities are the effective identities for row-level security: who
	// the viewer is and which roles apply, per dataset.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	Identities []PowerBIIdentity `json:"identities,omitempty"`
}

// PowerBIReport is one report of a token.
type PowerBIReport struct {
	// ID of the report (a GUID).
	// +kubebuilder:validation:MaxLength=36
	// +kubebuilder:validation:Pattern=`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`
	ID string `json:"id"`
	// AllowEdit lets the viewer edit the report.
	// +optional
	AllowEdit *bool `json:"allowEdit,omitempty"`
}

// PowerBIDataset is one dataset of a token.
type PowerBIDataset struct {
	// ID of the dataset (a GUID).
	// +kubebuilder:validation:MaxLength=36
	// +kubebuilder:validation:Pattern=`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`
	ID string `json:"id"`
	// XMLAPermissions of the token on the dataset; Power BI's default is Off.
	// +optional
	// +kubebuilder:validation:Enum=Off;ReadOnly
	XMLAPermissions string `json:"xmlaPermissions,omitempty"`
}

// PowerBIWorkspace is one workspace a token may save reports in.
type PowerBIWorkspace struct {
	// ID of the workspace (a GUID).
	// +kubebuilder:validation:MaxLength=36
	// +kubebuilder:validation:Pattern=`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`
	ID string `json:"id"`
}

// PowerBIIdentity is an effective identity for row-level security.
type PowerBIIdentity struct {
	// Username the dataset's RLS rules see (USERNAME(), USERPRINCIPALNAME()).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Username string `json:"username"`
	// Roles of the dataset's RLS that apply to this identity.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=atomic
	Roles []string `json:"roles,omitempty"`
	// Datasets (GUIDs) the identity applies to; each must be listed in
	// datasets too.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=50
	// +kubebuilder:validation:items:MaxLength=36
	// +kubebuilder:validation:items:Pattern=`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`
	// +listType=atomic
	Datasets []string `json:"datasets"`
	// CustomData passed to the dataset's CUSTOMDATA() function.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	CustomData string `json:"customData,omitempty"`
}
