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

// This file is the one place in the API that lists every vendor: the two
// unions (one pointer field per vendor) and the admission rules that must
// name each vendor's block. Everything else about a vendor lives in its own
// vendor_<name>_types.go. Vendor() and Vendors() read the unions by
// reflection, so they cannot drift from them; vendors_test.go checks that the
// rules and the Vendor* constants agree with the unions.

import (
	"reflect"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// VendorConfig holds one pointer per vendor; exactly one is set. It is only
// ever inlined into EmbedProviderSpec, whose allowInsecureHTTP its rules read.
// +kubebuilder:validation:XValidation:rule="[has(self.qrvey), has(self.qlikCloud), has(self.boldBI), has(self.jwt), has(self.oauth2), has(self.http), has(self.powerBI), has(self.superset), has(self.looker), has(self.sigma), has(self.quickSight)].filter(x, x).size() == 1",message="exactly one vendor block must be set: qrvey, qlikCloud, boldBI, jwt, oauth2, http, powerBI, superset, looker, sigma or quickSight"
// +kubebuilder:validation:XValidation:rule="self.allowInsecureHTTP || ((!has(self.qrvey) || self.qrvey.url.startsWith('https://')) && (!has(self.qlikCloud) || self.qlikCloud.tenantURL.startsWith('https://')) && (!has(self.boldBI) || self.boldBI.serverURL.startsWith('https://')) && (!has(self.oauth2) || self.oauth2.tokenURL.startsWith('https://')) && (!has(self.http) || self.http.url.startsWith('https://')) && (!has(self.http) || !has(self.http.auth) || ((!has(self.http.auth.clientCredentials) || self.http.auth.clientCredentials.tokenURL.startsWith('https://')) && (!has(self.http.auth.login) || self.http.auth.login.url.startsWith('https://')))) && (!has(self.powerBI) || ((!has(self.powerBI.authorityURL) || self.powerBI.authorityURL.startsWith('https://')) && (!has(self.powerBI.apiURL) || self.powerBI.apiURL.startsWith('https://')))) && (!has(self.superset) || self.superset.url.startsWith('https://')) && (!has(self.looker) || self.looker.url.startsWith('https://')) && (!has(self.quickSight) || ((!has(self.quickSight.endpoint) || self.quickSight.endpoint.startsWith('https://')) && (!has(self.quickSight.credentials.podIdentity) || !has(self.quickSight.credentials.podIdentity.stsEndpoint) || self.quickSight.credentials.podIdentity.stsEndpoint.startsWith('https://')))))",message="vendor URLs must use https:// unless allowInsecureHTTP is true"
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
	// PowerBI issues Power BI Embedded embed tokens with a Microsoft Entra
	// ID service principal.
	// +optional
	PowerBI *PowerBIProvider `json:"powerBI,omitempty"`
	// Superset logs in to Apache Superset and asks it for guest tokens.
	// +optional
	Superset *SupersetProvider `json:"superset,omitempty"`
	// Looker signs Looker SSO embed URLs locally, each redeemable once.
	// +optional
	Looker *LookerProvider `json:"looker,omitempty"`
	// Sigma signs Sigma Computing embed JWTs locally, each redeemable once.
	// +optional
	Sigma *SigmaProvider `json:"sigma,omitempty"`
	// QuickSight issues Amazon QuickSight embed URLs, signed with AWS
	// credentials; each URL can be redeemed once.
	// +optional
	QuickSight *QuickSightProvider `json:"quickSight,omitempty"`
}

// VendorParams holds one pointer per vendor; exactly one is set and it must
// match the provider's vendor. It is only ever inlined into
// EmbedTokenRequestSpec.
// +kubebuilder:validation:XValidation:rule="[has(self.qrvey), has(self.qlikCloud), has(self.boldBI), has(self.jwt), has(self.oauth2), has(self.http), has(self.powerBI), has(self.superset), has(self.looker), has(self.sigma), has(self.quickSight)].filter(x, x).size() == 1",message="exactly one vendor parameter block must be set: qrvey, qlikCloud, boldBI, jwt, oauth2, http, powerBI, superset, looker, sigma or quickSight"
type VendorParams struct {
	// Qrvey parameters.
	// +optional
	Qrvey *QrveyParams `json:"qrvey,omitempty"`
	// QlikCloud parameters.
	// +optional
	QlikCloud *QlikCloudParams `json:"qlikCloud,omitempty"`
	// BoldBI parameters.
	// +optional
	BoldBI *BoldBIParams `json:"boldBI,omitempty"`
	// JWT parameters.
	// +optional
	JWT *JWTParams `json:"jwt,omitempty"`
	// OAuth2 parameters.
	// +optional
	OAuth2 *OAuth2Params `json:"oauth2,omitempty"`
	// HTTP parameters.
	// +optional
	HTTP *HTTPParams `json:"http,omitempty"`
	// PowerBI parameters.
	// +optional
	PowerBI *PowerBIParams `json:"powerBI,omitempty"`
	// Superset parameters.
	// +optional
	Superset *SupersetParams `json:"superset,omitempty"`
	// Looker parameters.
	// +optional
	Looker *LookerParams `json:"looker,omitempty"`
	// Sigma parameters.
	// +optional
	Sigma *SigmaParams `json:"sigma,omitempty"`
	// QuickSight parameters.
	// +optional
	QuickSight *QuickSightParams `json:"quickSight,omitempty"`
}

// ClusterEmbedProviderSpec is declared in this file because its admission
// rule names every vendor's Secret references.

// ClusterEmbedProviderSpec is a provider spec plus the namespaces allowed to use it.
// A cluster-scoped object has no namespace of its own, so every Secret
// reference must name one; otherwise the reference could only be guessed.
// +kubebuilder:validation:XValidation:rule="(!has(self.qrvey) || has(self.qrvey.apiKeySecretRef.__namespace__)) && (!has(self.qlikCloud) || has(self.qlikCloud.clientSecretSecretRef.__namespace__)) && (!has(self.boldBI) || has(self.boldBI.embedSecretSecretRef.__namespace__)) && (!has(self.jwt) || has(self.jwt.signingKeySecretRef.__namespace__)) && (!has(self.oauth2) || has(self.oauth2.clientSecretSecretRef.__namespace__)) && (!has(self.http) || !has(self.http.headers) || self.http.headers.all(h, !has(h.valueFrom) || has(h.valueFrom.secretKeyRef.__namespace__))) && (!has(self.http) || !has(self.http.auth) || ((!has(self.http.auth.clientCredentials) || has(self.http.auth.clientCredentials.clientSecretSecretRef.__namespace__)) && (!has(self.http.auth.login) || !has(self.http.auth.login.headers) || self.http.auth.login.headers.all(h, !has(h.valueFrom) || has(h.valueFrom.secretKeyRef.__namespace__))))) && (!has(self.powerBI) || has(self.powerBI.clientSecretSecretRef.__namespace__)) && (!has(self.superset) || has(self.superset.passwordSecretRef.__namespace__)) && (!has(self.looker) || has(self.looker.embedSecretSecretRef.__namespace__)) && (!has(self.sigma) || has(self.sigma.secretSecretRef.__namespace__)) && (!has(self.quickSight) || !has(self.quickSight.credentials.secret) || (has(self.quickSight.credentials.secret.accessKeyIDSecretRef.__namespace__) && has(self.quickSight.credentials.secret.secretAccessKeySecretRef.__namespace__) && (!has(self.quickSight.credentials.secret.sessionTokenSecretRef) || has(self.quickSight.credentials.secret.sessionTokenSecretRef.__namespace__)))) && (!has(self.caBundleSecretRef) || has(self.caBundleSecretRef.__namespace__))",message="every Secret reference of a ClusterEmbedProvider must set namespace"
type ClusterEmbedProviderSpec struct {
	EmbedProviderSpec `json:",inline"`

	// NamespaceSelector limits which namespaces' EmbedTokenRequests may use
	// this provider. Empty selects every namespace.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",message="namespaceSelector operators must be In, NotIn, Exists or DoesNotExist"
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// Vendors lists every vendor's name, in declaration order: the JSON names of
// VendorConfig's fields, which VendorParams repeats.
func Vendors() []string {
	t := reflect.TypeFor[VendorConfig]()
	names := make([]string, t.NumField())
	for i := range t.NumField() {
		names[i] = blockName(t.Field(i))
	}
	return names
}

// Vendor names the vendor whose block is set, or "" when none is.
func (c *VendorConfig) Vendor() string { return setBlock(c) }

// Vendor names the vendor whose parameter block is set, or "" when none is.
func (p *VendorParams) Vendor() string { return setBlock(p) }

// setBlock returns the JSON name of the first non-nil field of union, a
// pointer to a struct whose fields are all pointers (VendorConfig or
// VendorParams), or "" when every field is nil.
func setBlock(union any) string {
	v := reflect.ValueOf(union).Elem()
	for i := range v.NumField() {
		if !v.Field(i).IsNil() {
			return blockName(v.Type().Field(i))
		}
	}
	return ""
}

// blockName is a union field's JSON name, which is its vendor's name.
func blockName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}
