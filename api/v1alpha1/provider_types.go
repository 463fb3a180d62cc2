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

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// EmbedProviderSpec configures one connection to a vendor. It is shared by
// EmbedProvider and ClusterEmbedProvider so both kinds behave the same.
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
	// Certificates are always verified: there is no option to skip that. The
	// bundle may hold at most 100 certificates in 128 KiB; a larger one makes
	// the provider InvalidCredentials.
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
	// for longer than the platform allows. A request asking for more asks
	// the vendor for MaxLifetime, and its Ready message says so; a token the
	// vendor issues for longer anyway is handled as LifetimeExceedsMax says.
	// Defaults to 24h. The jwt block's own maxLifetime, when shorter, caps
	// further.
	// +optional
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="maxLifetime must be at least 1s"
	MaxLifetime *metav1.Duration `json:"maxLifetime,omitempty"`

	// LifetimeExceedsMax says what to do with a token the vendor issues for
	// longer than MaxLifetime, as vendors that decide the lifetime
	// themselves, or ignore the one asked for, do. Refuse (the default)
	// does not store it: the request reports LifetimeExceedsMax, keeps the
	// token it holds, and the refused token is revoked where the vendor can
	// revoke. RenewAtMax stores it but records it as expiring MaxLifetime
	// after issue, so it is renewed (and, where the vendor can, revoked)
	// before then; the Ready message says so. The token itself stays valid
	// at the vendor for as long as the vendor decided.
	// +optional
	// +kubebuilder:default=Refuse
	// +kubebuilder:validation:Enum=Refuse;RenewAtMax
	LifetimeExceedsMax string `json:"lifetimeExceedsMax,omitempty"`

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

// Values of spec.lifetimeExceedsMax.
const (
	// LifetimeExceedsMaxRefuse refuses a token that outlives maxLifetime.
	LifetimeExceedsMaxRefuse = "Refuse"
	// LifetimeExceedsMaxRenewAtMax stores such a token and renews it as if
	// it expired maxLifetime after issue.
	LifetimeExceedsMaxRenewAtMax = "RenewAtMax"
)

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

	// Spec may not use the operator pod's own cloud identity (QuickSight's
	// podIdentity): that identity is the operator's, not the namespace's.
	// +kubebuilder:validation:XValidation:rule="!has(self.quickSight) || !has(self.quickSight.credentials.podIdentity)",message="quickSight.credentials.podIdentity is the operator's own IAM identity: only a ClusterEmbedProvider may use it"
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

// The namespace rule on ClusterEmbedProviderSpec is written by
// hack/vendorunions from the types below the spec (go generate).

// ClusterEmbedProviderSpec is a provider spec plus the namespaces allowed to use it.
// A cluster-scoped object has no namespace of its own, so every Secret
// and ServiceAccount reference must name one; otherwise the reference could only be guessed.
// +kubebuilder:validation:XValidation:rule="(!has(self.boldBI) || has(self.boldBI.embedSecretSecretRef.__namespace__)) && (!has(self.http) || ((!has(self.http.headers) || self.http.headers.all(h, (!has(h.valueFrom) || has(h.valueFrom.secretKeyRef.__namespace__)))) && (!has(self.http.auth) || ((!has(self.http.auth.clientCredentials) || has(self.http.auth.clientCredentials.clientSecretSecretRef.__namespace__)) && (!has(self.http.auth.login) || (!has(self.http.auth.login.headers) || self.http.auth.login.headers.all(h, (!has(h.valueFrom) || has(h.valueFrom.secretKeyRef.__namespace__))))))))) && (!has(self.jwt) || has(self.jwt.signingKeySecretRef.__namespace__)) && (!has(self.looker) || has(self.looker.embedSecretSecretRef.__namespace__)) && (!has(self.oauth2) || ((!has(self.oauth2.clientSecretSecretRef) || has(self.oauth2.clientSecretSecretRef.__namespace__)) && (!has(self.oauth2.clientAssertion) || has(self.oauth2.clientAssertion.serviceAccountRef.__namespace__)) && (!has(self.oauth2.clientCertificate) || (has(self.oauth2.clientCertificate.certificateSecretRef.__namespace__) && (!has(self.oauth2.clientCertificate.privateKeySecretRef) || has(self.oauth2.clientCertificate.privateKeySecretRef.__namespace__)))))) && (!has(self.powerBI) || ((!has(self.powerBI.clientSecretSecretRef) || has(self.powerBI.clientSecretSecretRef.__namespace__)) && (!has(self.powerBI.clientAssertion) || has(self.powerBI.clientAssertion.serviceAccountRef.__namespace__)) && (!has(self.powerBI.clientCertificate) || (has(self.powerBI.clientCertificate.certificateSecretRef.__namespace__) && (!has(self.powerBI.clientCertificate.privateKeySecretRef) || has(self.powerBI.clientCertificate.privateKeySecretRef.__namespace__)))))) && (!has(self.qlikCloud) || has(self.qlikCloud.clientSecretSecretRef.__namespace__)) && (!has(self.qrvey) || has(self.qrvey.apiKeySecretRef.__namespace__)) && (!has(self.quickSight) || (!has(self.quickSight.credentials.secret) || (has(self.quickSight.credentials.secret.accessKeyIDSecretRef.__namespace__) && has(self.quickSight.credentials.secret.secretAccessKeySecretRef.__namespace__) && (!has(self.quickSight.credentials.secret.sessionTokenSecretRef) || has(self.quickSight.credentials.secret.sessionTokenSecretRef.__namespace__))))) && (!has(self.sigma) || has(self.sigma.secretSecretRef.__namespace__)) && (!has(self.superset) || has(self.superset.passwordSecretRef.__namespace__)) && (!has(self.caBundleSecretRef) || has(self.caBundleSecretRef.__namespace__))",message="every Secret reference of a ClusterEmbedProvider must set namespace, and so must every ServiceAccount reference"
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
