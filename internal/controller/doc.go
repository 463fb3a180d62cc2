// Package controller holds the operator's reconcilers and the wiring that
// registers them (Setup): EmbedTokenRequest, EmbedProvider and
// ClusterEmbedProvider, EmbedTokenTemplate.
//
// # An EmbedTokenRequest reconcile
//
// Reconcile reads the request, waits while the cache is behind the
// operator's own writes (tokenstore.Store.CacheBehind), builds one scope
// (scope.go) and runs these steps on it, each a
// func(ctx, *scope) (stepResult, error) that records what it learns in the
// scope and may stop the reconcile:
//
//  1. loadSecret (storetoken.go): the Secret's metadata and the token it
//     stores, from the cache (tokenstore.Store.Load).
//  2. resolveProvider (embedtokenrequest_controller.go): the provider
//     (issuance.Issuer.Resolve) and, once, what derives from it: the
//     lifetime asked of the vendor, the input hash, the refresh input.
//  3. decide: refresh.Decide says whether a token is due and when;
//     a suspended request stops here.
//  4. repairSecret (storetoken.go): when no token is due, rewrite Secret
//     metadata that was edited or that the spec changed.
//  5. checkIssuable: when a token is due, the checks that cost no vendor
//     call (Secret conflict, provider, namespace, requestValidations,
//     single-use vendor), then the backoff of a failed attempt.
//  6. callVendor (callvendor.go): a token an earlier attempt could not
//     store, or a vendor call through the fair gates (fairness.go admit)
//     and the Issuer.
//  7. storeToken (storetoken.go): write the Secret (tokenstore.Store.Put),
//     settle conflicts, hold or discard a token that could not be stored,
//     revoke the token replaced.
//  8. rolloutToken (embedtokenrequest_controller.go): restart workloads
//     and push the token into pods (internal/rollout), once per token.
//
// report then computes the status from the scope (status.go setStatus, the
// one place it is computed), records Events for state changes (events.go)
// and patches the status once, only if it changed.
//
// # Files
//
//   - embedtokenrequest_controller.go: the reconciler, Reconcile, the step
//     list, report and the watches it sets up.
//   - scope.go: the scope, the step type and run.
//   - storetoken.go, callvendor.go: the steps that read and write the
//     Secret and call the vendor.
//   - fairness.go: admission of a vendor call through the provider's call
//     slots and rate limit and the namespace's write budget
//     (internal/fairness); a wait is a deferral, not a failure.
//   - status.go, events.go: the status and Events from a scope.
//   - retry.go: spacing of retries after API errors.
//   - watches.go: the provider index, and which events enqueue a request.
//   - provider_controller.go, embedtokentemplate_controller.go: the other
//     reconcilers; warnings.go: vendor configuration warnings.
//   - setup.go: Options, the cache's options, the Issuer and Setup.
//   - intern.go: the cache transform that shares repeated strings.
//
// The concerns the steps use live in their own packages: internal/refresh
// (the refresh decision and backoff), internal/tokenstore (the Secret),
// internal/issuance (everything a vendor call needs, shared with the token
// endpoint), internal/credentials, internal/fairness, internal/rollout and
// internal/metrics.
package controller
