package fairness

import (
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// MaxLimiterSleep is the longest a caller sleeps for its turn under a
// provider's rate limit once admitted; a reconcile worker waiting longer
// is requeued instead.
const MaxLimiterSleep = 200 * time.Millisecond

// Call is one vendor call as the gates see it.
type Call struct {
	// Who waits for the call: a request, or a blocking caller's own name.
	Who types.NamespacedName
	// Provider and UID name the provider and the object it is now;
	// RateLimit is its spec.rateLimit (nil: none).
	Provider  ProviderKey
	UID       types.UID
	RateLimit *v1alpha1.RateLimit
	// Namespace is the namespace the call is for.
	Namespace string
	// Shared is set for a ClusterEmbedProvider: its rate limit is taken
	// in turns by namespace, and its calls are capped per namespace too.
	Shared bool
}

// WaitReason is why TryAdmit did not admit a call.
type WaitReason int

const (
	// Admitted means the call may be made.
	Admitted WaitReason = iota
	// WaitTurn means the call waits for its namespace's turn under a
	// shared provider's rate limit (in Queue); it is woken when the turn
	// frees.
	WaitTurn
	// WaitRateLimit means the call holds a turn under the rate limit,
	// After from now; it keeps it until it asks again or is settled.
	WaitRateLimit
	// WaitSlot means the call waits for a free call slot (in Queue); it is
	// woken when one frees.
	WaitSlot
)

// Admission is TryAdmit's answer.
type Admission struct {
	// Wait is Admitted, or why the call waits.
	Wait WaitReason
	// Release, when admitted, frees the call slot; call it when the
	// vendor call ends.
	Release func()
	// Sleep, when admitted, is how long to wait for the rate limit's turn
	// before calling, at most MaxLimiterSleep.
	Sleep time.Duration
	// After is how far away the rate limit's turn is (WaitRateLimit).
	After time.Duration
	// Queue is where the call stands (WaitTurn, WaitSlot).
	Queue QueueState
}

// TryAdmit lets one vendor call through every gate without blocking: its
// turn under the provider's rate limit (a ticket c.Who keeps across tries,
// so waiting callers are served in order; under a shared provider each
// namespace holds one ticket at a time) and a call slot under every cap.
// Until c.Who is admitted or settled (Settle), it keeps its ticket and its
// places in the queues.
func (g *Gates) TryAdmit(c Call, now time.Time) Admission {
	limiter := g.Limiters.For(c.Provider, c.UID, c.RateLimit, now)
	wait, queue, placed := g.Tickets.Claim(c.Who, limiter, Lane(c.UID, c.Namespace, c.Shared), now)
	if !placed {
		g.Slots.Forget(c.Who) // it comes back for a slot at its turn
		return Admission{Wait: WaitTurn, Queue: queue}
	}
	if wait > MaxLimiterSleep {
		g.Slots.Forget(c.Who)
		return Admission{Wait: WaitRateLimit, After: wait}
	}
	release, queue, ok := g.Slots.Acquire(c.Who, g.Caps.Limits(c.UID, c.Namespace, c.Shared), now)
	if !ok {
		return Admission{Wait: WaitSlot, Queue: queue}
	}
	g.Tickets.Use(c.Who)
	return Admission{Release: release, Sleep: wait}
}
