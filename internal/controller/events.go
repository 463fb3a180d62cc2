package controller

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/refresh"
)

// recordEvents emits an Event when the request's state changes: a token for
// a changed spec, a first token that ends a failure, a refresh someone asked
// for (annotation, rotated credentials), Ready becoming TokenRefreshed (the
// first renewal, or the first success after a failure), or a new failure
// reason. A new request's first token emits none: Ready=True TokenIssued
// (with its lastTransitionTime) records it, and an Event was a third of the
// API writes of a first token and about a sixth of the time N new requests
// took to become Ready (docs/benchmarks.md). A routine renewal while Ready is
// already TokenRefreshed emits nothing either: the status, the Secret and
// the metrics show it, and N tokens renewing cost N Secret writes and N
// status writes, not N Events more. A note names no token and no time (the
// status holds the digest and the expiry), so the Events of a request that
// repeat (a renewal after each expiry, forced refreshes) are one Event with
// a series count (eventwriter), not one Event each.
func (r *EmbedTokenRequestReconciler) recordEvents(etr *v1alpha1.EmbedTokenRequest, prevReady string, s *scope) {
	switch {
	case s.issued != nil && s.decision.Reason == refresh.NoToken && !failedBefore(prevReady):
		// A new request's first token: its Ready condition records it.
	case s.issued != nil && s.decision.Reason == refresh.NoToken || s.issued != nil && s.decision.Reason == refresh.InputsChanged:
		r.Recorder.Eventf(etr, nil, corev1.EventTypeNormal, v1alpha1.ReasonTokenIssued, "Issue", "Issued a token for the %s", issuedFor(s.decision.Reason))
	case s.issued != nil && (s.decision.Reason != refresh.Due || prevReady != v1alpha1.ReasonTokenRefreshed):
		r.Recorder.Eventf(etr, nil, corev1.EventTypeNormal, v1alpha1.ReasonTokenRefreshed, "Refresh", "Refreshed the token (%s)", s.decision.Reason)
	}
	reason := readyReason(etr)
	if reason == prevReady {
		return
	}
	switch {
	case reason == v1alpha1.ReasonRolloutRestartFailed:
		r.Recorder.Eventf(etr, nil, corev1.EventTypeWarning, reason, "RolloutRestart", "%s", readyMessage(etr))
	case reason == v1alpha1.ReasonPropagationFailed:
		r.Recorder.Eventf(etr, nil, corev1.EventTypeWarning, reason, "Propagate", "%s", readyMessage(etr))
	case s.issued == nil && (s.err != nil || reason == v1alpha1.ReasonTokenExpired):
		r.Recorder.Eventf(etr, nil, corev1.EventTypeWarning, reason, "Issue", "%s", readyMessage(etr))
	}
}

// issuedFor names what a TokenIssued Event's token was issued for.
func issuedFor(reason refresh.Reason) string {
	if reason == refresh.InputsChanged {
		return "changed spec"
	}
	return "request after a failure"
}

// failedBefore reports whether the previous Ready reason was a failure: not
// unset, Issuing, or a valid token's.
func failedBefore(prevReady string) bool {
	switch prevReady {
	case "", v1alpha1.ReasonIssuing, v1alpha1.ReasonTokenIssued, v1alpha1.ReasonTokenRefreshed, v1alpha1.ReasonSuspended:
		return false
	}
	return true
}
