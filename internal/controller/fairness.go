package controller

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/fairness"
	"github.com/embedtokens/embed-token-operator/internal/issuance"
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
	writes       namespaceLimiters
}

// newRequestGates points g's wake-ups at the reconciler's queue.
func newRequestGates(g *fairness.Gates, writes WriteBudget) *requestGates {
	f := &requestGates{Gates: g, wakeups: make(chan event.GenericEvent, wakeBuffer), writes: namespaceLimiters{budget: writes}}
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

// admit lets a vendor call for etr through p's gates (Issuer.TryAdmit), or
// records in o why it must wait. A turn under the rate limit comes from a
// ticket the request keeps across requeues, so waiting requests are served
// in order, each requeued once for its turn; under a shared provider each
// namespace holds one ticket at a time. The returned function frees the
// call slot.
func (r *EmbedTokenRequestReconciler) admit(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, p *issuance.Provider, o *outcome) (func(), bool) {
	key := client.ObjectKeyFromObject(etr)
	now := time.Now()
	writeWait, ok := r.admitWrites(ctx, etr, o, now)
	if !ok {
		return nil, false
	}
	a := r.Issuer.TryAdmit(key, p, etr.Namespace, now)
	switch a.Wait {
	case issuance.WaitTurn:
		r.waitForTurn(ctx, etr, p, o, a.Queue, now)
		return nil, false
	case issuance.WaitRateLimit:
		o.deferral = &deferral{after: a.After, quiet: a.After < reportWaitAfter, message: "waiting for the rate limit of " + p.Describe()}
		log.FromContext(ctx).V(1).Info("Vendor call waits for the rate limit", "embedTokenRequest", klog.KObj(etr), "wait", a.After)
		return nil, false
	case issuance.WaitSlot:
		r.waitForSlot(ctx, etr, p, o, a.Queue, now)
		return nil, false
	}
	r.fair.writeTickets.Use(key)
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

// admitWrites lets etr's issue through its namespace's share of the API
// write budget, returning how long to sleep for its turn, or records in o
// that it waits longer. The turn is a ticket kept across requeues, as under
// a provider's rate limit, and the wait is quiet: a status write would
// spend the budget it waits for.
func (r *EmbedTokenRequestReconciler) admitWrites(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, o *outcome, now time.Time) (time.Duration, bool) {
	key := client.ObjectKeyFromObject(etr)
	wait := r.fair.writeTurn(key, r.fair.writes.limiter(etr.Namespace, now), now)
	if wait <= issuance.MaxLimiterSleep {
		return wait, true
	}
	o.deferral = &deferral{after: wait, quiet: true, message: "waiting for namespace " + etr.Namespace + "'s share of the operator's API writes"}
	r.fair.Slots.Forget(key)
	log.FromContext(ctx).V(1).Info("Vendor call waits for the namespace's share of the API writes", "embedTokenRequest", klog.KObj(etr), "wait", wait)
	return 0, false
}

// waitForSlot records in o that etr's vendor call waits for a call slot of
// p; a freed slot wakes it, the requeue is only the fallback.
func (r *EmbedTokenRequestReconciler) waitForSlot(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, p *issuance.Provider, o *outcome,
	queue fairness.QueueState, now time.Time) {
	after, quiet := slotWait(queue, unitJitter(string(etr.UID), now.UnixNano()))
	o.deferral = &deferral{after: after, quiet: quiet,
		message: fmt.Sprintf("waiting for a free vendor call slot of %s (%s)", p.Describe(), r.Issuer.DescribeCaps(p))}
	log.FromContext(ctx).V(1).Info("Vendor call waits for a free slot", "embedTokenRequest", klog.KObj(etr),
		"rounds", queue.Rounds, "waited", queue.Waited)
}

// waitForTurn records in o that etr's vendor call waits for its namespace's
// turn under p's rate limit. A woken request comes back as soon as the
// namespace's reservation is used or given back; the requeue is only the fallback for a
// lost wake-up, longer the longer the lane.
func (r *EmbedTokenRequestReconciler) waitForTurn(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, p *issuance.Provider,
	o *outcome, queue fairness.QueueState, now time.Time) {
	after, quiet := slotWait(queue, unitJitter(string(etr.UID), now.UnixNano()))
	o.deferral = &deferral{after: after, quiet: quiet, message: "waiting for its namespace's turn under the rate limit of " + p.Describe()}
	log.FromContext(ctx).V(1).Info("Vendor call waits for its namespace's turn under the rate limit", "embedTokenRequest", klog.KObj(etr),
		"queued", queue.Rounds, "waited", queue.Waited)
}

// slotWait is when a request refused a call slot looks again if no freed
// slot wakes it first, and whether its wait is still too short to report.
// The fallback is fairness.RetryBase per round of calls its queue needs, at most
// MaxBackoff, made up to 25% longer by unit (in [0, 1)) so waiters spread;
// a wait not yet reported comes back by reportWaitAfter to report it.
func slotWait(q fairness.QueueState, unit float64) (after time.Duration, quiet bool) {
	d := min(fairness.RetryBase*time.Duration(max(q.Rounds, 1)), MaxBackoff)
	d += time.Duration(float64(d) * backoffJitter * unit)
	if q.Waited < reportWaitAfter {
		return min(d, reportWaitAfter), true
	}
	return d, false
}
