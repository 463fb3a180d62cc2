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
// vendors.go.

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// VendorHTTP names the generic HTTP block of a provider and of a request. It
// equals the block's JSON name, as every Vendor* constant does.
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

// HTTPParams are the variables of a generic HTTP provider's body template.
type HTTPParams struct {
	// Variables available to the body template as .Vars.
	// +optional
	Variables map[string]string `json:"variables,omitempty"`
}
