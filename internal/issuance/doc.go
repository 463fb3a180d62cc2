// Package issuance is the one path by which the operator gets a token from a
// vendor. The EmbedTokenRequest reconciler, which keeps tokens in Secrets,
// and the token endpoint, which mints per-user tokens from an
// EmbedTokenTemplate on demand, both call it; neither calls a vendor any
// other way.
//
// An Issuer is built once per manager (controller.NewIssuer, in cmd/main.go
// and in the controller suite) and passed to both. A call goes through four
// steps:
//
//  1. Resolve reads the provider an object references from the manager's
//     cache (no API call) and returns a *Provider: its kind, name, UID,
//     generation, spec, vendor and status.credentialsVersion. In namespaced
//     mode a ClusterEmbedProvider is refused.
//  2. Check admits an EmbedTokenRequest (for the endpoint, the request
//     filled in from the template) to the provider: the namespaceSelector,
//     the vendor block, the vendor's implementation in this build and the
//     provider's requestValidations. It makes no vendor call; its errors
//     carry the condition reasons (*provider.Error). CheckVendor is the
//     same without the requestValidations, for a template's readiness.
//  3. Fair scheduling. Every vendor call passes the same fairness.Gates: a
//     turn under the provider's rate limit (per-namespace lanes on a shared
//     ClusterEmbedProvider) and a call slot under caps per provider, per
//     namespace and per namespace through a shared provider. The reconciler
//     asks without blocking (TryAdmit) and requeues; the endpoint blocks
//     (Call) until its turn, or gets a *Throttled at once when the wait
//     would pass its deadline or a bound. Both kinds of caller wait in the
//     same queues, so endpoint traffic cannot take a namespace's or a
//     provider's share beyond the caps.
//  4. Issue calls the vendor with the provider's HTTP client (egress guard,
//     CA bundle, timeout capped by --max-vendor-timeout) and its
//     credentials (package credentials), read uncached through a cache
//     keyed on the provider's generation and credentialsVersion. The token is checked for size and
//     expiry, held to the provider's maxLifetime (a refused token is
//     revoked) and to MaxTrustedLifetime, and every credential the call
//     read is redacted from errors in any encoding. The call is recorded
//     through the Observer (metrics).
//
// The Issuer keeps per-provider state (HTTP clients, limiters, parsed CA
// bundles, credentials). The provider reconcilers release it: ForgetProvider
// when a provider is deleted, ReleaseProvider on each reconcile.
//
// Files: issuer.go (Issuer, Options), provider.go (Resolve, Check,
// Provider), call.go (Call, TryAdmit, Issue, Revoke, Throttled),
// httpclient.go, lifetime.go and expirycap.go (maxLifetime and the
// trusted-expiry cap).
package issuance
