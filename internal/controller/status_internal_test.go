package controller

import (
	"testing"
	"time"

	"k8s.io/client-go/tools/events"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/refresh"
)

// TestFailureBackoff proves a failed vendor call's backoff counts from the
// end of the call, so a vendor that answers only at the timeout is not
// called again the moment it fails.
func TestFailureBackoff(t *testing.T) {
	start := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	stored := refresh.StoredToken{Present: true, IssuedAt: start.Add(-50 * time.Minute), ExpiresAt: start.Add(10 * time.Minute)}
	for _, tc := range []struct {
		name     string
		callTime time.Duration // 0: the reconcile failed before any vendor call ended
	}{
		{"A failure before the vendor call backs off from the reconcile's start", 0},
		{"A call that timed out after 30 s backs off from its end", 30 * time.Second},
		{"A call that failed after 2 s backs off from its end", 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			etr := &v1alpha1.EmbedTokenRequest{}
			etr.UID = "uid-1"
			o := newScope(etr, start)
			o.secret.Stored = stored
			o.fail(provider.Transient(v1alpha1.ReasonVendorUnavailable, "timed out"))
			if tc.callTime > 0 {
				o.failedAt = start.Add(tc.callTime)
			}
			r := &EmbedTokenRequestReconciler{Recorder: events.NewFakeRecorder(10)}
			requeue := r.finish(o).RequeueAfter
			ended := start.Add(tc.callTime)
			backoff := refresh.Backoff(1, false, 0, stored.ExpiresAt, ended, string(etr.UID))
			// The status holds whole seconds.
			if got := etr.Status.LastFailureTime.Time; !got.Equal(ended) {
				t.Errorf("lastFailureTime = %v, want %v", got, ended)
			}
			retryAt := ended.Add(backoff).Truncate(time.Second)
			if got := etr.Status.RenewAt.Time; !got.Equal(retryAt) {
				t.Errorf("renewAt = %v, want %v (%v after the call ended)", got, retryAt, backoff)
			}
			if want := retryAt.Sub(ended); requeue != want {
				t.Errorf("requeue after %v, want %v", requeue, want)
			}
		})
	}
}
