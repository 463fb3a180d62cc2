package controller

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/fairness"
	"github.com/embedtokens/embed-token-operator/internal/refresh"
	"github.com/embedtokens/embed-token-operator/internal/tokenstore"
)

// t0 is when the specs' stored tokens were issued.
var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

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
		{"a huge queue waits at most the backoff cap", fairness.QueueState{Rounds: 10000, Waited: long}, 0.999, refresh.MaxBackoff, refresh.MaxBackoff * 5 / 4, false},
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
	stored := refresh.StoredToken{Present: true, IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	tests := []struct {
		name        string
		status      v1alpha1.EmbedTokenRequestStatus
		s           scope
		wantReady   metav1.ConditionStatus
		wantReason  string
		wantMessage string
		reconciling bool
	}{
		{
			name:      "a first token waits as Issuing",
			s:         scope{decision: refresh.Decision{Reason: refresh.NoToken}},
			wantReady: metav1.ConditionFalse, wantReason: v1alpha1.ReasonIssuing,
			wantMessage: "Issuing a token: waiting for the rate limit of EmbedProvider qrvey", reconciling: true,
		},
		{
			name: "a valid token's renewal waits with Ready kept",
			status: v1alpha1.EmbedTokenRequestStatus{RenewAt: timePtr(t0.Add(40 * time.Minute)), Conditions: []metav1.Condition{
				{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonTokenRefreshed}}},
			s:         scope{secret: tokenstore.Loaded{Stored: stored}, decision: refresh.Decision{Reason: refresh.Due}},
			wantReady: metav1.ConditionTrue, wantReason: v1alpha1.ReasonTokenRefreshed,
			wantMessage: "The token is valid until 2026-11-21T13:00:00Z; renewing it is waiting for the rate limit of EmbedProvider qrvey",
		},
		{
			name: "after a failure the failure's conditions stay",
			status: v1alpha1.EmbedTokenRequestStatus{FailedAttempts: 2, RenewAt: timePtr(t0.Add(30 * time.Minute)), Conditions: []metav1.Condition{
				{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonVendorUnavailable,
					Message: "Refresh failed: HTTP 503; the current token is valid until 2026-11-21T13:00:00Z; retrying at 2026-11-21T12:30:00Z"}}},
			s:         scope{secret: tokenstore.Loaded{Stored: stored}, decision: refresh.Decision{Reason: refresh.Due}},
			wantReady: metav1.ConditionTrue, wantReason: v1alpha1.ReasonVendorUnavailable,
			wantMessage: "Refresh failed: HTTP 503; the current token is valid until 2026-11-21T13:00:00Z; retrying at 2026-11-21T12:30:00Z",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			etr := &v1alpha1.EmbedTokenRequest{Status: tc.status}
			s := tc.s
			s.now, s.deferral = t0.Add(45*time.Minute), wait
			if s.secret.Stored.Present {
				s.secret.Digest = "d1"
			}
			setStatus(etr, &s)
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
			s.now = s.now.Add(7 * time.Second)
			setStatus(etr, &s)
			if !equality.Semantic.DeepEqual(*after, etr.Status) {
				t.Errorf("a requeue while waiting changes the status:\n%+v\n%+v", *after, etr.Status)
			}
		})
	}
}

func TestAFloodingNamespaceWaitsForItsShareWhileAnotherIssuesAtOnce(t *testing.T) {
	f := newRequestGates(fairness.NewGates(10, nil), fairness.WriteBudget{QPS: 25, Burst: 50})
	now := t0
	var waits []time.Duration
	for i := range 100 {
		k := types.NamespacedName{Namespace: "flood", Name: fmt.Sprintf("r%03d", i)}
		waits = append(waits, f.writeTurn(k, f.writes.Limiter("flood", now), now))
	}
	if waits[49] != 0 || waits[50] <= 0 {
		t.Fatalf("the burst of 50 issues at once and the 51st waits: waits %v, %v", waits[49], waits[50])
	}
	if last, want := waits[99], 2*time.Second; last != want {
		t.Fatalf("the 100th waits %s, want %s (50 more at 25 a second)", last, want)
	}
	quiet := types.NamespacedName{Namespace: "quiet", Name: "first"}
	if w := f.writeTurn(quiet, f.writes.Limiter("quiet", now), now); w != 0 {
		t.Fatalf("a quiet namespace's first issue waits %s behind the flood", w)
	}
}

func TestNoWriteBudgetNeverWaits(t *testing.T) {
	f := newRequestGates(fairness.NewGates(10, nil), fairness.WriteBudget{})
	for i := range 1000 {
		k := types.NamespacedName{Namespace: "flood", Name: fmt.Sprintf("r%04d", i)}
		if w := f.writeTurn(k, f.writes.Limiter("flood", t0), t0); w != 0 {
			t.Fatalf("request %d waits %s with no budget", i, w)
		}
	}
}
