package controller

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/fairness"
)

func TestSlotWait(t *testing.T) {
	long := reportWaitAfter
	tests := []struct {
		name      string
		q         fairness.QueueState
		unit      float64
		min, max  time.Duration
		wantQuiet bool
	}{
		{"a first refusal comes back soon and writes nothing", fairness.QueueState{Rounds: 1}, 0, fairness.RetryBase, fairness.RetryBase, true},
		{"jitter makes it up to a quarter later", fairness.QueueState{Rounds: 1, Waited: long}, 0.999, fairness.RetryBase, fairness.RetryBase * 5 / 4, false},
		{"a long queue looks again later", fairness.QueueState{Rounds: 5, Waited: long}, 0, 5 * fairness.RetryBase, 5 * fairness.RetryBase, false},
		{"but a wait not yet reported comes back to report it", fairness.QueueState{Rounds: 5, Waited: time.Second}, 0, reportWaitAfter, reportWaitAfter, true},
		{"a huge queue waits at most the backoff cap", fairness.QueueState{Rounds: 10000, Waited: long}, 0.999, MaxBackoff, MaxBackoff * 5 / 4, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			after, quiet := slotWait(tc.q, tc.unit)
			if after < tc.min || after > tc.max || quiet != tc.wantQuiet {
				t.Errorf("slotWait(%+v, %v) = %s, %v; want within [%s, %s], %v", tc.q, tc.unit, after, quiet, tc.min, tc.max, tc.wantQuiet)
			}
		})
	}
}

// TestSetStatusWhileDeferred checks that waiting for a rate limit or a call
// slot is not a failure, and that requeues while waiting leave the status
// exactly as it was, so they cost no status write.
func TestSetStatusWhileDeferred(t *testing.T) {
	wait := &deferral{after: 3 * time.Second, message: "waiting for the rate limit of EmbedProvider qrvey"}
	stored := StoredToken{Present: true, IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	tests := []struct {
		name        string
		status      v1alpha1.EmbedTokenRequestStatus
		o           outcome
		wantReady   metav1.ConditionStatus
		wantReason  string
		wantMessage string
		reconciling bool
	}{
		{
			name:      "a first token waits as Issuing",
			o:         outcome{decision: Decision{Reason: RefreshNoToken}},
			wantReady: metav1.ConditionFalse, wantReason: v1alpha1.ReasonIssuing,
			wantMessage: "Issuing a token: waiting for the rate limit of EmbedProvider qrvey", reconciling: true,
		},
		{
			name: "a valid token's renewal waits with Ready kept",
			status: v1alpha1.EmbedTokenRequestStatus{RenewAt: timePtr(t0.Add(40 * time.Minute)), Conditions: []metav1.Condition{
				{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonTokenRefreshed}}},
			o:         outcome{stored: stored, decision: Decision{Reason: RefreshDue}},
			wantReady: metav1.ConditionTrue, wantReason: v1alpha1.ReasonTokenRefreshed,
			wantMessage: "The token is valid until 2026-11-21T13:00:00Z; renewing it is waiting for the rate limit of EmbedProvider qrvey",
		},
		{
			name: "after a failure the failure's conditions stay",
			status: v1alpha1.EmbedTokenRequestStatus{FailedAttempts: 2, RenewAt: timePtr(t0.Add(30 * time.Minute)), Conditions: []metav1.Condition{
				{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonVendorUnavailable,
					Message: "Refresh failed: HTTP 503; the current token is valid until 2026-11-21T13:00:00Z; retrying at 2026-11-21T12:30:00Z"}}},
			o:         outcome{stored: stored, decision: Decision{Reason: RefreshDue}},
			wantReady: metav1.ConditionTrue, wantReason: v1alpha1.ReasonVendorUnavailable,
			wantMessage: "Refresh failed: HTTP 503; the current token is valid until 2026-11-21T13:00:00Z; retrying at 2026-11-21T12:30:00Z",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			etr := &v1alpha1.EmbedTokenRequest{Status: tc.status}
			o := tc.o
			o.now, o.deferral = t0.Add(45*time.Minute), wait
			if o.stored.Present {
				o.digest = "d1"
			}
			setStatus(etr, &o)
			after := etr.Status.DeepCopy()
			ready := meta.FindStatusCondition(etr.Status.Conditions, v1alpha1.ConditionReady)
			if ready == nil || ready.Status != tc.wantReady || ready.Reason != tc.wantReason || ready.Message != tc.wantMessage {
				t.Fatalf("Ready = %+v, want %s %s %q", ready, tc.wantReady, tc.wantReason, tc.wantMessage)
			}
			if got := meta.IsStatusConditionTrue(etr.Status.Conditions, v1alpha1.ConditionReconciling); got != tc.reconciling {
				t.Errorf("Reconciling = %v, want %v", got, tc.reconciling)
			}
			if meta.FindStatusCondition(etr.Status.Conditions, v1alpha1.ConditionStalled) != nil {
				t.Errorf("a deferral stalls the request")
			}
			if etr.Status.FailedAttempts != tc.status.FailedAttempts || !equality.Semantic.DeepEqual(etr.Status.RenewAt, tc.status.RenewAt) {
				t.Errorf("failedAttempts %d renewAt %v changed from %d %v", etr.Status.FailedAttempts, etr.Status.RenewAt,
					tc.status.FailedAttempts, tc.status.RenewAt)
			}
			o.now = o.now.Add(7 * time.Second)
			setStatus(etr, &o)
			if !equality.Semantic.DeepEqual(*after, etr.Status) {
				t.Errorf("a requeue while waiting changes the status:\n%+v\n%+v", *after, etr.Status)
			}
		})
	}
}
