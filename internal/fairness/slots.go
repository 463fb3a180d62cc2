package fairness

import (
	"container/list"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Limit caps the calls in flight under one key: a provider, a
// namespace, or a namespace's share of a shared provider.
type Limit struct {
	Key string
	Max int
}

// Slots counts vendor calls in flight per key without ever blocking:
// a request that finds a key full joins its queue and is woken (wake) when
// a slot frees. Keys with no call in flight and no waiter are forgotten.
type Slots struct {
	mu   sync.Mutex
	keys map[string]*slotQueue
	// Wake is told of each waiter a freed slot is for; nil wakes nobody.
	Wake func(types.NamespacedName)
}

type slotQueue struct {
	inFlight, limit int
	waiting         list.List // of waiter, first come first
	index           map[types.NamespacedName]*list.Element
}

// QueueState is where a refused request stands: how many rounds of calls
// the longest of its queues needs, and how long it has waited in them.
type QueueState struct {
	Rounds int
	Waited time.Duration
}

// waiter is one queued request and when it joined the queue.
type waiter struct {
	key   types.NamespacedName
	since time.Time
}

// Acquire takes a slot under every limit for who, or none: then who is
// queued (at now, unless already) on each full key.
func (s *Slots) Acquire(who types.NamespacedName, limits []Limit, now time.Time) (release func(), state QueueState, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var full []*slotQueue
	for _, l := range limits {
		q := s.queue(l.Key)
		q.limit = max(l.Max, 1)
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
			state.Rounds = max(state.Rounds, (q.waiting.Len()+q.limit-1)/q.limit)
			state.Waited = max(state.Waited, now.Sub(e.Value.(waiter).since))
		}
		s.prune(limits)
		return nil, state, false
	}
	for _, l := range limits {
		q := s.keys[l.Key]
		q.inFlight++
		q.remove(who)
	}
	var once sync.Once
	return func() { once.Do(func() { s.release(limits) }) }, QueueState{}, true
}

func (s *Slots) release(limits []Limit) {
	s.mu.Lock()
	var wake []types.NamespacedName
	for _, l := range limits {
		if q := s.keys[l.Key]; q != nil {
			q.inFlight--
			wake = append(wake, q.firstFree()...)
		}
	}
	s.prune(limits)
	s.mu.Unlock()
	s.wakeAll(wake)
}

// Forget removes who from every queue, waking the next waiter where who
// was to take a free slot.
func (s *Slots) Forget(who types.NamespacedName) {
	s.mu.Lock()
	var wake []types.NamespacedName
	var touched []Limit
	for k, q := range s.keys {
		if q.remove(who) {
			wake = append(wake, q.firstFree()...)
			touched = append(touched, Limit{Key: k})
		}
	}
	s.prune(touched)
	s.mu.Unlock()
	s.wakeAll(wake)
}

func (s *Slots) wakeAll(keys []types.NamespacedName) {
	for _, k := range keys {
		if s.Wake != nil {
			s.Wake(k)
		}
	}
}

func (s *Slots) queue(key string) *slotQueue {
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
func (s *Slots) prune(limits []Limit) {
	for _, l := range limits {
		if q := s.keys[l.Key]; q != nil && q.inFlight <= 0 && q.waiting.Len() == 0 {
			delete(s.keys, l.Key)
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
