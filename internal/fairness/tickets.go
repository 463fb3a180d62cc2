package fairness

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/types"
)

// Tickets holds each waiting request's reservation on its provider's rate
// limiter. A request reserves once and is requeued for that time; requests
// then take turns in the order they arrived, and waiting costs one requeue,
// not one reconcile per freed token. Under a shared provider a request must
// first take its namespace's place in turns (see claimTurn), so namespaces,
// not requests, take turns.
type Tickets struct {
	mu   sync.Mutex
	held map[types.NamespacedName]ticket
	// turns counts the reservations each namespace holds on a shared
	// provider's limiter and queues its other waiting requests.
	turns Slots
}

type ticket struct {
	limiter     *rate.Limiter
	reservation *rate.Reservation
	// lane is the namespace's queue of a shared provider the ticket holds
	// a place in, and release gives that place back; both zero otherwise.
	lane    string
	release func()
}

// Claim returns how long after now key's turn under l comes, reserving one
// if key holds none for l. A non-empty lane is key's namespace's queue of a
// shared provider: a new reservation first takes a place there, and when
// none is free Claim returns false and where key stands in the queue. The
// ticket stays held until Use or Drop.
func (b *Tickets) Claim(key types.NamespacedName, l *rate.Limiter, lane string, now time.Time) (time.Duration, QueueState, bool) {
	if l.Limit() == rate.Inf {
		return 0, QueueState{}, true
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
			return RetryBase, QueueState{}, true // a burst below one; the schema forbids it
		}
		if b.held == nil {
			b.held = map[types.NamespacedName]ticket{}
		}
		b.held[key] = t
	}
	return max(t.reservation.DelayFrom(now), 0), QueueState{}, true
}

// Use forgets key's ticket because its call is being made; its place in
// its lane goes to the namespace's next request.
func (b *Tickets) Use(key types.NamespacedName) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t, ok := b.held[key]; ok {
		t.release()
		delete(b.held, key)
	}
}

// Drop gives key's unused ticket back to its limiter and its lane, and
// takes key out of any lane it waits in.
func (b *Tickets) Drop(key types.NamespacedName, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t, ok := b.held[key]; ok {
		t.giveBack(now)
		delete(b.held, key)
	}
	b.turns.Forget(key)
}

// giveBack cancels an unused reservation and frees its place in its lane.
func (t ticket) giveBack(now time.Time) {
	t.reservation.CancelAt(now)
	t.release()
}

// A ClusterEmbedProvider's rate limit is the platform's vendor quota, shared
// by every namespace it admits. Its limiter serves reservations in the order
// they were made, so a namespace that reserved a turn for each of its
// requests would put all of them ahead of another namespace's first. Each
// namespace therefore holds at most laneTickets reservations on a shared
// provider's limiter at once; its other requests wait in the namespace's
// lane (a Slots queue, first come first) and the next is woken when a
// reservation is used or given back. The limiter's queue then holds at most
// laneTickets turns per namespace, so namespaces take turns: a newcomer
// waits about one turn per busy namespace, whatever their backlogs. A
// namespace alone reserves its next turn as soon as it uses the last, so it
// still gets the whole rate. An EmbedProvider serves one namespace and needs
// no lanes.
//
// This is round-robin across namespaces with equal weights, the fair
// queuing Kubernetes' API Priority and Fairness applies across flows, built
// on the limiter already there instead of a dispatcher of its own.

// laneTickets is how many reservations one namespace may hold on a shared
// provider's limiter at once.
const laneTickets = 1

// Lane names the lane of namespace's calls through the provider object uid:
// empty unless the provider is shared (a ClusterEmbedProvider), since an
// EmbedProvider's limit is its namespace's own.
func Lane(uid types.UID, namespace string, shared bool) string {
	if !shared {
		return ""
	}
	return string(uid) + "/" + namespace
}

// claimTurn takes a place in lane for key, or queues key there (at now,
// unless already) and returns false with where it stands. The empty lane
// has room for everyone. The returned function frees the place; it is safe
// to call more than once.
func (b *Tickets) claimTurn(key types.NamespacedName, lane string, now time.Time) (func(), QueueState, bool) {
	if lane == "" {
		return func() {}, QueueState{}, true
	}
	return b.turns.Acquire(key, []Limit{{Key: lane, Max: laneTickets}}, now)
}
