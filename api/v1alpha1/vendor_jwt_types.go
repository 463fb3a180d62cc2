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

// This file is the whole API of one vendor, jwt: tokens signed locally with a
// key the vendor trusts. Its provider block and request block join the unions
// in zz_generated.vendors.go.

import (
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Bounds of JWTProvider.ClockSkew: the default covers the few seconds to a
// minute by which hosts commonly disagree, the maximum keeps a token from
// claiming to be valid long before it was made.
const (
	// DefaultJWTClockSkew is how far iat and nbf are backdated by default.
	DefaultJWTClockSkew = 30 * time.Second
	// MaxJWTClockSkew is the largest clockSkew accepted.
	MaxJWTClockSkew = 5 * time.Minute
)

// VendorJWT names the signed-JWT block of a provider and of a request. It
// equals the block's JSON name, as every Vendor* constant does.
// +embedtokens:vendor:doc="JWT signs tokens locally for vendors that trust a shared or private key."
const VendorJWT = "jwt"

// JWTProvider signs tokens with a key the vendor trusts (Tableau connected
// apps, Metabase static embedding, Sisense, Grafana, shared-secret widgets).
type JWTProvider struct {
	// Algorithm used to sign.
	// +kubebuilder:validation:Enum=HS256;HS384;HS512;RS256;ES256
	Algorithm string `json:"algorithm"`

	// SigningKeySecretRef is the Secret key holding the HMAC secret (raw
	// bytes) or the PEM-encoded private key.
	SigningKeySecretRef SecretKeySelector `json:"signingKeySecretRef"`

	// Issuer sets the iss claim.
	// +optional
	Issuer string `json:"issuer,omitempty"`

	// Audience sets the aud claim.
	// +optional
	Audience string `json:"audience,omitempty"`

	// KeyID sets the kid header.
	// +optional
	KeyID string `json:"keyID,omitempty"`

	// Headers adds fields to the JWT header.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!('alg' in self) && !('typ' in self) && !('kid' in self)",message="headers cannot set alg, typ or kid: use algorithm and keyID"
	Headers map[string]string `json:"headers,omitempty"`

	// MaxLifetime caps exp, for vendors that reject tokens valid for longer
	// (Tableau: 10m, so 9m, leaving room for clock skew).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="maxLifetime must be positive"
	MaxLifetime *metav1.Duration `json:"maxLifetime,omitempty"`

	// ClockSkew backdates the iat and nbf claims, so a vendor whose clock
	// runs behind the operator's does not refuse a token as issued in the
	// future or not yet valid (Tableau and Superset users report such
	// failures). exp is not moved. 0s sends the signing time. At most 5m.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('5m')",message="clockSkew must be at most 5m"
	ClockSkew *metav1.Duration `json:"clockSkew,omitempty"`

	// SingleUse declares that the vendor accepts each token's jti once, as
	// Tableau connected apps do: a stored token would fail for every reader
	// after the first, so the provider's tokens are served only by the
	// token endpoint, one signature per call, and an EmbedTokenRequest for
	// them is refused.
	// +optional
	SingleUse bool `json:"singleUse,omitempty"`
}

// JWTParams are the claims of a locally signed token.
type JWTParams struct {
	// Subject sets the sub claim.
	// +optional
	Subject string `json:"subject,omitempty"`
	// Claims is a JSON object merged into the claims. Reserved claims (iat,
	// nbf, exp, jti, iss, aud, sub) cannot be set here.
	// +optional
	Claims *apiextensionsv1.JSON `json:"claims,omitempty"`
}
