package controller

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/embedtokens/embed-token-operator/internal/refresh"
)

// TestErrorRetries proves retries after reconcile errors double as
// controller-runtime's do, but never wait past a third of the stored
// token's remaining life, so an outage that ends before expiry leaves a
// retry before it.
func TestErrorRetries(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		expiresIn time.Duration // 0: no stored token
		failures  int           // retries already failed before the one measured
		want      time.Duration
	}{
		{"The first retry comes after 5 ms", time.Hour, 0, 5 * time.Millisecond},
		{"Retries double with each failure", time.Hour, 4, 80 * time.Millisecond},
		{"A request without a token doubles up to refresh.MaxBackoff", 0, 40, refresh.MaxBackoff},
		{"A token that expires in an hour waits at most refresh.MaxBackoff", time.Hour, 40, refresh.MaxBackoff},
		{"A token that expires in 30 s is retried within 10 s however many retries failed", 30 * time.Second, 40, 10 * time.Second},
		{"A doubling retry shorter than the cap is kept", 30 * time.Second, 10, 5120 * time.Millisecond},
		{"A token about to expire is retried every second, not in a hot loop", 2 * time.Second, 40, time.Second},
		{"An expired token no longer shortens the wait", -time.Second, 40, refresh.MaxBackoff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "a"}}
			l := newErrorRetries(func(got reconcile.Request) (time.Time, bool) {
				if got != req {
					t.Fatalf("expiry asked for %v, want %v", got, req)
				}
				return now.Add(tc.expiresIn), tc.expiresIn != 0
			}, clocktesting.NewFakePassiveClock(now))
			for range tc.failures {
				l.When(req)
			}
			if got := l.When(req); got != tc.want {
				t.Errorf("When after %d failures = %v, want %v", tc.failures, got, tc.want)
			}
			if got := l.NumRequeues(req); got != tc.failures+1 {
				t.Errorf("NumRequeues = %d, want %d", got, tc.failures+1)
			}
			l.Forget(req)
			if got := l.When(req); got != 5*time.Millisecond {
				t.Errorf("the first retry after a success waits %v, want 5ms", got)
			}
		})
	}
}
