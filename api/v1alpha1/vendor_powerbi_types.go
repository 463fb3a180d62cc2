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
// block join the unions in zz_generated.vendors.go.

// VendorPowerBI names the Power BI block of a provider and of a request. It
// equals the block's JSON name, as every Vendor* constant does.
// +embedtokens:vendor:doc="PowerBI issues Power BI Embedded embed tokens with a Microsoft Entra ID service principal."
const VendorPowerBI = "powerBI"

// Power BI clouds, the values of PowerBIProvider.Cloud. Each names the
// Microsoft Entra ID authority, the Power BI REST API and the token scope of
// one cloud, which must be used together.
const (
	// PowerBICloudPublic is the commercial cloud (app.powerbi.com).
	PowerBICloudPublic = "Public"
	// PowerBICloudUSGovernment is Power BI for US Government (GCC).
	PowerBICloudUSGovernment = "USGovernment"
	// PowerBICloudUSGovernmentHigh is Power BI for US Government, high
	// security (GCC High, "DoD Contractors").
	PowerBICloudUSGovernmentHigh = "USGovernmentHigh"
	// PowerBICloudUSGovernmentDoD is Power BI for the US Department of Defense.
	PowerBICloudUSGovernmentDoD = "USGovernmentDoD"
	// PowerBICloudChina is Power BI operated by 21Vianet in China.
	PowerBICloudChina = "China"
)

// PowerBIProvider is a Microsoft Entra ID service principal (an app
// registration with a client secret, a federated credential or a
// certificate) allowed to use the Power BI REST API.
// +kubebuilder:validation:XValidation:rule="[has(self.clientSecretSecretRef), has(self.clientAssertion), has(self.clientCertificate)].filter(x, x).size() == 1",message="set exactly one of clientSecretSecretRef, clientAssertion and clientCertificate"
// +kubebuilder:validation:XValidation:rule="!has(self.cloud) || self.cloud == 'Public' || ((!has(self.apiURL) || self.apiURL != 'https://api.powerbi.com') && (!has(self.scope) || self.scope != 'https://analysis.windows.net/powerbi/api/.default'))",message="cloud sets apiURL and scope: remove the public cloud's apiURL and scope (an older operator's defaults) from a provider of another cloud"
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
	// client secret. Set it, clientAssertion or clientCertificate.
	// +optional
	ClientSecretSecretRef *SecretKeySelector `json:"clientSecretSecretRef,omitempty"`

	// ClientAssertion signs in with a federated identity credential of the
	// app registration instead of a client secret: a token of a Kubernetes
	// ServiceAccount, whose issuer, subject and audience the credential
	// names. Set it, clientSecretSecretRef or clientCertificate.
	// +optional
	ClientAssertion *ClientAssertion `json:"clientAssertion,omitempty"`

	// ClientCertificate signs in with a certificate credential of the app
	// registration: assertions signed with the certificate's private key.
	// Set it, clientSecretSecretRef or clientAssertion.
	// +optional
	ClientCertificate *ClientCertificate `json:"clientCertificate,omitempty"`

	// Cloud is the Power BI cloud the tenant lives in. It sets the
	// authority, the API URL and the scope together, as Microsoft's samples
	// pair them: Public (login.microsoftonline.com, api.powerbi.com),
	// USGovernment (login.microsoftonline.com, api.powerbigov.us),
	// USGovernmentHigh (login.microsoftonline.us, api.high.powerbigov.us),
	// USGovernmentDoD (login.microsoftonline.us, api.mil.powerbigov.us) and
	// China (login.chinacloudapi.cn, api.powerbi.cn). authorityURL, apiURL
	// and scope, when set, override the cloud's.
	// +optional
	// +kubebuilder:default=Public
	// +kubebuilder:validation:Enum=Public;USGovernment;USGovernmentHigh;USGovernmentDoD;China
	Cloud string `json:"cloud,omitempty"`

	// AuthorityURL of Microsoft Entra ID; overrides the cloud's, e.g.
	// https://login.microsoftonline.us for USGovernmentHigh.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && self.matches('^https?://[^/]+')",message="authorityURL must be an absolute http(s) URL"
	AuthorityURL string `json:"authorityURL,omitempty"`

	// APIURL of the Power BI REST API; overrides the cloud's, e.g.
	// https://api.powerbigov.us for USGovernment.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && self.matches('^https?://[^/]+')",message="apiURL must be an absolute http(s) URL"
	APIURL string `json:"apiURL,omitempty"`

	// Scope requested from Microsoft Entra ID for the Power BI API;
	// overrides the cloud's, e.g.
	// https://analysis.usgovcloudapi.net/powerbi/api/.default for
	// USGovernment. A token of another cloud's scope is refused by the API.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Scope string `json:"scope,omitempty"`
}

// PowerBIParams say what one embed token may open (Power BI's
// GenerateTokenRequestV2): reports, datasets and workspaces, and the
// effective identities for row-level security.
// +kubebuilder:validation:XValidation:rule="(has(self.reports) && size(self.reports) > 0) || (has(self.datasets) && size(self.datasets) > 0)",message="powerBI needs at least one report or dataset"
type PowerBIParams struct {
	// ProfileID is the service principal profile (a GUID) the token is
	// generated as, sent as the X-PowerBI-Profile-Id header: the profile
	// of one of an ISV's customers, in the multi-tenancy model Power BI
	// Embedded recommends. The profile must own (have access to) the
	// workspaces of the reports and datasets. Without it the service
	// principal acts as itself.
	// +optional
	// +kubebuilder:validation:MaxLength=36
	// +kubebuilder:validation:Pattern=`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`
	ProfileID string `json:"profileID,omitempty"`

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

	// DatasourceIdentities are the identities used to connect to data
	// sources with single sign-on (DirectQuery SSO), each for the data
	// sources it lists.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	DatasourceIdentities []PowerBIDatasourceIdentity `json:"datasourceIdentities,omitempty"`
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
// +kubebuilder:validation:XValidation:rule="(has(self.datasets) && size(self.datasets) > 0) || (has(self.reports) && size(self.reports) > 0)",message="an identity needs datasets or reports (paginated reports) it applies to"
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
	// datasets too. An identity needs datasets, reports or both.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	// +kubebuilder:validation:items:MaxLength=36
	// +kubebuilder:validation:items:Pattern=`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`
	// +listType=atomic
	Datasets []string `json:"datasets,omitempty"`
	// Reports (GUIDs) the identity applies to: row-level security of
	// paginated reports, which Power BI supports only for them.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	// +kubebuilder:validation:items:MaxLength=36
	// +kubebuilder:validation:items:Pattern=`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`
	// +listType=atomic
	Reports []string `json:"reports,omitempty"`
	// CustomData passed to the dataset's CUSTOMDATA() function.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	CustomData string `json:"customData,omitempty"`
	// IdentityBlob is the identity a dataset with a DirectQuery connection
	// to Azure SQL connects as (token-based identity): an Entra ID access
	// token for Azure SQL. It is a credential: prefer filling it per call
	// through the token endpoint's template parameters over storing it in
	// a request.
	// +optional
	IdentityBlob *PowerBIIdentityBlob `json:"identityBlob,omitempty"`
}

// PowerBIIdentityBlob is Power BI's IdentityBlob object.
type PowerBIIdentityBlob struct {
	// Value of the blob, e.g. an Entra ID access token for Azure SQL.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=16384
	Value string `json:"value"`
}

// PowerBIDatasourceIdentity is the identity used to connect to some data
// sources with single sign-on (Power BI's DatasourceIdentity).
type PowerBIDatasourceIdentity struct {
	// IdentityBlob specifies the identity, e.g. an OAuth access token of
	// the data source. It is a credential, as PowerBIIdentity.IdentityBlob is.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=16384
	IdentityBlob string `json:"identityBlob"`
	// Datasources the identity applies to.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	Datasources []PowerBIDatasourceSelector `json:"datasources"`
}

// PowerBIDatasourceSelector names one data source by its connection details,
// as Power BI's Get Datasources answers them.
type PowerBIDatasourceSelector struct {
	// DatasourceType of the data source, e.g. Sql or AnalysisServices.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	DatasourceType string `json:"datasourceType"`
	// ConnectionDetails of the data source.
	ConnectionDetails PowerBIDatasourceConnectionDetails `json:"connectionDetails"`
}

// PowerBIDatasourceConnectionDetails are a data source's connection details.
// +kubebuilder:validation:XValidation:rule="has(self.server) || has(self.database) || has(self.url)",message="connectionDetails needs a server, database or url"
type PowerBIDatasourceConnectionDetails struct {
	// Server of the connection.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Server string `json:"server,omitempty"`
	// Database of the connection.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Database string `json:"database,omitempty"`
	// URL of the connection.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	URL string `json:"url,omitempty"`
}
