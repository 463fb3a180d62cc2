package controller

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/types"
)

// ticketBook holds each waiting request's reservation on its provider's rate
// limiter. A request reserves once and is requeued for that time; requests
// then take turns in the order they arrived, and waiting costs one requeue,
// not one reconcile per freed token. Under a shared provider a request must
// first take its namespace's place in turns (see claimTurn), so namespaces,
// not requests, take turns.
type ticketBook struct {
	mu   sync.Mutex
	held map[types.NamespacedName]ticket
	// turns counts the reservations each namespace holds on a shared
	// provider's limiter and queues its other waiting requests.
	turns callSlots
}

type ticket struct {
	limiter     *rate.Limiter
	reservation *rate.Reservation
	// lane is the namespace's queue of a shared provider the ticket holds
	// a place in, and release gives that place back; both zero otherwise.
	lane    string
	release func()
}

// claim returns how long after now key's turn under l comes, reserving one
// if key holds none for l. A non-empty lane is key's namespace's queue of a
// shared provider: a new reservation first takes a place there, and when
// none is free claim returns false and where key stands in the queue. The
// ticket stays held until use or drop.
func (b *ticketBook) claim(key types.NamespacedName, l *rate.Limiter, lane string, now time.Time) (time.Duration, queueState, bool) {
	if l.Limit() == rate.Inf {
		return 0, queueState{}, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.held[key]
	if ok && (t.limiter != l || t.lane != lane) {
		t.giveBack(now) // the provider's rate limit or the request's provider changed
		delete(b.held, key)
		ok = false
	}
	if !ok {
		release, q, placed := b.claimTurn(key, lane, now)
		if !placed {
			return 0, q, false
		}
		t = ticket{limiter: l, reservation: l.ReserveN(now, 1), lane: lane, release: release}
		if !t.reservation.OK() {
			t.release()
			return slotRetryBase, queueState{}, true // a burst below one; the schema forbids it
		}
		if b.held == nil {
			b.held = map[types.NamespacedName]ticket{}
		}
		b.held[key] = t
	}
	return max(t.reservation.DelayFrom(now), 0), queueState{}, true
}

// use forgets key's ticket because its call is being made; its place in
// its lane goes to the namespace's next request.
func (b *ticketBook) use(key types.NamespacedName) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t, ok := b.held[key]; ok {
		t.release()
		delete(b.held, key)
	}
}

// drop gives key's unused ticket back to its limiter and its lane, and
// takes key out of any lane it waits in.
func (b *ticketBook) drop(key types.NamespacedName, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t, ok := b.held[key]; ok {
		t.giveBack(now)
		delete(b.held, key)
	}
	b.turns.forget(key)
}

// giveBack cancels an unused reservation and frees its place in its lane.
func (t ticket) giveBack(now time.Time) {
	t.reservation.CancelAt(now)
	t.release()
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
