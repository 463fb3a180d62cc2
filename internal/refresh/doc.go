// Package refresh answers "should this request's token be issued now, and
// if not, when?" from the stored token, the spec and the clock alone.
//
// Everything here is pure: Decide, RenewAt and Backoff take the time as an
// argument and jitter is derived from the request's UID, so a restarted
// manager computes the same times and every branch is table-tested with an
// injected clock. The reconciler builds an Input once per reconcile
// (Settings.Input), asks Decide, and records the Decision in its scope.
package refresh
