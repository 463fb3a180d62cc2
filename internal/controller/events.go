package controller

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// recordEvents emits an Event when the request's state changes: a first
// token (or one for a changed spec), a refresh someone asked for (annotation,
// rotated credentials), Ready becoming TokenRefreshed (the first renewal, or
// the first success after a failure), or a new failure reason. A routine
// renewal while Ready is already TokenRefreshed emits nothing: the status,
// the Secret and the metrics show it, and N tokens renewing cost N Secret
// writes and N status writes, not N Events more.
func (r *EmbedTokenRequestReconciler) recordEvents(etr *v1alpha1.EmbedTokenRequest, prevReady string, o *outcome) {
	switch {
	case o.issued != nil && o.decision.Reason == RefreshNoToken || o.issued != nil && o.decision.Reason == RefreshInputsChanged:
		r.Recorder.Eventf(etr, nil, corev1.EventTypeNormal, v1alpha1.ReasonTokenIssued, "Issue", "Issued token %s valid until %s", o.issued.Digest(), o.issued.ExpiresAt.UTC().Format(time.RFC3339))
	case o.issued != nil && (o.decision.Reason != RefreshDue || prevReady != v1alpha1.ReasonTokenRefreshed):
		r.Recorder.Eventf(etr, nil, corev1.EventTypeNormal, v1alpha1.ReasonTokenRefreshed, "Refresh", "Refreshed token (%s) to %s valid until %s", o.decision.Reason, o.issued.Digest(), o.issued.ExpiresAt.UTC().Format(time.RFC3339))
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
	case o.issued == nil && (o.err != nil || reason == v1alpha1.ReasonTokenExpired):
		r.Recorder.Eventf(etr, nil, corev1.EventTypeWarning, reason, "Issue", "%s", readyMessage(etr))
	}
}
