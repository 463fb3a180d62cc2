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

// This file is the whole API of one vendor, http: any token endpoint described
// declaratively. Its provider block and request block join the unions in
// zz_generated.vendors.go.

// VendorHTTP names the generic HTTP block of a provider and of a request. It
// equals the block's JSON name, as every Vendor* constant does.
// +embedtokens:vendor:doc="HTTP calls any token endpoint described declaratively."
const VendorHTTP = "http"

// HTTPProvider describes any vendor's token endpoint declaratively.
// +kubebuilder:validation:XValidation:rule="!(has(self.expiresInPath) && has(self.expiresAtPath))",message="expiresInPath and expiresAtPath are mutually exclusive"
// +kubebuilder:validation:XValidation:rule="has(self.expiresInPath) || has(self.expiresAtPath) || (has(self.expiry) && (has(self.expiry.duration) || (has(self.expiry.fromJWT) && self.expiry.fromJWT)))",message="set expiresInPath, expiresAtPath or expiry, so the token's expiry is known"
// +kubebuilder:validation:XValidation:rule="!has(self.expiresAtFormat) || has(self.expiresAtPath)",message="expiresAtFormat needs expiresAtPath"
// +kubebuilder:validation:XValidation:rule="!has(self.successValue) || has(self.successPath)",message="successValue needs successPath"
type HTTPProvider struct {
	// URL of the token endpoint.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && self.matches('^https?://[^/]+')",message="url must be an absolute http(s) URL"
	URL string `json:"url"`

	// Method of the request.
	// +optional
	// +kubebuilder:default=POST
	// +kubebuilder:validation:Enum=GET;POST;PUT
	Method string `json:"method,omitempty"`

	// Headers sent with the request; values may come from Secrets.
	// +optional
	Headers []HTTPHeader `json:"headers,omitempty"`

	// Body is a Go template rendered with .Vars (the request's variables) and
	// the function secret "name" "key". Values are JSON-escaped. Rendering is
	// bounded in output size and work, whatever the template does.
	// +optional
	// +kubebuilder:validation:MaxLength=16384
	Body string `json:"body,omitempty"`

	// TokenPath locates the token in the JSON response, e.g. .data.token.
	// +kubebuilder:validation:MinLength=1
	TokenPath string `json:"tokenPath"`

	// ExpiresInPath locates a lifetime in seconds in the response.
	// +optional
	ExpiresInPath string `json:"expiresInPath,omitempty"`

	// ExpiresAtPath locates an expiry time in the response.
	// +optional
	ExpiresAtPath string `json:"expiresAtPath,omitempty"`

	// ExpiresAtFormat says how to read ExpiresAtPath; detected when omitted.
	// +optional
	// +kubebuilder:validation:Enum=EpochSeconds;EpochMilliseconds;RFC3339
	ExpiresAtFormat string `json:"expiresAtFormat,omitempty"`

	// SuccessPath and SuccessValue add a success check on the response body,
	// for vendors that answer 200 on failure.
	// +optional
	SuccessPath string `json:"successPath,omitempty"`
	// SuccessValue is the value SuccessPath must hold for the response to
	// count as a success: a string exactly, a boolean as true/false, a number
	// by value. Any other value is reported as VendorRejected.
	// +optional
	SuccessValue string `json:"successValue,omitempty"`

	// Expiry is the fallback when the response carries no expiry.
	// +optional
	Expiry *ExpiryFallback `json:"expiry,omitempty"`

	// RequiredJWTClaims names claims the token, a JWT, must carry with a
	// non-empty value (not null, "", [] or {}), read without verifying the
	// signature. A vendor that grants nothing may still answer with a
	// token, its grant empty (Domo's emb claim lists the embeds the token
	// opens); such a token is refused as VendorRejected instead of stored.
	// A token that is not a JWT is InvalidResponse.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=64
	// +listType=atomic
	RequiredJWTClaims []string `json:"requiredJWTClaims,omitempty"`

	// Auth is a first call whose access token this request carries, for
	// vendors that issue embed tokens only to an authenticated client. Its
	// token is shared by every request of the provider until it expires.
	// +optional
	Auth *HTTPAuth `json:"auth,omitempty"`
}

// HTTPHeader is one header of a generic HTTP provider's request.
// +kubebuilder:validation:XValidation:rule="has(self.value) != has(self.valueFrom)",message="exactly one of value and valueFrom must be set"
type HTTPHeader struct {
	// Name of the header.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Value of the header.
	// +optional
	Value *string `json:"value,omitempty"`
	// ValueFrom reads the value from a Secret.
	// +optional
	ValueFrom *HTTPHeaderSource `json:"valueFrom,omitempty"`
}

// HTTPHeaderSource is where a header value comes from.
type HTTPHeaderSource struct {
	// SecretKeyRef is the Secret key holding the value.
	SecretKeyRef SecretKeySelector `json:"secretKeyRef"`
}

// HTTPParams are the variables of a generic HTTP provider's body template.
type HTTPParams struct {
	// Variables available to the body template as .Vars.
	// +optional
	Variables map[string]string `json:"variables,omitempty"`
}

// HTTPAuth is the first step of a chained token flow: one call that returns
// an access token, which the main request then carries in a header or its
// body. The token is cached per provider until shortly before it expires,
// so many embed tokens cost one auth call.
// +kubebuilder:validation:XValidation:rule="has(self.clientCredentials) != has(self.login)",message="exactly one of clientCredentials and login must be set"
type HTTPAuth struct {
	// ClientCredentials obtains the access token with an OAuth 2.0
	// client_credentials grant.
	// +optional
	ClientCredentials *HTTPAuthClientCredentials `json:"clientCredentials,omitempty"`

	// Login obtains the access token with a request described like the
	// main one: url, method, headers, body template and paths.
	// +optional
	Login *HTTPAuthLogin `json:"login,omitempty"`

	// Header sends the access token in a header of the main request. The
	// body template can also print it as {{ .Auth.AccessToken }}; one of
	// the two must use it.
	// +optional
	Header *HTTPAuthHeader `json:"header,omitempty"`
}

// HTTPAuthHeader is the header of the main request that carries the auth
// step's access token.
type HTTPAuthHeader struct {
	// Name of the header.
	// +optional
	// +kubebuilder:default=Authorization
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name,omitempty"`
	// Prefix is written before the token, e.g. "Bearer " (with its space).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Prefix string `json:"prefix,omitempty"`
}

// HTTPAuthClientCredentials is an OAuth 2.0 client_credentials call (RFC
// 6749 section 4.4). The token's expiry is the answer's expires_in, else
// the token's JWT exp claim, else expiry.duration.
// +kubebuilder:validation:XValidation:rule="!(has(self.method) && self.method == 'GET' && has(self.clientAuthMethod) && self.clientAuthMethod == 'client_secret_post')",message="method GET sends the parameters in the URL, so it needs clientAuthMethod client_secret_basic"
// +kubebuilder:validation:XValidation:rule="!has(self.expiry) || !has(self.expiry.fromJWT) || self.expiry.fromJWT",message="expiry.fromJWT false is not supported: a JWT's exp claim is always read when expires_in is absent"
type HTTPAuthClientCredentials struct {
	// TokenURL of the authorization server.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && self.matches('^https?://[^/]+')",message="tokenURL must be an absolute http(s) URL"
	TokenURL string `json:"tokenURL"`

	// Method of the token request. POST sends the parameters as a form
	// body, as RFC 6749 asks; GET sends them in the URL's query, for
	// vendors such as Domo that want it.
	// +optional
	// +kubebuilder:default=POST
	// +kubebuilder:validation:Enum=GET;POST
	Method string `json:"method,omitempty"`

	// ClientID of the OAuth client.
	// +kubebuilder:validation:MinLength=1
	ClientID string `json:"clientID"`

	// ClientSecretSecretRef is the Secret key holding the client secret.
	ClientSecretSecretRef SecretKeySelector `json:"clientSecretSecretRef"`

	// ClientAuthMethod says how the client authenticates: HTTP Basic, or
	// client_id and client_secret in the form body (POST only).
	// +optional
	// +kubebuilder:default=client_secret_basic
	// +kubebuilder:validation:Enum=client_secret_basic;client_secret_post
	ClientAuthMethod string `json:"clientAuthMethod,omitempty"`

	// Scopes requested, sent space-separated.
	// +optional
	Scopes []string `json:"scopes,omitempty"`

	// Audience requested, for servers that support it.
	// +optional
	Audience string `json:"audience,omitempty"`

	// Expiry is the lifetime of access tokens whose answer has no
	// expires_in and which are not JWTs with an exp claim.
	// +optional
	Expiry *ExpiryFallback `json:"expiry,omitempty"`
}

// HTTPAuthLogin is a login request whose JSON answer holds an access token.
// Its body template sees no request variables: its token is shared by every
// request of the provider. The token's expiry is the value at
// expiresInPath, else the token's JWT exp claim, else expiry.duration.
// +kubebuilder:validation:XValidation:rule="!has(self.expiry) || !has(self.expiry.fromJWT) || self.expiry.fromJWT",message="expiry.fromJWT false is not supported: a JWT's exp claim is always read when expiresInPath has no value"
type HTTPAuthLogin struct {
	// URL of the login endpoint.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && self.matches('^https?://[^/]+')",message="url must be an absolute http(s) URL"
	URL string `json:"url"`

	// Method of the request.
	// +optional
	// +kubebuilder:default=POST
	// +kubebuilder:validation:Enum=GET;POST;PUT
	Method string `json:"method,omitempty"`

	// Headers sent with the request; values may come from Secrets.
	// +optional
	Headers []HTTPHeader `json:"headers,omitempty"`

	// Body is a Go template rendered with the function secret "name" "key"
	// only, bounded like spec.http.body. Values are JSON-escaped.
	// +optional
	// +kubebuilder:validation:MaxLength=16384
	Body string `json:"body,omitempty"`

	// TokenPath locates the access token in the JSON response.
	// +kubebuilder:validation:MinLength=1
	TokenPath string `json:"tokenPath"`

	// ExpiresInPath locates the token's lifetime in seconds in the response.
	// +optional
	ExpiresInPath string `json:"expiresInPath,omitempty"`

	// Expiry is the lifetime of access tokens whose answer has no value at
	// expiresInPath and which are not JWTs with an exp claim.
	// +optional
	Expiry *ExpiryFallback `json:"expiry,omitempty"`
}
