package controller

import (
	"context"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/embedtokens/embed-token-operator/internal/refresh"
)

// errorRetries spaces the retries controller-runtime schedules after a
// reconcile returns an error, typically an API server that cannot be
// reached, so that no status records a backoff. It keeps controller-runtime's
// defaults (per request doubling from 5 ms, 10 retries per second overall)
// with two changes: a request waits at most refresh.MaxBackoff instead of 16 minutes,
// and never past a third of its stored token's remaining life, the rule
// Backoff applies to vendor failures. Without the second, retries doubling
// through an outage of tens of seconds can next fall after the token in
// the Secret has expired, however soon the API server is back.
type errorRetries struct {
	workqueue.TypedRateLimiter[reconcile.Request]
	// expiry is when the token stored for the request expires, if it has one.
	expiry func(reconcile.Request) (time.Time, bool)
	clock  clock.PassiveClock
}

func newErrorRetries(expiry func(reconcile.Request) (time.Time, bool), clk clock.PassiveClock) *errorRetries {
	return &errorRetries{
		TypedRateLimiter: workqueue.NewTypedMaxOfRateLimiter(
			workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](5*time.Millisecond, refresh.MaxBackoff),
			&workqueue.TypedBucketRateLimiter[reconcile.Request]{Limiter: rate.NewLimiter(rate.Limit(10), 100)},
		),
		expiry: expiry,
		clock:  clk,
	}
}

// When is how long the request waits before its next retry.
func (l *errorRetries) When(req reconcile.Request) time.Duration {
	d := l.TypedRateLimiter.When(req)
	if expires, ok := l.expiry(req); ok {
		if remaining := expires.Sub(l.clock.Now()); remaining > 0 {
			d = min(d, max(remaining/3, refresh.MinRetry))
		}
	}
	return d
}

// storedExpiry is when the token stored for a request expires, as the
// cache shows it (tokenstore.Store.StoredExpiry).
func (r *EmbedTokenRequestReconciler) storedExpiry(req reconcile.Request) (time.Time, bool) {
	return r.store.StoredExpiry(context.Background(), req.NamespacedName)
}
