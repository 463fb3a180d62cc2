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

// This file is the whole API of one vendor, oauth2: tokens from any RFC 6749
// token endpoint. Its provider block and request block join the unions in
// zz_generated.vendors.go.

import apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

// VendorOAuth2 names the OAuth2 block of a provider and of a request. It
// equals the block's JSON name, as every Vendor* constant does.
// +embedtokens:vendor:doc="OAuth2 obtains tokens from any RFC 6749 token endpoint."
const VendorOAuth2 = "oauth2"

// OAuth2Provider is a client of an RFC 6749 token endpoint. A token's
// expiry is the answer's expires_in, else the access token's JWT exp claim,
// else expiry.duration; with none of them the call fails.
// +kubebuilder:validation:XValidation:rule="!has(self.expiry) || !has(self.expiry.fromJWT) || self.expiry.fromJWT",message="expiry.fromJWT false is not supported: a JWT's exp claim is always read when expires_in is absent"
// +kubebuilder:validation:XValidation:rule="[has(self.clientSecretSecretRef), has(self.clientAssertion), has(self.clientCertificate)].filter(x, x).size() == 1",message="set exactly one of clientSecretSecretRef, clientAssertion and clientCertificate"
type OAuth2Provider struct {
	// TokenURL of the authorization server.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && self.matches('^https?://[^/]+')",message="tokenURL must be an absolute http(s) URL"
	TokenURL string `json:"tokenURL"`

	// ClientID of the OAuth client.
	// +kubebuilder:validation:MinLength=1
	ClientID string `json:"clientID"`

	// ClientSecretSecretRef is the Secret key holding the client secret.
	// Set it, clientAssertion or clientCertificate.
	// +optional
	ClientSecretSecretRef *SecretKeySelector `json:"clientSecretSecretRef,omitempty"`

	// ClientAssertion authenticates the client with a JWT (RFC 7523) instead
	// of a client secret: a token of a Kubernetes ServiceAccount, sent in
	// the body with client_id, whatever clientAuthMethod says. Set it,
	// clientSecretSecretRef or clientCertificate.
	// +optional
	ClientAssertion *ClientAssertion `json:"clientAssertion,omitempty"`

	// ClientCertificate authenticates the client with JWTs it signs with a
	// certificate's private key (private_key_jwt), sent like a
	// clientAssertion. Set it, clientSecretSecretRef or clientAssertion.
	// +optional
	ClientCertificate *ClientCertificate `json:"clientCertificate,omitempty"`

	// ClientAuthMethod says how the client authenticates with a client
	// secret; an assertion (clientAssertion, clientCertificate) is always
	// sent in the body.
	// +optional
	// +kubebuilder:default=client_secret_basic
	// +kubebuilder:validation:Enum=client_secret_basic;client_secret_post
	ClientAuthMethod string `json:"clientAuthMethod,omitempty"`

	// GrantType sent to the token endpoint; any custom URN is allowed.
	// +optional
	// +kubebuilder:default=client_credentials
	GrantType string `json:"grantType,omitempty"`

	// Scopes requested.
	// +optional
	Scopes []string `json:"scopes,omitempty"`

	// Audience requested, for servers that support it.
	// +optional
	Audience string `json:"audience,omitempty"`

	// BodyEncoding of the token request.
	// +optional
	// +kubebuilder:default=form
	// +kubebuilder:validation:Enum=form;json
	BodyEncoding string `json:"bodyEncoding,omitempty"`

	// ExtraParameters is a JSON object of further request parameters. Nested
	// values are only allowed with the json body encoding.
	// +optional
	ExtraParameters *apiextensionsv1.JSON `json:"extraParameters,omitempty"`

	// Expiry is the lifetime of access tokens whose answer has no
	// expires_in (RFC 6749 only recommends it) and which are not JWTs with
	// an exp claim. fromJWT: true states the default.
	// +optional
	Expiry *ExpiryFallback `json:"expiry,omitempty"`
}

// OAuth2Params refine the provider's token request.
type OAuth2Params struct {
	// Scopes replace the provider's scopes.
	// +optional
	Scopes []string `json:"scopes,omitempty"`
	// Audience replaces the provider's audience.
	// +optional
	Audience string `json:"audience,omitempty"`
	// ExtraParameters are merged over the provider's.
	// +optional
	ExtraParameters *apiextensionsv1.JSON `json:"extraParameters,omitempty"`
}
