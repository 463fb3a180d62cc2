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

// SecretKeySelector points at one key of a Secret holding a credential, so
// that credentials live in Secrets (with their own RBAC) and never in the
// provider spec itself.
type SecretKeySelector struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// Key within the Secret's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`

	// Namespace of the Secret. Required on a ClusterEmbedProvider, which has no
	// namespace of its own. On an EmbedProvider it may be omitted or set to the
	// provider's own namespace: an EmbedProvider never reads Secrets elsewhere.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`
}

// NameValue is a named parameter passed through to a vendor, such as a Bold
// BI dashboard parameter or data source filter. The value is JSON so it
// reaches the vendor as written: a string, number or boolean, or a list.
type NameValue struct {
	// Name of the parameter.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Value of the parameter: a string, number or boolean, or a list of
	// them (e.g. [1001, 1002]), sent to the vendor as written.
	Value apiextensionsv1.JSON `json:"value"`

	// Operator, where the vendor supports one (Bold BI custom attributes).
	// +optional
	Operator string `json:"operator,omitempty"`
}

// ExpiryFallback is how a provider learns a token's expiry when the vendor's
// answer does not state one: RFC 6749 only recommends expires_in, and some
// vendors answer with nothing but the token. The http, oauth2 and http auth
// blocks share it; each documents when it applies.
// +kubebuilder:validation:XValidation:rule="has(self.fromJWT) != has(self.duration)",message="exactly one of fromJWT and duration must be set"
type ExpiryFallback struct {
	// FromJWT reads the exp claim of the token.
	// +optional
	FromJWT *bool `json:"fromJWT,omitempty"`
	// Duration is a fixed lifetime counted from the call.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	Duration *metav1.Duration `json:"duration,omitempty"`
}
