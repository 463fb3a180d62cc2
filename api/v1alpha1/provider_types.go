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

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Vendor names. Each equals the JSON name of the vendor's block in a provider
// spec and in an EmbedTokenRequest, so that a request's block can be matched
// against its provider's without a lookup table.
const (
	VendorQrvey     = "qrvey"
	VendorQlikCloud = "qlikCloud"
	VendorBoldBI    = "boldBI"
	VendorJWT       = "jwt"
	VendorOAuth2    = "oauth2"
	VendorHTTP      = "http"
)

// EmbedProviderSpec configures one connection to a vendor. It is shared by
// EmbedProvider and ClusterEmbedProvider so both kinds behave the same.
// +kubebuilder:validation:XValidation:rule="[has(self.qrvey), has(self.qlikCloud), has(self.boldBI), has(self.jwt), has(self.oauth2), has(self.http)].filter(x, x).size() == 1",message="exactly one vendor block must be set: qrvey, qlikCloud, boldBI, jwt, oauth2 or http"
// +kubebuilder:validation:XValidation:rule="self.allowInsecureHTTP || ((!has(self.qrvey) || self.qrvey.url.startsWith('https://')) && (!has(self.qlikCloud) || self.qlikCloud.tenantURL.startsWith('https://')) && (!has(self.boldBI) || self.boldBI.serverURL.startsWith('https://')) && (!has(self.oauth2) || self.oauth2.tokenURL.startsWith('https://')) && (!has(self.http) || self.http.url.startsWith('https://')))",message="vendor URLs must use https:// unless allowInsecureHTTP is true"
type EmbedProviderSpec struct {
	VendorConfig `json:",inline"`

	// Timeout bounds each call to the vendor.
	// +optional
	// +kubebuilder:default="10s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s') && duration(self) <= duration('5m')",message="timeout must be greater than 0s and at most 5m"
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// CABundleSecretRef points at a PEM bundle of certificate authorities to
	// trust for the vendor's TLS certificate, in addition to the system roots.
	// Certificates are always verified: there is no option to skip that.
	// +optional
	CABundleSecretRef *SecretKeySelector `json:"caBundleSecretRef,omitempty"`

	// AllowInsecureHTTP permits plain http:// vendor URLs, for simulators and
	// in-cluster test doubles. Credentials then cross the network in clear.
	// +optional
	// +kubebuilder:default=false
	AllowInsecureHTTP bool `json:"allowInsecureHTTP"`

	// RateLimit caps calls to this vendor across all requests that use this
	// provider, to stay under the vendor's own limits.
	// +optional
	RateLimit *RateLimit `json:"rateLimit,omitempty"`

	// ReissueOnCredentialChange re-issues every token of this provider when a
	// credential Secret changes, so a revoked credential does not leave tokens
	// minted with it in use. Defaults to true.
	// +optional
	// +kubebuilder:default=true
	ReissueOnCredentialChange *bool `json:"reissueOnCredentialChange,omitempty"`

	// MaxLifetime caps the lifetime any request may ask of this provider, so
	// a namespace cannot hold a token minted with the platform's credential
	// for longer than the platform allows. A request asking for more gets a
	// token of MaxLifetime, and its Ready message says so. Defaults to 24h.
	// The jwt block's own maxLifetime, when shorter, caps further.
	// +optional
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="maxLifetime must be at least 1s"
	MaxLifetime *metav1.Duration `json:"maxLifetime,omitempty"`

	// RequestValidations are CEL rules every EmbedTokenRequest using this
	// provider must pass before the vendor is called: what a namespace may
	// ask for with this credential (which users, tenants, claims, scopes).
	// Each expression sees `object` (the EmbedTokenRequest: metadata and
	// spec) and `namespaceObject` (its Namespace: metadata), named as in a
	// ValidatingAdmissionPolicy, and must return a bool. A request failing a
	// rule reports Ready=False, reason RequestDenied, with the rule's message,
	// and costs no vendor call.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	RequestValidations []RequestValidation `json:"requestValidations,omitempty"`
}

// RequestValidation is one CEL rule of a provider's request policy.
type RequestValidation struct {
	// Expression is a CEL expression returning bool; true admits the request.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Expression string `json:"expression"`

	// Message explains a denial to the request's owner; when empty the
	// expression itself is shown.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// RateLimit is a token bucket shared by every request using one provider.
type RateLimit struct {
	// RequestsPerSecond is the sustained rate of vendor calls.
	// +kubebuilder:validation:Minimum=1
	RequestsPerSecond int32 `json:"requestsPerSecond"`

	// Burst is the number of calls allowed at once above the sustained rate.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Burst int32 `json:"burst,omitempty"`
}

// VendorConfig holds one pointer per vendor; exactly one is set. Adding a
// vendor means adding a field here, a package under internal/provider, and a
// line in cmd/main.go: the controller itself does not change.
type VendorConfig struct {
	// Qrvey issues opaque embed tokens from an API key.
	// +optional
	Qrvey *QrveyProvider `json:"qrvey,omitempty"`
	// QlikCloud issues OAuth access tokens that impersonate a user.
	// +optional
	QlikCloud *QlikCloudProvider `json:"qlikCloud,omitempty"`
	// BoldBI issues embed tokens from an embed secret.
	// +optional
	BoldBI *BoldBIProvider `json:"boldBI,omitempty"`
	// JWT signs tokens locally for vendors that trust a shared or private key.
	// +optional
	JWT *JWTProvider `json:"jwt,omitempty"`
	// OAuth2 obtains tokens from any RFC 6749 token endpoint.
	// +optional
	OAuth2 *OAuth2Provider `json:"oauth2,omitempty"`
	// HTTP calls any token endpoint described declaratively.
	// +optional
	HTTP *HTTPProvider `json:"http,omitempty"`
}

// QrveyProvider is the connection to a Qrvey instance.
type QrveyProvider struct {
	// URL of the Qrvey instance, e.g. https://acme.qrveyapp.com.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && self.matches('^https?://[^/]+')",message="url must be an absolute http(s) URL"
	URL string `json:"url"`

	// APIKeySecretRef is the Secret key holding the Qrvey API key.
	APIKeySecretRef SecretKeySelector `json:"apiKeySecretRef"`
}

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

// BoldBIProvider is a Bold BI site with embedding enabled.
type BoldBIProvider struct {
	// ServerURL of the Bold BI server, e.g. https://bi.example.com/bi.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && self.matches('^https?://[^/]+')",message="serverURL must be an absolute http(s) URL"
	ServerURL string `json:"serverURL"`

	// SiteIdentifier of the site, e.g. site/site1.
	// +kubebuilder:validation:MinLength=1
	SiteIdentifier string `json:"siteIdentifier"`

	// EmbedSecretSecretRef is the Secret key holding the site's embed secret.
	EmbedSecretSecretRef SecretKeySelector `json:"embedSecretSecretRef"`
}

// JWTProvider signs tokens with a key the vendor trusts (Tableau connected
// apps, Metabase static embedding, Sisense, Grafana, shared-secret widgets).
type JWTProvider struct {
	// Algorithm used to sign.
	// +kubebuilder:validation:Enum=HS256;HS384;HS512;RS256;ES256
	Algorithm string `json:"algorithm"`

	// SigningKeySecretRef is the Secret key holding the HMAC secret (raw
	// bytes) or the PEM-encoded private key.
	SigningKeySecretRef SecretKeySelector `json:"signingKeySecretRef"`

	// Issuer sets the iss claim.
	// +optional
	Issuer string `json:"issuer,omitempty"`

	// Audience sets the aud claim.
	// +optional
	Audience string `json:"audience,omitempty"`

	// KeyID sets the kid header.
	// +optional
	KeyID string `json:"keyID,omitempty"`

	// Headers adds fields to the JWT header.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!('alg' in self) && !('typ' in self) && !('kid' in self)",message="headers cannot set alg, typ or kid: use algorithm and keyID"
	Headers map[string]string `json:"headers,omitempty"`

	// MaxLifetime caps exp, for vendors that reject tokens valid for longer
	// (Tableau: 10m).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="maxLifetime must be positive"
	MaxLifetime *metav1.Duration `json:"maxLifetime,omitempty"`
}

// OAuth2Provider is a client of an RFC 6749 token endpoint.
type OAuth2Provider struct {
	// TokenURL of the authorization server.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && self.matches('^https?://[^/]+')",message="tokenURL must be an absolute http(s) URL"
	TokenURL string `json:"tokenURL"`

	// ClientID of the OAuth client.
	// +kubebuilder:validation:MinLength=1
	ClientID string `json:"clientID"`

	// ClientSecretSecretRef is the Secret key holding the client secret.
	ClientSecretSecretRef SecretKeySelector `json:"clientSecretSecretRef"`

	// ClientAuthMethod says how the client authenticates.
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
}

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
	Expiry *HTTPExpiry `json:"expiry,omitempty"`
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

// HTTPExpiry is how a generic HTTP provider learns a token's expiry when the
// response does not say.
// +kubebuilder:validation:XValidation:rule="has(self.fromJWT) != has(self.duration)",message="exactly one of fromJWT and duration must be set"
type HTTPExpiry struct {
	// FromJWT reads the exp claim of the token.
	// +optional
	FromJWT *bool `json:"fromJWT,omitempty"`
	// Duration is a fixed lifetime counted from the call.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	Duration *metav1.Duration `json:"duration,omitempty"`
}

// EmbedProviderStatus reports whether the connection is usable.
type EmbedProviderStatus struct {
	// Conditions: Ready says the configuration is valid and the credentials
	// resolve.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Vendor is the vendor this provider talks to.
	// +optional
	Vendor string `json:"vendor,omitempty"`

	// CredentialsVersion fingerprints the resource versions of the credential
	// Secrets (not their content). It changes when a credential is rotated,
	// which re-issues the provider's tokens if reissueOnCredentialChange.
	// +optional
	CredentialsVersion string `json:"credentialsVersion,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=eprov,categories=embedtokens
// +kubebuilder:printcolumn:name="Vendor",type=string,JSONPath=`.status.vendor`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// EmbedProvider is a vendor connection usable by EmbedTokenRequests in its
// own namespace. It reads credential Secrets only from that namespace.
type EmbedProvider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   EmbedProviderSpec   `json:"spec"`
	Status EmbedProviderStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// EmbedProviderList is a list of EmbedProviders.
type EmbedProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EmbedProvider `json:"items"`
}

// ClusterEmbedProviderSpec is a provider spec plus the namespaces allowed to use it.
// A cluster-scoped object has no namespace of its own, so every Secret
// reference must name one; otherwise the reference could only be guessed.
// +kubebuilder:validation:XValidation:rule="(!has(self.qrvey) || has(self.qrvey.apiKeySecretRef.__namespace__)) && (!has(self.qlikCloud) || has(self.qlikCloud.clientSecretSecretRef.__namespace__)) && (!has(self.boldBI) || has(self.boldBI.embedSecretSecretRef.__namespace__)) && (!has(self.jwt) || has(self.jwt.signingKeySecretRef.__namespace__)) && (!has(self.oauth2) || has(self.oauth2.clientSecretSecretRef.__namespace__)) && (!has(self.http) || !has(self.http.headers) || self.http.headers.all(h, !has(h.valueFrom) || has(h.valueFrom.secretKeyRef.__namespace__))) && (!has(self.caBundleSecretRef) || has(self.caBundleSecretRef.__namespace__))",message="every Secret reference of a ClusterEmbedProvider must set namespace"
type ClusterEmbedProviderSpec struct {
	EmbedProviderSpec `json:",inline"`

	// NamespaceSelector limits which namespaces' EmbedTokenRequests may use
	// this provider. Empty selects every namespace.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",message="namespaceSelector operators must be In, NotIn, Exists or DoesNotExist"
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ceprov,categories=embedtokens
// +kubebuilder:printcolumn:name="Vendor",type=string,JSONPath=`.status.vendor`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ClusterEmbedProvider is a vendor connection a platform team shares with
// many namespaces. Its Secret references name their namespace.
type ClusterEmbedProvider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ClusterEmbedProviderSpec `json:"spec"`
	Status EmbedProviderStatus      `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ClusterEmbedProviderList is a list of ClusterEmbedProviders.
type ClusterEmbedProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterEmbedProvider `json:"items"`
}

func init() {
	SchemeBuilder.Register(&EmbedProvider{}, &EmbedProviderList{}, &ClusterEmbedProvider{}, &ClusterEmbedProviderList{})
}
