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

// This file is the whole API of one vendor, Looker signed embed URLs (SSO
// embedding): a URL signed locally with the embed secret, which a browser
// redeems once for a Looker embed session. Its provider block and request
// block join the unions in zz_generated.vendors.go.

import apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

// VendorLooker names the Looker block of a provider and of a request. It
// equals the block's JSON name, as every Vendor* constant does.
// +embedtokens:vendor:doc="Looker signs Looker SSO embed URLs locally, each redeemable once."
const VendorLooker = "looker"

// MaxLookerSessionLength is the longest embed session Looker accepts (30
// days); a longer lifetime is cut to it.
const MaxLookerSessionLength = 30 * 24 * 60 * 60 // seconds

// LookerProvider is a Looker instance and the embed secret its signed embed
// URLs are signed with (Looker: Admin → Platform → Embed).
type LookerProvider struct {
	// URL of the Looker instance as browsers reach it, e.g.
	// https://acme.cloud.looker.com: its host (with a port, when one is
	// needed) is signed into every URL, so it must be the public name, not
	// an internal one.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && self.matches('^https?://[^/]+/?$')",message="url must be an absolute http(s) URL with no path"
	URL string `json:"url"`

	// EmbedSecretSecretRef is the Secret key holding the embed secret.
	EmbedSecretSecretRef SecretKeySelector `json:"embedSecretSecretRef"`
}

// LookerParams are the embed user and the page a signed embed URL opens.
// Looker needs either groupIDs or both permissions and models.
// +kubebuilder:validation:XValidation:rule="(has(self.groupIDs) && size(self.groupIDs) > 0) || (has(self.permissions) && size(self.permissions) > 0 && has(self.models) && size(self.models) > 0)",message="set groupIDs, or both permissions and models"
type LookerParams struct {
	// TargetPath is the embedded page, a path starting with /embed/, with
	// its query if any: /embed/dashboards/42?Region=EMEA.
	// +kubebuilder:validation:MinLength=8
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^/embed/[^\s#]+$`
	TargetPath string `json:"targetPath"`

	// ExternalUserID identifies the embed user in the application's own
	// system; Looker keeps one embed user per value.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	ExternalUserID string `json:"externalUserID"`

	// FirstName of the embed user.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	FirstName string `json:"firstName,omitempty"`

	// LastName of the embed user.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	LastName string `json:"lastName,omitempty"`

	// Permissions of the embed user, e.g. access_data, see_user_dashboards.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=128
	// +listType=atomic
	Permissions []string `json:"permissions,omitempty"`

	// Models the embed user may query.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=atomic
	Models []string `json:"models,omitempty"`

	// GroupIDs are Looker groups the embed user joins.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	GroupIDs []int64 `json:"groupIDs,omitempty"`

	// ExternalGroupID names the group of the application's system the embed
	// user belongs to, which Looker uses for the group's shared folder.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	ExternalGroupID string `json:"externalGroupID,omitempty"`

	// UserAttributes of the embed user, by attribute name; at most 32,
	// names up to 128 characters, values up to 1024.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) >= 1 && size(k) <= 128 && size(self[k]) <= 1024)",message="attribute names must have 1 to 128 characters and values at most 1024"
	UserAttributes map[string]string `json:"userAttributes,omitempty"`

	// AccessFilters is Looker's legacy access_filters object, by model;
	// current Looker ignores it in favour of user attributes, and {} is
	// sent when it is unset.
	// +optional
	AccessFilters *apiextensionsv1.JSON `json:"accessFilters,omitempty"`

	// ForceLogoutLogin makes Looker drop any Looker session the browser
	// already has before it starts the embed session. Default true.
	// +optional
	ForceLogoutLogin *bool `json:"forceLogoutLogin,omitempty"`
}
