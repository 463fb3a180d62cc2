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

// This file is the whole API of one vendor, Sigma Computing: embed JWTs
// signed locally (HS256) with an embed client's secret, each carrying a
// unique jti that Sigma accepts once. Its provider block and request block
// join the unions in zz_generated.vendors.go.

// VendorSigma names the Sigma block of a provider and of a request. It
// equals the block's JSON name, as every Vendor* constant does.
// +embedtokens:vendor:doc="Sigma signs Sigma Computing embed JWTs locally, each redeemable once."
const VendorSigma = "sigma"

// MaxSigmaLifetime is the longest exp - iat Sigma accepts (30 days); a
// longer lifetime is cut to it.
const MaxSigmaLifetime = 30 * 24 * 60 * 60 // seconds

// SigmaProvider is a Sigma embed client (Sigma: Administration → Developer
// access → embed credentials): its client ID goes into every token as kid
// and iss, its secret signs them.
type SigmaProvider struct {
	// ClientID of the embed credentials.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	ClientID string `json:"clientID"`

	// SecretSecretRef is the Secret key holding the embed secret.
	SecretSecretRef SecretKeySelector `json:"secretSecretRef"`
}

// SigmaParams are the claims of a Sigma embed JWT that describe the user.
type SigmaParams struct {
	// Email of the user the embed opens as (sub).
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=320
	// +kubebuilder:validation:Pattern=`^[^\s@]+@[^\s@]+$`
	Email string `json:"email"`

	// AccountType of an embed user (account_type), e.g. viewer or creator;
	// Sigma's default when unset.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	AccountType string `json:"accountType,omitempty"`

	// Teams the embed user belongs to (teams).
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=atomic
	Teams []string `json:"teams,omitempty"`

	// UserAttributes of the embed user (user_attributes); at most 32, names
	// up to 128 characters, values up to 1024.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) >= 1 && size(k) <= 128 && size(self[k]) <= 1024)",message="attribute names must have 1 to 128 characters and values at most 1024"
	UserAttributes map[string]string `json:"userAttributes,omitempty"`

	// EvalConnectionID is the connection queries run on instead of the
	// workbook's (eval_connection_id).
	// +optional
	// +kubebuilder:validation:MaxLength=256
	EvalConnectionID string `json:"evalConnectionID,omitempty"`

	// FirstName of the embed user (first_name).
	// +optional
	// +kubebuilder:validation:MaxLength=256
	FirstName string `json:"firstName,omitempty"`

	// LastName of the embed user (last_name).
	// +optional
	// +kubebuilder:validation:MaxLength=256
	LastName string `json:"lastName,omitempty"`
}
