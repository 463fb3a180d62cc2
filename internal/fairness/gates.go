package fairness

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Gates are the shared state that keeps one provider or one namespace from
// taking every vendor call: each provider's rate limiter (Limiters), the
// turns under it (Tickets, with per-namespace lanes on shared providers) and
// the call slots under Caps; TryAdmit passes a call through all of them. Both callers of
// the vendor, the reconciler and the token endpoint, pass the same Gates, so
// their calls count against the same caps.
//
// A waiter is named by a types.NamespacedName. Waiters registered with
// Block are woken through their channel; every other waiter (a reconciled
// request) is handed to Wake, which requeues it.
type Gates struct {
	Caps     Caps
	Limiters Limiters
	Tickets  Tickets
	Slots    Slots

	mu      sync.Mutex
	blocked map[types.NamespacedName]chan struct{}
	wake    func(types.NamespacedName)
}

// NewGates returns gates whose caps derive from workers; wake requeues a
// non-blocking waiter when its turn or slot may have come (nil: no one).
func NewGates(workers int, wake func(types.NamespacedName)) *Gates {
	g := &Gates{Caps: NewCaps(workers), blocked: map[types.NamespacedName]chan struct{}{}, wake: wake}
	g.Slots.Wake = g.dispatch
	g.Tickets.turns.Wake = g.dispatch
	return g
}

// SetWake replaces the function that requeues non-blocking waiters: the
// reconciler sets it when it is set up, after the gates were built.
func (g *Gates) SetWake(wake func(types.NamespacedName)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.wake = wake
}

// dispatch wakes who: through its channel when it blocks, else by wake.
func (g *Gates) dispatch(who types.NamespacedName) {
	g.mu.Lock()
	ch, blocked := g.blocked[who]
	wake := g.wake
	g.mu.Unlock()
	switch {
	case blocked:
		select {
		case ch <- struct{}{}:
		default:
		}
	case wake != nil:
		wake(who)
	}
}

// Block registers who as a waiter that blocks: it is woken through the
// returned channel. done gives up everything who holds or waits for, and
// must be called once who no longer waits.
func (g *Gates) Block(who types.NamespacedName) (woken <-chan struct{}, done func()) {
	ch := make(chan struct{}, 1)
	g.mu.Lock()
	g.blocked[who] = ch
	g.mu.Unlock()
	return ch, func() {
		g.Settle(who)
		g.mu.Lock()
		delete(g.blocked, who)
		g.mu.Unlock()
	}
}

// Settle drops what who held while waiting (its rate-limit ticket, its
// place in its namespace's lane and in the slot queues) once it no longer
// waits.
func (g *Gates) Settle(who types.NamespacedName) {
	g.Tickets.Drop(who, time.Now())
	g.Slots.Forget(who)
}
