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
func (r *EmbedTokenRequest) ProviderKind() string { return r.Spec.ProviderRef.KindOrDefault() }

// KindOrDefault is the reference's kind, or EmbedProvider (the API server
// defaults it; this covers objects built in code).
func (r ProviderRef) KindOrDefault() string {
	if r.Kind == "" {
		return "EmbedProvider"
	}
	return r.Kind
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
