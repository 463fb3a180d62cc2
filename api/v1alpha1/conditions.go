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

// Condition types, following the kstatus conventions so that kubectl wait,
// Argo CD and Flux understand an EmbedTokenRequest without custom code.
const (
	// ConditionReady is True while the Secret holds a valid token that the
	// operator is keeping fresh. It stays True during a failed refresh as long
	// as the stored token has not expired.
	ConditionReady = "Ready"

	// ConditionReconciling is True while no valid token is stored and the
	// operator is still trying without needing a person: the first token,
	// an expired token being replaced, a transient failure (its reason then
	// names the failure). A new token asked for while the stored one is
	// still valid (a refresh, a changed spec) does not set it: Ready stays
	// True then.
	ConditionReconciling = "Reconciling"

	// ConditionStalled is True when progress needs a person: bad
	// configuration, a missing credential, or a vendor that rejects the
	// credentials. Retries continue slowly so a fix is picked up.
	ConditionStalled = "Stalled"
)

// Condition reasons. Events use the same reasons so that `kubectl describe`
// and the conditions tell one story. See docs/troubleshooting.md for the fix
// for each.
const (
	// ReasonValid: a provider's configuration is valid and its credentials
	// resolve; or a template's provider admits it and every parameter
	// compiles, so the token endpoint can serve it.
	ReasonValid = "Valid"
	// ReasonTokenIssued: the first token for the current spec was issued.
	ReasonTokenIssued = "TokenIssued"
	// ReasonTokenRefreshed: a token was replaced before it expired.
	ReasonTokenRefreshed = "TokenRefreshed"
	// ReasonIssuing: a token is being requested.
	ReasonIssuing = "Issuing"
	// ReasonSuspended: spec.suspend is true; no vendor calls are made.
	ReasonSuspended = "Suspended"
	// ReasonTokenExpired: the stored token has expired and refreshing it fails.
	ReasonTokenExpired = "TokenExpired"

	// ReasonSecretConflict: a Secret with the target name exists and is not
	// owned by this request; it is left untouched.
	ReasonSecretConflict = "SecretConflict"
	// ReasonSecretWriteRefused: the API server refused to store the token
	// for a reason retrying the same write will not fix (the write is
	// invalid, forbidden, e.g. by an admission policy or webhook, or too
	// large). The token is discarded (revoked where the vendor can), not
	// kept for a retry; the next attempt, with a new token, waits for the
	// slowest backoff unless the request's spec changes.
	ReasonSecretWriteRefused = "SecretWriteRefused"
	// ReasonProviderNotFound: the referenced provider does not exist.
	ReasonProviderNotFound = "ProviderNotFound"
	// ReasonProviderInvalid: the provider's configuration cannot be used.
	ReasonProviderInvalid = "ProviderInvalid"
	// ReasonVendorMismatch: the request's parameter block is for another
	// vendor than the provider's.
	ReasonVendorMismatch = "VendorMismatch"
	// ReasonVendorNotSupported: this build of the operator has no
	// implementation for the provider's vendor.
	ReasonVendorNotSupported = "VendorNotSupported"
	// ReasonNamespaceNotAllowed: the ClusterEmbedProvider's namespaceSelector
	// does not admit the request's namespace.
	ReasonNamespaceNotAllowed = "NamespaceNotAllowed"
	// ReasonInvalidRequest: the request's parameters cannot be sent (e.g.
	// extra fields that try to replace reserved ones).
	ReasonInvalidRequest = "InvalidRequest"
	// ReasonCredentialsNotFound: a credential Secret or key is missing.
	ReasonCredentialsNotFound = "CredentialsNotFound"
	// ReasonInvalidCredentials: a credential has the wrong form (e.g. not PEM).
	ReasonInvalidCredentials = "InvalidCredentials"

	// ReasonVendorUnauthorized: the vendor rejected the credentials (401/403).
	ReasonVendorUnauthorized = "VendorUnauthorized"
	// ReasonTokenLimitReached: the vendor refuses more tokens for this user
	// (Qlik Cloud's per-user maximum); revoke tokens or wait.
	ReasonTokenLimitReached = "TokenLimitReached"
	// ReasonVendorRejected: the vendor rejected the request (other 4xx).
	ReasonVendorRejected = "VendorRejected"
	// ReasonVendorUnavailable: the vendor failed or was unreachable (5xx,
	// timeouts, connection errors). Retried with backoff.
	ReasonVendorUnavailable = "VendorUnavailable"
	// ReasonVendorQuotaExceeded: the vendor refuses more calls for now
	// (HTTP 429, or a vendor's own quota or capacity error such as Power
	// BI's embed-token limits). It is reported apart from VendorUnavailable
	// because the fix differs: the vendor is up, the operator (or something
	// else sharing the credential) asks too often. Transient: retried with
	// backoff, never sooner than the vendor's Retry-After.
	ReasonVendorQuotaExceeded = "VendorQuotaExceeded"
	// ReasonInvalidResponse: the vendor answered with something that is not a
	// usable token (not JSON, no token, expiry in the past).
	ReasonInvalidResponse = "InvalidResponse"
	// ReasonTokenExpiryCapped (Warning event only): the vendor stated an
	// expiry further away than the operator trusts (see
	// issuance.MaxTrustedLifetime); the token is stored with a capped
	// expiry, so it is renewed sooner than the vendor said.
	ReasonTokenExpiryCapped = "TokenExpiryCapped" //nolint:gosec // G101: a condition reason, not a credential
	// ReasonLifetimeExceedsMax: the vendor issued a token valid for longer
	// than the provider's maxLifetime, which it ignores or cannot be asked
	// for (spec.lifetimeExceedsMax: Refuse). The token is not stored and is
	// revoked where the vendor can revoke; the request keeps the token it
	// holds. Asking again gets the same answer, so it stalls: a person must
	// configure the vendor, raise maxLifetime, or set lifetimeExceedsMax:
	// RenewAtMax. Retried slowly.
	ReasonLifetimeExceedsMax = "LifetimeExceedsMax"

	// ReasonVendorAddressNotAllowed: the vendor's host resolves to an address
	// the operator's egress guard refuses (loopback, link-local or cloud
	// metadata, and private ranges for a namespaced EmbedProvider), unless
	// --allow-vendor-cidrs allows it. Nothing was sent; a person must change
	// the provider or the flag.
	ReasonVendorAddressNotAllowed = "VendorAddressNotAllowed"
	// ReasonInvalidParameters: an EmbedTokenTemplate's parameters cannot be
	// used (a path that names no string field of the vendor block, an index
	// the template does not hold, a validation that does not compile), or a
	// token endpoint call's parameters are refused (unknown, missing,
	// oversized, not UTF-8, or failing their validation). The message says
	// which parameter and why, never its value.
	ReasonInvalidParameters = "InvalidParameters"
	// ReasonRequestDenied: the request fails one of its provider's
	// spec.requestValidations rules; the message is the rule's. No vendor
	// call is made until the request or the rule changes.
	ReasonRequestDenied = "RequestDenied"

	// ReasonRolloutRestartFailed: the token is stored and valid, but a
	// rolloutRestartTarget could not be restarted (e.g. the operator may not
	// patch it); its pods may still read the previous token from their
	// environment. Retried with backoff.
	ReasonRolloutRestartFailed = "RolloutRestartFailed"

	// ReasonPropagationFailed: the token is stored and valid, but it could
	// not be pushed into the pods spec.propagation selects (e.g. the
	// operator may not list or patch them); they see it at the kubelet's
	// next sync of the pod instead. Retried.
	ReasonPropagationFailed = "PropagationFailed"
)

// The polarity of the reasons: which failures need a person (Stalled) and
// which cost a vendor call to retry (and so wait out a backoff). The
// controller reads them here, next to the reasons, so a new reason is
// classified where it is declared.

// stalledReasons need a person to act; the rest heal by retrying.
var stalledReasons = map[string]bool{
	ReasonSecretConflict:      true,
	ReasonProviderNotFound:    true,
	ReasonProviderInvalid:     true,
	ReasonVendorMismatch:      true,
	ReasonVendorNotSupported:  true,
	ReasonNamespaceNotAllowed: true,
	ReasonInvalidRequest:      true,
	ReasonCredentialsNotFound: true,
	ReasonInvalidCredentials:  true,
	ReasonVendorUnauthorized:  true,
	ReasonVendorRejected:      true,
	ReasonTokenLimitReached:   true,
	ReasonRequestDenied:       true,
	ReasonInvalidParameters:   true,
	// The vendor ignores the lifetime asked for: asking again gets the same.
	ReasonLifetimeExceedsMax: true,
	// Nothing was sent: the egress guard refused the vendor's address.
	ReasonVendorAddressNotAllowed: true,
	ReasonSecretWriteRefused:      true,
}

// vendorFailureReasons are failures whose retry costs a vendor call: those
// of the call itself, and a Secret write the API server refused (its token
// is discarded, so the retry asks for a new one).
var vendorFailureReasons = map[string]bool{
	ReasonVendorUnauthorized:  true,
	ReasonVendorRejected:      true,
	ReasonVendorUnavailable:   true,
	ReasonVendorQuotaExceeded: true,
	ReasonInvalidResponse:     true,
	ReasonTokenLimitReached:   true,
	ReasonLifetimeExceedsMax:  true,
	ReasonSecretWriteRefused:  true,
}

// IsStalledReason reports whether a failure with reason needs a person to
// act (bad configuration, rejected credentials, a denied request): the
// object reports Stalled, and retries come at the slowest backoff.
func IsStalledReason(reason string) bool { return stalledReasons[reason] }

// IsVendorFailureReason reports whether a failure with reason came from a
// vendor call (or discarded its token), so that retrying costs another
// vendor call: only these make the next attempt wait for its backoff. Other
// failures cost no vendor call and are re-checked on every event, so fixing
// the configuration heals at once.
func IsVendorFailureReason(reason string) bool { return vendorFailureReasons[reason] }
