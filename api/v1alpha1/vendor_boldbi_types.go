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

// This file is the whole API of one vendor, Bold BI: embed tokens authorized
// with a site's embed secret. Its provider block and request block join the
// unions in zz_generated.vendors.go.

// VendorBoldBI names the Bold BI block of a provider and of a request. It
// equals the block's JSON name, as every Vendor* constant does.
// +embedtokens:vendor:doc="BoldBI issues embed tokens from an embed secret."
const VendorBoldBI = "boldBI"

// BoldBIProvider is a Bold BI site with embedding enabled.
type BoldBIProvider struct {
	// ServerURL of the Bold BI server, e.g. https://bi.example.com/bi.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && self.matches('^https?://[^/]+')",message="serverURL must be an absolute http(s) URL"
	ServerURL string `json:"serverURL"`

	// SiteIdentifier of the site, e.g. site/site1 on Bold BI Enterprise; ""
	// on Bold BI Cloud, whose API path then has an empty segment
	// ({serverURL}/api//embed/authorize), as Bold BI's own clients build it.
	SiteIdentifier string `json:"siteIdentifier"`

	// EmbedSecretSecretRef is the Secret key holding the site's embed secret.
	EmbedSecretSecretRef SecretKeySelector `json:"embedSecretSecretRef"`
}

// BoldBIParams are the embedding user and dashboard.
type BoldBIParams struct {
	// Email of the Bold BI user.
	// +kubebuilder:validation:MinLength=1
	Email string `json:"email"`
	// DashboardID to embed.
	// +optional
	DashboardID string `json:"dashboardID,omitempty"`
	// DatasourceFilters applied to the embed.
	// +optional
	DatasourceFilters []NameValue `json:"datasourceFilters,omitempty"`
	// DashboardParameters applied to the embed.
	// +optional
	DashboardParameters []NameValue `json:"dashboardParameters,omitempty"`
	// CustomAttributes applied to the embed.
	// +optional
	CustomAttributes []NameValue `json:"customAttributes,omitempty"`
}
