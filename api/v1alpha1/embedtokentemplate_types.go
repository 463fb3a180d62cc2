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

// The admission rule on parameters' paths is derived from the vendor
// blocks' Go types (templatepaths.go); the go:generate line is in vendors.go,
// after the unions' own generator.

// Values of an EmbedTokenTemplate's spec.cache.
const (
	// TemplateCacheShared lets identical calls (same template generation,
	// same parameters, same provider credentials) share one token while it
	// has at least minValidFor left.
	TemplateCacheShared = "Shared"
	// TemplateCacheNone makes one vendor call per endpoint call. Vendors
	// whose tokens are single-use are always served this way.
	TemplateCacheNone = "None"
)

// TokenEndpointAudience is the audience a caller's projected ServiceAccount
// token must carry for the token endpoint, so a token minted for another
// service cannot be replayed against it.
const TokenEndpointAudience = "embedtokens.io" //nolint:gosec // G101: an audience name, not a credential

// TokenSubresource is the subresource name the endpoint authorizes callers
// for, with verb create: an ordinary Role grants it, as
// serviceaccounts/token grants TokenRequest.
const TokenSubresource = "embedtokentemplates/token"

// EmbedTokenTemplateSpec is an EmbedTokenRequest's spec for tokens minted on
// demand by the token endpoint: the provider, the vendor block and the
// lifetime, plus the parameters a caller fills in at each call.
//
// The vendor block is a complete set of vendor parameters; each parameter
// replaces the value at its path with what the caller sends, so a field a
// parameter always fills may hold a placeholder.
// +kubebuilder:validation:XValidation:rule="!has(self.parameters) || self.parameters.all(p, self.parameters.exists_one(q, q.path == p.path))",message="each path may be filled by one parameter only"
// +kubebuilder:validation:XValidation:rule="!has(self.parameters) || self.parameters.all(p, (has(self.boldBI) && p.path.matches('^boldBI[.](email|dashboardID|datasourceFilters[[]([0-9]|[1-9][0-9])][.](name|value([.][A-Za-z_][A-Za-z0-9_-]*|[[]([0-9]|[1-9][0-9])])*|operator)|dashboardParameters[[]([0-9]|[1-9][0-9])][.](name|value([.][A-Za-z_][A-Za-z0-9_-]*|[[]([0-9]|[1-9][0-9])])*|operator)|customAttributes[[]([0-9]|[1-9][0-9])][.](name|value([.][A-Za-z_][A-Za-z0-9_-]*|[[]([0-9]|[1-9][0-9])])*|operator))$')) || (has(self.http) && p.path.matches('^http[.]variables[.][A-Za-z_][A-Za-z0-9_-]*$')) || (has(self.jwt) && p.path.matches('^jwt[.](subject|claims([.][A-Za-z_][A-Za-z0-9_-]*|[[]([0-9]|[1-9][0-9])])*)$')) || (has(self.looker) && p.path.matches('^looker[.](targetPath|externalUserID|firstName|lastName|permissions[[]([0-9]|[1-9][0-9])]|models[[]([0-9]|[1-9][0-9])]|externalGroupID|userAttributes[.][A-Za-z_][A-Za-z0-9_-]*|accessFilters([.][A-Za-z_][A-Za-z0-9_-]*|[[]([0-9]|[1-9][0-9])])*)$')) || (has(self.oauth2) && p.path.matches('^oauth2[.](scopes[[]([0-9]|[1-9][0-9])]|audience|extraParameters([.][A-Za-z_][A-Za-z0-9_-]*|[[]([0-9]|[1-9][0-9])])*)$')) || (has(self.powerBI) && p.path.matches('^powerBI[.](profileID|reports[[]([0-9]|[1-9][0-9])][.]id|datasets[[]([0-9]|[1-9][0-9])][.](id|xmlaPermissions)|targetWorkspaces[[]([0-9]|[1-9][0-9])][.]id|identities[[]([0-9]|[1-9][0-9])][.](username|roles[[]([0-9]|[1-9][0-9])]|datasets[[]([0-9]|[1-9][0-9])]|reports[[]([0-9]|[1-9][0-9])]|customData|identityBlob[.]value)|datasourceIdentities[[]([0-9]|[1-9][0-9])][.](identityBlob|datasources[[]([0-9]|[1-9][0-9])][.](datasourceType|connectionDetails[.](server|database|url))))$')) || (has(self.qlikCloud) && p.path.matches('^qlikCloud[.]userLookup[.](field|value)$')) || (has(self.qrvey) && p.path.matches('^qrvey[.](userID|appID|clientID|permissions([.][A-Za-z_][A-Za-z0-9_-]*|[[]([0-9]|[1-9][0-9])])*|extra([.][A-Za-z_][A-Za-z0-9_-]*|[[]([0-9]|[1-9][0-9])])*)$')) || (has(self.quickSight) && p.path.matches('^quickSight[.](registeredUser[.](userARN|userName|namespace|identityRegion|experience[.](dashboard[.]initialDashboardID|console[.]initialPath|qSearchBar[.]initialTopicID))|anonymous[.](namespace|authorizedResourceARNs[[]([0-9]|[1-9][0-9])]|experience[.](dashboard[.]initialDashboardID|qSearchBar[.]initialTopicID)|sessionTags[[]([0-9]|[1-9][0-9])][.](key|value))|allowedDomains[[]([0-9]|[1-9][0-9])])$')) || (has(self.sigma) && p.path.matches('^sigma[.](email|accountType|teams[[]([0-9]|[1-9][0-9])]|userAttributes[.][A-Za-z_][A-Za-z0-9_-]*|evalConnectionID|firstName|lastName)$')) || (has(self.superset) && p.path.matches('^superset[.](user[.](username|firstName|lastName|attributes[.][A-Za-z_][A-Za-z0-9_-]*)|resources[[]([0-9]|[1-9][0-9])][.](type|id)|rls[[]([0-9]|[1-9][0-9])][.]clause)$')))",message="each parameter's path must name a string field, a string list item, or a key of a free-form object of the template's vendor block, e.g. jwt.subject, powerBI.identities[0].username, jwt.claims.tenant"
type EmbedTokenTemplateSpec struct {
	// ProviderRef names the provider that issues the tokens.
	ProviderRef ProviderRef `json:"providerRef"`

	VendorParams `json:",inline"`

	// Lifetime requested for each token, where the vendor lets the caller
	// choose; the provider's maxLifetime caps it as it caps a request's.
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m')",message="lifetime must be at least 1m"
	Lifetime *metav1.Duration `json:"lifetime,omitempty"`

	// Parameters are what a caller sends with each call, each filling one
	// field of the vendor block. Every parameter must be sent; a call with
	// a parameter not listed here is refused.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Parameters []TemplateParameter `json:"parameters,omitempty"`

	// Cache decides whether identical calls share a token: Shared (the
	// default) serves one token while it has at least the call's
	// minValidFor left; None calls the vendor for every call. Vendors whose
	// tokens are single-use are always served as None.
	// +optional
	// +kubebuilder:default=Shared
	// +kubebuilder:validation:Enum=Shared;None
	Cache string `json:"cache,omitempty"`

	// RateLimit bounds the calls this template answers, cached or not,
	// across the operator's replicas each counted alone. Calls over it are
	// answered 429 with Retry-After.
	// +optional
	RateLimit *TemplateRateLimit `json:"rateLimit,omitempty"`
}

// TemplateParameter is one value a caller sends to the token endpoint.
type TemplateParameter struct {
	// Name is what callers send, as a key of the call's parameters.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	Name string `json:"name"`

	// Path is the vendor field the value fills, by JSON field names joined
	// with '.', with [i] for a list item: qlikCloud.userLookup.value,
	// boldBI.email, powerBI.identities[0].username, superset.user.username,
	// jwt.subject, or a key under jwt.claims (jwt.claims.tenant). The field
	// must hold a string (or be a key of a free-form object); the item a
	// path indexes must exist in the template.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z_][A-Za-z0-9_-]*(\[([0-9]|[1-9][0-9])\])?)+$`
	Path string `json:"path"`

	// MaxLength bounds the value a caller may send, in bytes.
	// +optional
	// +kubebuilder:default=256
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4096
	MaxLength int32 `json:"maxLength,omitempty"`

	// Validation is a CEL rule the value must pass.
	// +optional
	Validation *ParameterValidation `json:"validation,omitempty"`
}

// ParameterValidation is a CEL rule over one parameter. The expression sees
// `value` (the string sent), `caller` (username, namespace, serviceAccount,
// podName: who called, from the token review) and `namespaceObject` (the
// template's Namespace: metadata), and must return a bool. It is bounded as
// a provider's requestValidations are.
type ParameterValidation struct {
	// Expression is a CEL expression returning bool; true admits the value.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Expression string `json:"expression"`

	// Message explains a refusal to the caller; when empty the expression
	// itself is shown.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// TemplateRateLimit is a token bucket.
type TemplateRateLimit struct {
	// RequestsPerMinute is the bucket's sustained rate.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	RequestsPerMinute int32 `json:"requestsPerMinute"`

	// Burst is how many calls may come at once; defaults to
	// requestsPerMinute/60, at least 1.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	Burst int32 `json:"burst,omitempty"`
}

// EmbedTokenTemplateStatus says whether the endpoint can serve the template.
type EmbedTokenTemplateStatus struct {
	// Conditions: Ready, Reconciling and Stalled, following the kstatus
	// conventions. Ready is True when the provider resolves, admits the
	// namespace, and every parameter's path and rule compile.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ett,categories=embedtokens
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.providerRef.name`
// +kubebuilder:printcolumn:name="Parameters",type=string,JSONPath=`.spec.parameters[*].name`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// EmbedTokenTemplate lets workloads ask the operator's token endpoint for
// tokens on demand, one per signed-in user, with parameters the template
// declares; the tokens are never stored in the cluster.
type EmbedTokenTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   EmbedTokenTemplateSpec   `json:"spec"`
	Status EmbedTokenTemplateStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// EmbedTokenTemplateList is a list of EmbedTokenTemplates.
type EmbedTokenTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EmbedTokenTemplate `json:"items"`
}
