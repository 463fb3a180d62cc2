package controller

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/fairness"
	"github.com/embedtokens/embed-token-operator/internal/refresh"
)

// A reconcile worker is shared by every request in the cluster, so no vendor
// may hold one for long: a request that must wait for its provider's rate
// limit or for a free call slot is requeued instead of blocking a worker.

const (
	// reportWaitAfter is how long a vendor call must wait before the wait
	// is written into the status; shorter waits change nothing there.
	reportWaitAfter = 5 * time.Second
	// wakeBuffer is how many wake-ups may wait for the controller's queue.
	wakeBuffer = 1024
)

// deferral is why a vendor call was put off, and when to look again. It is
// not a failure: no backoff, no failure condition, no Event.
type deferral struct {
	after time.Duration
	// message completes the Ready condition; it holds no times, so
	// requeues while waiting write no status.
	message string
	// quiet leaves the status untouched: a short wait is routine (calls
	// of one provider taking turns) and not worth a status write.
	quiet bool
}

// requestGates is the reconciler's side of fair scheduling: the issuer's
// gates, which every vendor call passes (the endpoint's too), the wake-ups
// of requests waiting in them, and each namespace's share of the API
// writes, which only the reconciler spends.
type requestGates struct {
	*fairness.Gates
	wakeups chan event.GenericEvent
	// writeTickets are turns under the namespaces' write budgets.
	writeTickets fairness.Tickets
	writes       *fairness.NamespaceLimiters
}

// newRequestGates points g's wake-ups at the reconciler's queue.
func newRequestGates(g *fairness.Gates, writes fairness.WriteBudget) *requestGates {
	f := &requestGates{Gates: g, wakeups: make(chan event.GenericEvent, wakeBuffer), writes: fairness.NewNamespaceLimiters(writes)}
	g.SetWake(f.wake)
	return f
}

// wake enqueues a request waiting for a call slot. It never blocks: when the
// buffer is full the request's fallback requeue brings it back.
func (f *requestGates) wake(key types.NamespacedName) {
	obj := &v1alpha1.EmbedTokenRequest{}
	obj.Namespace, obj.Name = key.Namespace, key.Name
	select {
	case f.wakeups <- event.GenericEvent{Object: obj}:
	default:
	}
}

// settle drops what a request held while waiting (its rate-limit tickets,
// its place in its namespace's lane and in the slot queues) once it no
// longer waits.
func (f *requestGates) settle(key types.NamespacedName) {
	f.Settle(key)
	f.writeTickets.Drop(key, time.Now())
}

// admit lets the request's vendor call through its provider's gates
// (Issuer.TryAdmit), or records in the scope why it must wait. A turn under
// the rate limit comes from a ticket the request keeps across requeues, so
// waiting requests are served in order, each requeued once for its turn;
// under a shared provider each namespace holds one ticket at a time. The
// returned function frees the call slot.
func (r *EmbedTokenRequestReconciler) admit(ctx context.Context, s *scope) (func(), bool) {
	etr, p := s.request, s.provider
	now := time.Now()
	writeWait, ok := r.admitWrites(ctx, s, now)
	if !ok {
		return nil, false
	}
	a := r.Issuer.TryAdmit(s.key, p, etr.Namespace, now)
	switch a.Wait {
	case fairness.WaitTurn:
		r.waitInQueue(ctx, s, a.Queue, now, "waiting for its namespace's turn under the rate limit of "+p.Describe(),
			"Vendor call waits for its namespace's turn under the rate limit")
		return nil, false
	case fairness.WaitRateLimit:
		s.deferral = &deferral{after: a.After, quiet: a.After < reportWaitAfter, message: "waiting for the rate limit of " + p.Describe()}
		log.FromContext(ctx).V(1).Info("Vendor call waits for the rate limit", "embedTokenRequest", klog.KObj(etr), "wait", a.After)
		return nil, false
	case fairness.WaitSlot:
		r.waitInQueue(ctx, s, a.Queue, now, fmt.Sprintf("waiting for a free vendor call slot of %s (%s)", p.Describe(), r.Issuer.DescribeCaps(p)),
			"Vendor call waits for a free slot")
		return nil, false
	}
	r.fair.writeTickets.Use(s.key)
	if wait := max(a.Sleep, writeWait); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return a.Release, true
}

// admitWrites lets the request's issue through its namespace's share of
// the API write budget, returning how long to sleep for its turn, or
// records in the scope that it waits longer. The turn is a ticket kept
// across requeues, as under a provider's rate limit, and the wait is quiet:
// a status write would spend the budget it waits for.
func (r *EmbedTokenRequestReconciler) admitWrites(ctx context.Context, s *scope, now time.Time) (time.Duration, bool) {
	ns := s.request.Namespace
	wait := r.fair.writeTurn(s.key, r.fair.writes.Limiter(ns, now), now)
	if wait <= fairness.MaxLimiterSleep {
		return wait, true
	}
	s.deferral = &deferral{after: wait, quiet: true, message: "waiting for namespace " + ns + "'s share of the operator's API writes"}
	r.fair.Slots.Forget(s.key)
	log.FromContext(ctx).V(1).Info("Vendor call waits for the namespace's share of the API writes", "embedTokenRequest", klog.KObj(s.request), "wait", wait)
	return 0, false
}

// waitInQueue records in the scope that the request's vendor call waits in
// one of its provider's queues: for a free call slot, or for its
// namespace's turn under the rate limit. A freed slot or a turn used or
// given back wakes it; the requeue is only the fallback for a lost
// wake-up, longer the longer the queue.
func (r *EmbedTokenRequestReconciler) waitInQueue(ctx context.Context, s *scope, queue fairness.QueueState, now time.Time, message, logMessage string) {
	after, quiet := slotWait(queue, refresh.Jitter(string(s.request.UID), now.UnixNano()))
	s.deferral = &deferral{after: after, quiet: quiet, message: message}
	log.FromContext(ctx).V(1).Info(logMessage, "embedTokenRequest", klog.KObj(s.request), "rounds", queue.Rounds, "waited", queue.Waited)
}

// slotWait is when a request refused a call slot looks again if no freed
// slot wakes it first, and whether its wait is still too short to report.
// The fallback is fairness.RetryBase per round of calls its queue needs, at most
// refresh.MaxBackoff, made up to 25% longer by unit (in [0, 1)) so waiters spread;
// a wait not yet reported comes back by reportWaitAfter to report it.
func slotWait(q fairness.QueueState, unit float64) (after time.Duration, quiet bool) {
	d := min(fairness.RetryBase*time.Duration(max(q.Rounds, 1)), refresh.MaxBackoff)
	d += time.Duration(float64(d) * refresh.BackoffJitter * unit)
	if q.Waited < reportWaitAfter {
		return min(d, reportWaitAfter), true
	}
	return d, false
}

// writeTurn is how long after now key's turn under its namespace's write
// budget l comes, reserving one if key holds none. The budget is the
// namespace's own, so no lane shares it out further.
func (f *requestGates) writeTurn(key types.NamespacedName, l *rate.Limiter, now time.Time) time.Duration {
	wait, _, _ := f.writeTickets.Claim(key, l, "", now)
	return wait
}
