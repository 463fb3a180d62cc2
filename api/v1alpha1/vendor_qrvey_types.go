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

// This file is the whole API of one vendor, Qrvey: opaque embed tokens issued
// from an API key. Its provider block and request block join the unions in
// zz_generated.vendors.go.

import apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

// VendorQrvey names the Qrvey block of a provider and of a request. It equals
// the block's JSON name, as every Vendor* constant does.
// +embedtokens:vendor:doc="Qrvey issues opaque embed tokens from an API key."
const VendorQrvey = "qrvey"

// QrveyProvider is the connection to a Qrvey instance.
type QrveyProvider struct {
	// URL of the Qrvey instance, e.g. https://acme.qrveyapp.com.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && self.matches('^https?://[^/]+')",message="url must be an absolute http(s) URL"
	URL string `json:"url"`

	// APIKeySecretRef is the Secret key holding the Qrvey API key.
	APIKeySecretRef SecretKeySelector `json:"apiKeySecretRef"`
}

// QrveyParams are the embed token's user and application.
type QrveyParams struct {
	// UserID is the Qrvey user (userid).
	// +kubebuilder:validation:MinLength=1
	UserID string `json:"userID"`
	// AppID is the Qrvey application (appid).
	// +kubebuilder:validation:MinLength=1
	AppID string `json:"appID"`
	// ClientID identifies the end user to Qrvey (clientid).
	// +optional
	ClientID string `json:"clientID,omitempty"`
	// Permissions is the row-level security list, passed as is.
	// +optional
	Permissions *apiextensionsv1.JSON `json:"permissions,omitempty"`
	// Extra is a JSON object merged into the request body, for widget
	// settings such as orgId or dashboardId. It cannot replace the fields
	// above.
	// +optional
	Extra *apiextensionsv1.JSON `json:"extra,omitempty"`
}
