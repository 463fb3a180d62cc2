package controller

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// DefaultMaxVendorTimeout bounds each vendor call whatever a provider's
// spec.timeout says (--max-vendor-timeout), so a vendor that never answers
// holds a worker for at most this long.
const DefaultMaxVendorTimeout = 30 * time.Second

const (
	// defaultVendorTimeout applies when a provider sets no spec.timeout.
	defaultVendorTimeout = 10 * time.Second
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

// vendorTimeout is the bound on one vendor call: the provider's
// spec.timeout (10s when unset), at most maxTimeout when that is positive.
func vendorTimeout(spec *metav1.Duration, maxTimeout time.Duration) time.Duration {
	d := defaultVendorTimeout
	if spec != nil && spec.Duration > 0 {
		d = spec.Duration
	}
	if maxTimeout > 0 {
		d = min(d, maxTimeout)
	}
	return d
}

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
}

func newFairness(workers int) *fairness {
	f := &fairness{caps: newCallCaps(workers), wakeups: make(chan event.GenericEvent, wakeBuffer)}
	f.slots.wake = f.wake
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
// its place in the slot queues) once it no longer waits.
func (f *fairness) settle(key types.NamespacedName) {
	f.tickets.drop(key, time.Now())
	f.slots.forget(key)
}

// admit lets a vendor call for etr through p, or records in o why it must
// wait. A turn under the rate limit comes from a ticket the request keeps
// across requeues, so waiting requests are served in order, each requeued
// once for its turn. The returned function frees the call slot.
func (r *EmbedTokenRequestReconciler) admit(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, p *resolvedProvider, o *outcome) (func(), bool) {
	key := client.ObjectKeyFromObject(etr)
	now := time.Now()
	wait := r.fair.tickets.claim(key, r.clients.limiter(p), now)
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

// ticketBook holds each waiting request's reservation on its provider's rate
// limiter. A request reserves once and is requeued for that time; requests
// then take turns in the order they arrived, and waiting costs one requeue,
// not one reconcile per freed token.
type ticketBook struct {
	mu   sync.Mutex
	held map[types.NamespacedName]ticket
}

type ticket struct {
	limiter     *rate.Limiter
	reservation *rate.Reservation
}

// claim returns how long after now key's turn under l comes, reserving one
// if key holds none for l. The ticket stays held until use or drop.
func (b *ticketBook) claim(key types.NamespacedName, l *rate.Limiter, now time.Time) time.Duration {
	if l.Limit() == rate.Inf {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.held[key]
	if ok && t.limiter != l {
		t.reservation.CancelAt(now) // the provider's rate limit changed
		ok = false
	}
	if !ok {
		t = ticket{limiter: l, reservation: l.ReserveN(now, 1)}
		if !t.reservation.OK() {
			return slotRetryBase // a burst below one; the schema forbids it
		}
		if b.held == nil {
			b.held = map[types.NamespacedName]ticket{}
		}
		b.held[key] = t
	}
	return max(t.reservation.DelayFrom(now), 0)
}

// use forgets key's ticket because its call is being made.
func (b *ticketBook) use(key types.NamespacedName) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.held, key)
}

// drop gives key's unused ticket back to its limiter.
func (b *ticketBook) drop(key types.NamespacedName, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t, ok := b.held[key]; ok {
		t.reservation.CancelAt(now)
		delete(b.held, key)
	}
}

// slotLimit caps the calls in flight under one key: a provider, a
// namespace, or a namespace's share of a shared provider.
type slotLimit struct {
	key   string
	limit int
}

// callSlots counts vendor calls in flight per key without ever blocking:
// a request that finds a key full joins its queue and is woken (wake) when
// a slot frees. Keys with no call in flight and no waiter are forgotten.
type callSlots struct {
	mu   sync.Mutex
	keys map[string]*slotQueue
	wake func(types.NamespacedName)
}

type slotQueue struct {
	inFlight, limit int
	waiting         list.List // of waiter, first come first
	index           map[types.NamespacedName]*list.Element
}

// queueState is where a refused request stands: how many rounds of calls
// the longest of its queues needs, and how long it has waited in them.
type queueState struct {
	rounds int
	waited time.Duration
}

// waiter is one queued request and when it joined the queue.
type waiter struct {
	key   types.NamespacedName
	since time.Time
}

// acquire takes a slot under every limit for who, or none: then who is
// queued (at now, unless already) on each full key.
func (s *callSlots) acquire(who types.NamespacedName, limits []slotLimit, now time.Time) (release func(), state queueState, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var full []*slotQueue
	for _, l := range limits {
		q := s.queue(l.key)
		q.limit = max(l.limit, 1)
		if q.inFlight >= q.limit {
			full = append(full, q)
		}
	}
	if len(full) > 0 {
		for _, q := range full {
			e := q.index[who]
			if e == nil {
				e = q.waiting.PushBack(waiter{key: who, since: now})
				q.index[who] = e
			}
			state.rounds = max(state.rounds, (q.waiting.Len()+q.limit-1)/q.limit)
			state.waited = max(state.waited, now.Sub(e.Value.(waiter).since))
		}
		s.prune(limits)
		return nil, state, false
	}
	for _, l := range limits {
		q := s.keys[l.key]
		q.inFlight++
		q.remove(who)
	}
	var once sync.Once
	return func() { once.Do(func() { s.release(limits) }) }, queueState{}, true
}

func (s *callSlots) release(limits []slotLimit) {
	s.mu.Lock()
	var wake []types.NamespacedName
	for _, l := range limits {
		if q := s.keys[l.key]; q != nil {
			q.inFlight--
			wake = append(wake, q.firstFree()...)
		}
	}
	s.prune(limits)
	s.mu.Unlock()
	s.wakeAll(wake)
}

// forget removes who from every queue, waking the next waiter where who
// was to take a free slot.
func (s *callSlots) forget(who types.NamespacedName) {
	s.mu.Lock()
	var wake []types.NamespacedName
	var touched []slotLimit
	for k, q := range s.keys {
		if q.remove(who) {
			wake = append(wake, q.firstFree()...)
			touched = append(touched, slotLimit{key: k})
		}
	}
	s.prune(touched)
	s.mu.Unlock()
	s.wakeAll(wake)
}

func (s *callSlots) wakeAll(keys []types.NamespacedName) {
	for _, k := range keys {
		if s.wake != nil {
			s.wake(k)
		}
	}
}

func (s *callSlots) queue(key string) *slotQueue {
	if s.keys == nil {
		s.keys = map[string]*slotQueue{}
	}
	q := s.keys[key]
	if q == nil {
		q = &slotQueue{index: map[types.NamespacedName]*list.Element{}}
		s.keys[key] = q
	}
	return q
}

// prune forgets the keys among limits with no call in flight and no waiter.
func (s *callSlots) prune(limits []slotLimit) {
	for _, l := range limits {
		if q := s.keys[l.key]; q != nil && q.inFlight <= 0 && q.waiting.Len() == 0 {
			delete(s.keys, l.key)
		}
	}
}

// firstFree is the waiters that the free slots are for: the first
// limit-inFlight of the queue. They stay queued until they acquire.
func (q *slotQueue) firstFree() []types.NamespacedName {
	var out []types.NamespacedName
	for e := q.waiting.Front(); e != nil && len(out) < q.limit-q.inFlight; e = e.Next() {
		out = append(out, e.Value.(waiter).key)
	}
	return out
}

func (q *slotQueue) remove(who types.NamespacedName) bool {
	e := q.index[who]
	if e == nil {
		return false
	}
	q.waiting.Remove(e)
	delete(q.index, who)
	return true
}
