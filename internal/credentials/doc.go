// Package credentials reads what an EmbedProvider or ClusterEmbedProvider
// signs in to its vendor with: the values of the Secret keys its spec names
// and the ServiceAccount tokens its clientAssertion asks for. Its Reader
// implements provider.CredentialReader for the vendor implementations.
//
// The provider reconciler validates a provider's credentials with New,
// which reads uncached, and records Version, a fingerprint of the Secrets'
// resource versions, as status.credentialsVersion. The issuance path reads
// through ForProvider, which serves values from a Cache and tokens from
// ServiceAccountTokens, both built once per manager.
//
// Bounds:
//
//   - Namespaces: an EmbedProvider reads Secrets and requests tokens only in
//     its own namespace; a ClusterEmbedProvider only in the namespace each
//     reference names, which it must name. A reference outside them is a
//     permanent ProviderInvalid and reads nothing.
//   - Values: a cached value belongs to one provider object (UID) at one
//     generation and credentialsVersion, so a rotation noticed by the
//     provider reconciler, or a spec change, reads again. Only successful
//     reads are kept, none before the provider has a credentialsVersion,
//     none larger than the largest CA bundle accepted, and for at most
//     maxCachedProviders providers: past that the cache starts over.
//   - ServiceAccount tokens: requested through the TokenRequest API for one
//     audience and ServiceAccountTokenSeconds, the least the API server
//     allows, and reused for the first 80% of that life, keyed on the
//     provider object, its generation, the ServiceAccount and the audience;
//     at most maxCachedServiceAccountTokens are kept.
//
// Both caches drop a provider's entries when its owner calls Forget.
//
// Files: reader.go (Reader, New, ForProvider, Version and the namespace
// rules), cache.go (Cache), satokens.go (ServiceAccountTokens).
package credentials
