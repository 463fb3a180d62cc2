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

// Well-known keys the operator reads and writes. They are part of the API:
// applications read the data keys, tools read the annotations.
const (
	// RestartedAtAnnotation on a rolloutRestartTarget's pod template records
	// when the operator last restarted it (RFC 3339 with nanoseconds).
	RestartedAtAnnotation = "embedtokens.io/restartedAt"

	// TokenDigestAnnotation on a pod selected by spec.propagation is the
	// digest (status.tokenDigest) of the last token the operator pushed into
	// it. Changing a pod's annotations makes the kubelet sync the pod at once,
	// and that sync rewrites its Secret volumes.
	TokenDigestAnnotation = "embedtokens.io/tokenDigest" //nolint:gosec // G101: an annotation key, not a credential

	// RefreshAnnotation on an EmbedTokenRequest: setting it to a new value
	// asks for exactly one new token, like cert-manager's renew or Flux's
	// reconcile.fluxcd.io/requestedAt.
	RefreshAnnotation = "embedtokens.io/refresh"

	// SecretTokenKey holds the token in the written Secret.
	SecretTokenKey = "token"
	// SecretExpiresAtKey holds the token's expiry (RFC 3339) in the written Secret.
	SecretExpiresAtKey = "expiresAt"

	// IssuedAtAnnotation and ExpiresAtAnnotation on the written Secret record
	// the token's validity, so the operator knows after a restart whether the
	// stored token is still good without asking the vendor again.
	IssuedAtAnnotation  = "embedtokens.io/issued-at"
	ExpiresAtAnnotation = "embedtokens.io/expires-at"
	// SecretVendorExpiresAtAnnotation on the written Secret is the expiry the
	// vendor stated for its token, present only when ExpiresAtAnnotation
	// records an earlier one: a token longer than the provider's
	// maxLifetime stored under lifetimeExceedsMax: RenewAtMax, or an
	// expiry further away than the operator trusts.
	SecretVendorExpiresAtAnnotation = "embedtokens.io/vendor-expires-at" //nolint:gosec // G101: an annotation key, not a credential
	// InputHashAnnotation on the written Secret fingerprints what the token was
	// issued for (provider, vendor parameters, lifetime), so a spec change
	// re-issues and nothing else does.
	InputHashAnnotation = "embedtokens.io/input-hash"
	// SecretTokenDigestAnnotation on the written Secret is the digest
	// (status.tokenDigest) of the token it holds. The operator caches its
	// Secrets' metadata only, so this is how it knows which token a Secret
	// holds without keeping every token in memory.
	SecretTokenDigestAnnotation = "embedtokens.io/token-digest" //nolint:gosec // G101: an annotation key, not a credential
	// RefreshHandledAnnotation on the written Secret is the value of
	// RefreshAnnotation the stored token answered.
	RefreshHandledAnnotation = "embedtokens.io/refresh-handled"
	// CredentialsVersionAnnotation on the written Secret is the provider's
	// status.credentialsVersion when the token was issued.
	CredentialsVersionAnnotation = "embedtokens.io/credentials-version" //nolint:gosec // G101: an annotation key, not a credential

	// ManagedByLabel marks Secrets written by the operator; the manager caches
	// only Secrets carrying it.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of ManagedByLabel on operator-written Secrets.
	ManagedByValue = "embed-token-operator"
	// ShardLabel on an EmbedTokenRequest assigns it to the operator
	// instance whose --watch-label-selector selects that value (none: the
	// default shard, `!embedtokens.io/shard`), so one cluster's requests
	// can be split across several instances. The operator copies it onto the
	// request's Secret, so the Secret is in the same instance's cache.
	ShardLabel = "embedtokens.io/shard"
)

// ProviderRef names the EmbedProvider or ClusterEmbedProvider to use.
type ProviderRef struct {
	// Kind of the provider.
	// +optional
	// +kubebuilder:default=EmbedProvider
	// +kubebuilder:validation:Enum=EmbedProvider;ClusterEmbedProvider
	Kind string `json:"kind,omitempty"`

	// Name of the provider.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// LabelValue is the value of a label: at most 63 alphanumeric characters,
// '-', '_' or '.', starting and ending with an alphanumeric character, or
// empty. A named type, so the schema bounds each value of a map of labels
// without a CEL rule, whose cost over unbounded strings the API server
// would refuse.
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`
type LabelValue string

// EmbedTokenRequestSpec asks for a token for one set of vendor parameters.
// +kubebuilder:validation:XValidation:rule="!(has(self.renewBefore) && has(self.renewBeforePercentage))",message="renewBefore and renewBeforePercentage are mutually exclusive"
// +kubebuilder:validation:XValidation:rule="!has(self.renewBefore) || duration(self.renewBefore) < duration(self.lifetime)",message="renewBefore must be shorter than lifetime"
// +kubebuilder:validation:XValidation:rule="has(self.secretName) == has(oldSelf.secretName) && (!has(self.secretName) || self.secretName == oldSelf.secretName)",message="secretName is immutable"
type EmbedTokenRequestSpec struct {
	// ProviderRef names the provider that issues the token.
	ProviderRef ProviderRef `json:"providerRef"`

	VendorParams `json:",inline"`

	// Lifetime requested for each token, where the vendor lets the caller
	// choose. The vendor may grant less; renewal follows what was granted,
	// but never comes sooner than the manager's minimum renewal interval
	// (30s by default) after a token was issued. At least 1m: the default
	// margin of a short lifetime, half of it, is then at least that
	// interval, so every token is renewed before it expires.
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m')",message="lifetime must be at least 1m"
	Lifetime *metav1.Duration `json:"lifetime,omitempty"`

	// RenewBefore is how long before expiry to renew. Defaults to a third of
	// the token's actual lifetime, but at least 2m (pods see a mounted
	// Secret's new content up to about a minute after it is written) and at
	// most half the lifetime.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="renewBefore must be positive"
	RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`

	// RenewBeforePercentage renews when this percentage of the token's actual
	// lifetime remains.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=99
	RenewBeforePercentage *int32 `json:"renewBeforePercentage,omitempty"`

	// SecretName of the Secret to write. Defaults to the request's name.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	SecretName string `json:"secretName,omitempty"`

	// SecretLabels are added to the written Secret: at most 32, each a valid
	// label (a qualified-name key, a value of at most 63 characters), none
	// under the prefixes the operator and Kubernetes reserve (embedtokens.io/,
	// kubernetes.io/, k8s.io/) nor app.kubernetes.io/managed-by, which the
	// operator sets. Checked at admission, so the Secret write never fails on
	// them.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !format.qualifiedName().validate(k).hasValue())",message="secretLabels keys must be qualified names: an optional DNS subdomain prefix and '/', then at most 63 alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric character"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !(k.startsWith('embedtokens.io/') || k.contains('.embedtokens.io/') || k.startsWith('kubernetes.io/') || k.startsWith('k8s.io/') || k == 'app.kubernetes.io/managed-by'))",message="secretLabels may not use the reserved prefixes embedtokens.io/, kubernetes.io/ and k8s.io/, nor app.kubernetes.io/managed-by, which the operator sets"
	SecretLabels map[string]LabelValue `json:"secretLabels,omitempty"`

	// SecretAnnotations are added to the written Secret: at most 32, with
	// qualified-name keys, none under the prefixes the operator and
	// Kubernetes reserve (embedtokens.io/, kubernetes.io/, k8s.io/), and keys
	// and values of at most 64 KiB together (the API server allows 256 KiB
	// for all of a Secret's annotations, the operator's own among them).
	// Checked at admission, so the Secret write never fails on them.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !format.qualifiedName().validate(k.lowerAscii()).hasValue())",message="secretAnnotations keys must be qualified names: an optional DNS subdomain prefix and '/', then at most 63 alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric character"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !(k.startsWith('embedtokens.io/') || k.contains('.embedtokens.io/') || k.startsWith('kubernetes.io/') || k.startsWith('k8s.io/')))",message="secretAnnotations may not use the reserved prefixes embedtokens.io/, kubernetes.io/ and k8s.io/"
	// +kubebuilder:validation:XValidation:rule="self.map(k, size(k) + size(self[k])).sum() <= 65536",message="secretAnnotations may hold at most 64 KiB of keys and values together"
	SecretAnnotations map[string]string `json:"secretAnnotations,omitempty"`

	// Suspend stops calls to the vendor; the current Secret is kept.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// RolloutRestartTargets are workloads in this namespace that read the
	// token from environment variables, which never change in a running
	// container. After each new token is written the operator sets the
	// annotation embedtokens.io/restartedAt on their pod template, as
	// `kubectl rollout restart` does. Pods that mount the Secret as a volume
	// (without subPath) see new tokens in place and need no restart.
	// +optional
	// +listType=map
	// +listMapKey=kind
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	RolloutRestartTargets []RolloutRestartTarget `json:"rolloutRestartTargets,omitempty"`

	// Propagation pushes each new token into the running pods that mount
	// the Secret within about a second. Without it they see the new token
	// when the kubelet next syncs the pod, up to about 90 seconds later
	// (docs/benchmarks.md), which is why the default renewal margin is at
	// least two minutes.
	// +optional
	Propagation *Propagation `json:"propagation,omitempty"`
}

// Propagation names the pods that mount a request's Secret. After each new
// token is written the operator sets the annotation embedtokens.io/tokenDigest
// on each of them; the kubelet reacts to the pod change by syncing the pod,
// which rewrites its Secret volumes with the new token. Pods that mount the
// Secret with subPath, or read it from environment variables, never see a
// new token in place (use rolloutRestartTargets for those).
type Propagation struct {
	// PodSelector selects pods in the request's namespace. Of those, the
	// operator annotates only running pods whose volumes (secret or
	// projected) name the request's Secret, at most 50 per token; the rest
	// see the token at their next kubelet sync.
	PodSelector metav1.LabelSelector `json:"podSelector"`
}

// RolloutRestartTarget names a workload to restart when the token changes.
type RolloutRestartTarget struct {
	// Kind of the workload.
	// +kubebuilder:validation:Enum=Deployment;StatefulSet;DaemonSet
	Kind string `json:"kind"`

	// Name of the workload, in the request's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// EmbedTokenRequestStatus is what the operator knows about the current token,
// never the token itself.
type EmbedTokenRequestStatus struct {
	// Conditions: Ready, Reconciling and Stalled, following the kstatus
	// conventions so kubectl wait and GitOps health checks work.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// SecretName is the Secret holding the token.
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// IssuedAt is when the current token was issued.
	// +optional
	IssuedAt *metav1.Time `json:"issuedAt,omitempty"`

	// ExpiresAt is when the current token expires.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// RenewAt is when the operator will next ask for a token.
	// +optional
	RenewAt *metav1.Time `json:"renewAt,omitempty"`

	// FailedAttempts counts consecutive failed attempts to issue a token.
	// +optional
	FailedAttempts int32 `json:"failedAttempts,omitempty"`

	// LastFailureTime is when the last attempt failed.
	// +optional
	LastFailureTime *metav1.Time `json:"lastFailureTime,omitempty"`

	// LastFailure is why the last attempt failed, as its conditions said
	// it. The operator keeps it as data to back off and to restate a
	// failure, instead of parsing it back out of condition messages.
	// +optional
	LastFailure *Failure `json:"lastFailure,omitempty"`

	// TokenDigest is the first 12 hex digits of the token's SHA-256, so a
	// change is visible without revealing the token.
	// +optional
	TokenDigest string `json:"tokenDigest,omitempty"`

	// LastHandledRefresh is the value of the embedtokens.io/refresh annotation
	// the current token answered.
	// +optional
	LastHandledRefresh string `json:"lastHandledRefresh,omitempty"`

	// RestartedForDigest is the digest of the token for which every
	// rolloutRestartTarget has been restarted, so each new token restarts
	// each target at most once, across operator restarts too.
	// +optional
	RestartedForDigest string `json:"restartedForDigest,omitempty"`

	// PropagatedForDigest is the digest of the token that was pushed into
	// every pod spec.propagation selects, so each new token is pushed once.
	// +optional
	PropagatedForDigest string `json:"propagatedForDigest,omitempty"`
}

// Failure is one failed attempt to issue a token. Like the conditions, it
// never holds a token or a credential.
type Failure struct {
	// Reason is the failure's condition reason, e.g. VendorUnavailable.
	Reason string `json:"reason"`
	// Message explains the failure.
	Message string `json:"message"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=etr,categories=embedtokens
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.providerRef.name`
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.status.secretName`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Renew At",type=string,JSONPath=`.status.renewAt`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// EmbedTokenRequest asks the operator to keep a valid embed token in a Secret.
type EmbedTokenRequest struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   EmbedTokenRequestSpec   `json:"spec"`
	Status EmbedTokenRequestStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// EmbedTokenRequestList is a list of EmbedTokenRequests.
type EmbedTokenRequestList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EmbedTokenRequest `json:"items"`
}
