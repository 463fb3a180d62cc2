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
)

// A reconcile worker is shared by every request in the cluster, so no vendor
// may hold one for long: a request that must wait for its provider's rate
// limit or for a free call slot is requeued instead of blocking a worker.

const (
	// maxLimiterSleep is the longest a worker sleeps for its turn under a
	// provider's rate limit; a longer wait is a requeue.
	maxLimiterSleep = 200 * time.Millisecond
	// slotRetryBase is the fallback requeue of a request waiting for a call
	// slot per round of waiters ahead of it; a freed slot wakes the first
	// waiters at once, so the fallback only covers a lost wake-up.
	slotRetryBase = 2 * time.Second
	// reportWaitAfter is how long a vendor call must wait before the wait
	// is written into the status; shorter waits change nothing there.
	reportWaitAfter = 5 * time.Second
	// wakeBuffer is how many wake-ups may wait for the controller's queue.
	wakeBuffer = 1024
)

// callCaps are how many vendor calls may be in flight at once, so a
// provider that never answers holds a bounded share of the reconcile
// workers: half of them through one provider and half from one namespace
// (whatever providers it uses, so many providers do not multiply its share;
// its providers share that half), and a quarter from one namespace through
// a shared ClusterEmbedProvider, so one team cannot take it all. A quarter
// per provider cost a single-provider cluster about 13% of its issuing
// rate (docs/benchmarks.md); half cost nothing measurable.
type callCaps struct {
	provider, namespace, sharedNamespace int
}

// newCallCaps derives the caps from the number of workers, each at least 1.
func newCallCaps(workers int) callCaps {
	half := max(workers/2, 1)
	return callCaps{provider: half, namespace: half, sharedNamespace: max(workers/4, 1)}
}

// limits are the caps one call from namespace through provider uid counts
// against; shared is true for a ClusterEmbedProvider.
func (c callCaps) limits(uid types.UID, namespace string, shared bool) []slotLimit {
	l := []slotLimit{{key: "provider/" + string(uid), limit: c.provider}, {key: "namespace/" + namespace, limit: c.namespace}}
	if shared {
		l = append(l, slotLimit{key: "provider/" + string(uid) + "/" + namespace, limit: c.sharedNamespace})
	}
	return l
}

// describe states the caps for a status message.
func (c callCaps) describe(shared bool) string {
	if shared {
		return fmt.Sprintf("at most %d calls at once per provider, %d per namespace and %d per namespace through a ClusterEmbedProvider",
			c.provider, c.namespace, c.sharedNamespace)
	}
	return fmt.Sprintf("at most %d calls at once per provider and %d per namespace", c.provider, c.namespace)
}

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

// fairness holds the state that keeps one provider or one namespace from
// occupying the reconcile workers.
type fairness struct {
	tickets ticketBook
	slots   callSlots
	caps    callCaps
	wakeups chan event.GenericEvent
	// writeTickets are turns under the namespaces' write budgets.
	writeTickets ticketBook
	writes       namespaceLimiters
}

func newFairness(workers int, writes WriteBudget) *fairness {
	f := &fairness{caps: newCallCaps(workers), wakeups: make(chan event.GenericEvent, wakeBuffer), writes: namespaceLimiters{budget: writes}}
	f.slots.wake = f.wake
	f.tickets.turns.wake = f.wake
	return f
}

// wake enqueues a request waiting for a call slot. It never blocks: when the
// buffer is full the request's fallback requeue brings it back.
func (f *fairness) wake(key types.NamespacedName) {
	obj := &v1alpha1.EmbedTokenRequest{}
	obj.Namespace, obj.Name = key.Namespace, key.Name
	select {
	case f.wakeups <- event.GenericEvent{Object: obj}:
	default:
	}
}

// settle drops what a request held while waiting (its rate-limit ticket,
// its place in its namespace's lane and in the slot queues) once it no
// longer waits.
func (f *fairness) settle(key types.NamespacedName) {
	f.tickets.drop(key, time.Now())
	f.writeTickets.drop(key, time.Now())
	f.slots.forget(key)
}

// admit lets a vendor call for etr through p, or records in o why it must
// wait. A turn under the rate limit comes from a ticket the request keeps
// across requeues, so waiting requests are served in order, each requeued
// once for its turn; under a shared provider each namespace holds one
// ticket at a time (turns.go). The returned function frees the call slot.
func (r *EmbedTokenRequestReconciler) admit(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, p *resolvedProvider, o *outcome) (func(), bool) {
	key := client.ObjectKeyFromObject(etr)
	now := time.Now()
	writeWait, ok := r.admitWrites(ctx, etr, o, now)
	if !ok {
		return nil, false
	}
	wait, queue, placed := r.fair.tickets.claim(key, r.clients.limiter(p), laneOf(p, etr.Namespace), now)
	if !placed {
		r.waitForTurn(ctx, etr, p, o, queue, now)
		return nil, false
	}
	if wait > maxLimiterSleep {
		o.deferral = &deferral{after: wait, quiet: wait < reportWaitAfter, message: "waiting for the rate limit of " + p.describe()}
		r.fair.slots.forget(key) // it comes back for a slot at its turn
		log.FromContext(ctx).V(1).Info("Vendor call waits for the rate limit", "embedTokenRequest", klog.KObj(etr), "wait", wait)
		return nil, false
	}
	release, ok := r.acquireSlot(ctx, etr, p, o, now)
	if !ok {
		return nil, false
	}
	r.fair.tickets.use(key)
	r.fair.writeTickets.use(key)
	wait = max(wait, writeWait)
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return release, true
}

// admitWrites lets etr's issue through its namespace's share of the API
// write budget, returning how long to sleep for its turn, or records in o
// that it waits longer. The turn is a ticket kept across requeues, as under
// a provider's rate limit, and the wait is quiet: a status write would
// spend the budget it waits for.
func (r *EmbedTokenRequestReconciler) admitWrites(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, o *outcome, now time.Time) (time.Duration, bool) {
	key := client.ObjectKeyFromObject(etr)
	wait := r.fair.writeTurn(key, r.fair.writes.limiter(etr.Namespace, now), now)
	if wait <= maxLimiterSleep {
		return wait, true
	}
	o.deferral = &deferral{after: wait, quiet: true, message: "waiting for namespace " + etr.Namespace + "'s share of the operator's API writes"}
	r.fair.slots.forget(key)
	log.FromContext(ctx).V(1).Info("Vendor call waits for the namespace's share of the API writes", "embedTokenRequest", klog.KObj(etr), "wait", wait)
	return 0, false
}

// acquireSlot takes a call slot of p for etr, or records in o that it waits
// for one.
func (r *EmbedTokenRequestReconciler) acquireSlot(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, p *resolvedProvider, o *outcome, now time.Time) (func(), bool) {
	shared := p.creds.clusterScoped
	release, queue, ok := r.fair.slots.acquire(client.ObjectKeyFromObject(etr), r.fair.caps.limits(p.uid, etr.Namespace, shared), now)
	if ok {
		return release, true
	}
	after, quiet := slotWait(queue, unitJitter(string(etr.UID), now.UnixNano()))
	o.deferral = &deferral{after: after, quiet: quiet,
		message: fmt.Sprintf("waiting for a free vendor call slot of %s (%s)", p.describe(), r.fair.caps.describe(shared))}
	log.FromContext(ctx).V(1).Info("Vendor call waits for a free slot", "embedTokenRequest", klog.KObj(etr),
		"rounds", queue.rounds, "waited", queue.waited)
	return nil, false
}

// slotWait is when a request refused a call slot looks again if no freed
// slot wakes it first, and whether its wait is still too short to report.
// The fallback is slotRetryBase per round of calls its queue needs, at most
// MaxBackoff, made up to 25% longer by unit (in [0, 1)) so waiters spread;
// a wait not yet reported comes back by reportWaitAfter to report it.
func slotWait(q queueState, unit float64) (after time.Duration, quiet bool) {
	d := min(slotRetryBase*time.Duration(max(q.rounds, 1)), MaxBackoff)
	d += time.Duration(float64(d) * backoffJitter * unit)
	if q.waited < reportWaitAfter {
		return min(d, reportWaitAfter), true
	}
	return d, false
}
