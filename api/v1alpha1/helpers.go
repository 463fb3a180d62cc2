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

import "time"

// DefaultLifetime is the token lifetime requested when spec.lifetime is unset
// (the API server defaults it; this covers objects built in code).
const DefaultLifetime = time.Hour

// Vendor names the vendor whose block is set, or "" when none is.
func (c *VendorConfig) Vendor() string {
	switch {
	case c.Qrvey != nil:
		return VendorQrvey
	case c.QlikCloud != nil:
		return VendorQlikCloud
	case c.BoldBI != nil:
		return VendorBoldBI
	case c.JWT != nil:
		return VendorJWT
	case c.OAuth2 != nil:
		return VendorOAuth2
	case c.HTTP != nil:
		return VendorHTTP
	}
	return ""
}

// SecretRefs lists every credential the vendor block references, so that
// namespace rules and credential fingerprints cover all vendors alike.
func (c *VendorConfig) SecretRefs() []SecretKeySelector {
	switch {
	case c.Qrvey != nil:
		return []SecretKeySelector{c.Qrvey.APIKeySecretRef}
	case c.QlikCloud != nil:
		return []SecretKeySelector{c.QlikCloud.ClientSecretSecretRef}
	case c.BoldBI != nil:
		return []SecretKeySelector{c.BoldBI.EmbedSecretSecretRef}
	case c.JWT != nil:
		return []SecretKeySelector{c.JWT.SigningKeySecretRef}
	case c.OAuth2 != nil:
		return []SecretKeySelector{c.OAuth2.ClientSecretSecretRef}
	case c.HTTP != nil:
		var refs []SecretKeySelector
		for _, h := range c.HTTP.Headers {
			if h.ValueFrom != nil {
				refs = append(refs, h.ValueFrom.SecretKeyRef)
			}
		}
		return refs
	}
	return nil
}

// Vendor names the vendor whose parameter block is set, or "" when none is.
func (p *VendorParams) Vendor() string {
	switch {
	case p.Qrvey != nil:
		return VendorQrvey
	case p.QlikCloud != nil:
		return VendorQlikCloud
	case p.BoldBI != nil:
		return VendorBoldBI
	case p.JWT != nil:
		return VendorJWT
	case p.OAuth2 != nil:
		return VendorOAuth2
	case p.HTTP != nil:
		return VendorHTTP
	}
	return ""
}

// TargetSecretName is the Secret the request writes: spec.secretName, or the
// request's own name.
func (r *EmbedTokenRequest) TargetSecretName() string {
	if r.Spec.SecretName != "" {
		return r.Spec.SecretName
	}
	return r.Name
}

// RequestedLifetime is spec.lifetime, or DefaultLifetime.
func (r *EmbedTokenRequest) RequestedLifetime() time.Duration {
	if r.Spec.Lifetime != nil && r.Spec.Lifetime.Duration > 0 {
		return r.Spec.Lifetime.Duration
	}
	return DefaultLifetime
}

// ProviderKind is spec.providerRef.kind, or EmbedProvider.
func (r *EmbedTokenRequest) ProviderKind() string {
	if r.Spec.ProviderRef.Kind == "" {
		return "EmbedProvider"
	}
	return r.Spec.ProviderRef.Kind
}

// DefaultMaxLifetime caps request lifetimes when a provider object built in
// code leaves spec.maxLifetime unset (the API server defaults it).
const DefaultMaxLifetime = 24 * time.Hour

// LifetimeCap is the longest lifetime a request may get from this provider.
func (s *EmbedProviderSpec) LifetimeCap() time.Duration {
	if s.MaxLifetime != nil && s.MaxLifetime.Duration > 0 {
		return s.MaxLifetime.Duration
	}
	return DefaultMaxLifetime
}
