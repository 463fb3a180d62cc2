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

// This file is the whole API of one vendor, Apache Superset: guest tokens
// for embedded dashboards, granted by a Superset user that logs in through
// Superset's security API. Its provider block and request block join the
// unions in zz_generated.vendors.go.

// VendorSuperset names the Superset block of a provider and of a request.
// It equals the block's JSON name, as every Vendor* constant does.
// +embedtokens:vendor:doc="Superset logs in to Apache Superset and asks it for guest tokens."
const VendorSuperset = "superset"

// SupersetProvider is a Superset user allowed to grant guest tokens (the
// can_grant_guest_token permission), whose login buys each guest token.
type SupersetProvider struct {
	// URL of Superset, e.g. https://superset.example.com; the security API
	// lives below it at /api/v1/security/.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && self.matches('^https?://[^/]+')",message="url must be an absolute http(s) URL"
	URL string `json:"url"`

	// Username of the Superset user that grants guest tokens.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Username string `json:"username"`

	// PasswordSecretRef is the Secret key holding that user's password.
	PasswordSecretRef SecretKeySelector `json:"passwordSecretRef"`

	// Provider is the login's authentication provider: db for Superset's
	// own users, ldap for users checked against LDAP.
	// +optional
	// +kubebuilder:default=db
	// +kubebuilder:validation:Enum=db;ldap
	Provider string `json:"provider,omitempty"`
}

// SupersetParams describe the guest: who the token says it is, which
// dashboards it may show and the row level security that narrows their data.
type SupersetParams struct {
	// User is the guest as Superset records it; it grants nothing by itself.
	User SupersetGuestUser `json:"user"`

	// Resources the token may show.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	Resources []SupersetResource `json:"resources"`

	// RLS are row level security clauses applied to every query the guest
	// runs, in addition to each other.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	RLS []SupersetRLSRule `json:"rls,omitempty"`
}

// SupersetGuestUser is Superset's guest user object.
type SupersetGuestUser struct {
	// Username of the guest, shown in Superset's logs.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Username string `json:"username"`
	// FirstName of the guest.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	FirstName string `json:"firstName,omitempty"`
	// LastName of the guest.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	LastName string `json:"lastName,omitempty"`
	// Attributes of the guest, as Superset's guest user schema takes them:
	// names and values a Superset extension (a guest token validator hook,
	// Jinja macros reading the guest user) may use. At most 32, names up to
	// 128 characters, values up to 1024.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) >= 1 && size(k) <= 128 && size(self[k]) <= 1024)",message="attribute names must have 1 to 128 characters and values at most 1024"
	Attributes map[string]string `json:"attributes,omitempty"`
}

// SupersetResource is one thing the guest token opens. Superset grants
// guest tokens for dashboards only.
type SupersetResource struct {
	// Type of the resource.
	// +optional
	// +kubebuilder:default=dashboard
	// +kubebuilder:validation:Enum=dashboard
	Type string `json:"type,omitempty"`
	// ID of the resource: the embedded dashboard's UUID (Superset:
	// Dashboard → Embed dashboard).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	ID string `json:"id"`
}

// SupersetRLSRule is one row level security clause of a guest token.
type SupersetRLSRule struct {
	// Clause is an SQL condition added to the guest's queries, such as
	// tenant_id = 'acme'.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Clause string `json:"clause"`
	// Dataset is the numeric ID of the only dataset the clause applies to;
	// without it the clause applies to every dataset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Dataset *int64 `json:"dataset,omitempty"`
}
