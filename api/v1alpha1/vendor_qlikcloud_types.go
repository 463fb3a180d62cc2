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

// This file is the whole API of one vendor, Qlik Cloud: OAuth access tokens
// that impersonate a user. Its provider block and request block join the
// unions in zz_generated.vendors.go.

// VendorQlikCloud names the Qlik Cloud block of a provider and of a request.
// It equals the block's JSON name, as every Vendor* constant does.
// +embedtokens:vendor:doc="QlikCloud issues OAuth access tokens that impersonate a user."
const VendorQlikCloud = "qlikCloud"

// QlikCloudProvider is an OAuth client of a Qlik Cloud tenant.
type QlikCloudProvider struct {
	// TenantURL of the Qlik Cloud tenant, e.g. https://acme.eu.qlikcloud.com.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && self.matches('^https?://[^/]+')",message="tenantURL must be an absolute http(s) URL"
	TenantURL string `json:"tenantURL"`

	// ClientID of the OAuth client.
	// +kubebuilder:validation:MinLength=1
	ClientID string `json:"clientID"`

	// ClientSecretSecretRef is the Secret key holding the OAuth client secret.
	ClientSecretSecretRef SecretKeySelector `json:"clientSecretSecretRef"`

	// Scope requested for the token.
	// +optional
	// +kubebuilder:default="user_default"
	Scope string `json:"scope,omitempty"`

	// RevokeReplacedTokens revokes the previous token after a new one is
	// stored, so users do not hit Qlik's per-user token limit.
	// +optional
	RevokeReplacedTokens bool `json:"revokeReplacedTokens,omitempty"`
}

// QlikCloudParams choose the impersonated user; without a user the
// client_credentials grant is used.
type QlikCloudParams struct {
	// UserLookup identifies the user to impersonate.
	// +optional
	UserLookup *QlikUserLookup `json:"userLookup,omitempty"`
}

// QlikUserLookup is Qlik's user_lookup object.
type QlikUserLookup struct {
	// Field to match the value against.
	// +optional
	// +kubebuilder:default=subject
	// +kubebuilder:validation:Enum=subject;userId;email
	Field string `json:"field,omitempty"`
	// Value of the field.
	// +kubebuilder:validation:MinLength=1
	Value string `json:"value"`
}
