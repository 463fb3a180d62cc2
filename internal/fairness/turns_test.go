package fairness

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/types"
)

// TestSharedRateLimitTakesTurnsAcrossNamespaces replays the reconciler's use
// of a Tickets on a simulated clock: namespaces' requests arrive at a
// shared provider limited to 2 calls a second, and each request's first
// call is timed. A namespace with a backlog must not push a newcomer's
// first call back by that backlog, and a namespace alone must still get the
// whole rate.
func TestSharedRateLimitTakesTurnsAcrossNamespaces(t *testing.T) {
	const turn = 500 * time.Millisecond // at 2 calls a second
	tests := []struct {
		name     string
		arrivals []arrival
		// within bounds, per namespace, how long after its arrival its first
		// call may come.
		within map[string]time.Duration
		// lastBy bounds the last call of all, after t0.
		lastBy time.Duration
	}{
		{
			name:     "a namespace's first call comes within two turns beside another's 80 waiting",
			arrivals: []arrival{{"alice", 80, 0}, {"bob", 1, 5100 * time.Millisecond}},
			within:   map[string]time.Duration{"bob": 2 * turn},
			lastBy:   80 * turn,
		},
		{
			name:     "with two namespaces' backlogs a newcomer waits a turn per busy namespace",
			arrivals: []arrival{{"alice", 80, 0}, {"carol", 40, 0}, {"bob", 1, 5100 * time.Millisecond}},
			within:   map[string]time.Duration{"bob": 3 * turn},
			lastBy:   120 * turn,
		},
		{
			name:     "a namespace alone gets the whole rate",
			arrivals: []arrival{{"alice", 80, 0}},
			lastBy:   79 * turn,
		},
		{
			name:     "a namespace arriving later still finds the whole rate once the others are done",
			arrivals: []arrival{{"alice", 10, 0}, {"bob", 20, 2 * time.Second}},
			lastBy:   29 * turn,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTurnSim(rate.NewLimiter(2, 1), 100*time.Millisecond)
			for _, a := range tc.arrivals {
				s.arrive(a)
			}
			s.run()

			var calls []time.Time
			for _, a := range tc.arrivals {
				first := s.firstCall(a.namespace)
				if bound, ok := tc.within[a.namespace]; ok && first.Sub(t0.Add(a.at)) > bound {
					t.Errorf("%s's first call came %s after it arrived, want within %s", a.namespace, first.Sub(t0.Add(a.at)), bound)
				}
				for i := range a.count {
					at, ok := s.calls[simKey(a.namespace, i)]
					if !ok {
						t.Fatalf("%s/%d never made its call: a lost wake-up", a.namespace, i)
					}
					calls = append(calls, at)
				}
			}
			slices.SortFunc(calls, func(a, b time.Time) int { return a.Compare(b) })
			for i := 1; i < len(calls); i++ {
				if d := calls[i].Sub(calls[i-1]); d < turn-time.Microsecond { // the limiter counts tokens in float64
					t.Fatalf("calls %d and %d are %s apart, under the rate limit's %s", i-1, i, d, turn)
				}
			}
			if last := calls[len(calls)-1].Sub(t0); last > tc.lastBy {
				t.Errorf("the last call came at %s, want by %s (turns left unused)", last, tc.lastBy)
			}
			if len(s.book.held) != 0 || len(s.book.turns.keys) != 0 {
				t.Errorf("state is kept after every request is done: %d tickets, lanes %v", len(s.book.held), s.book.turns.keys)
			}
		})
	}
}

// arrival is count requests of one namespace created at t0+at.
type arrival struct {
	namespace string
	count     int
	at        time.Duration
}

// turnSim is the reconciler's loop around a Tickets for one shared
// provider, on a simulated clock: a request claims its turn; a turn further
// than maxLimiterSleep away requeues it for then, a nearer one is its call
// (the worker sleeps the rest); a request with no place in its namespace's
// lane waits to be woken. Wake-ups reach the queue after latency. There is
// no fallback requeue, so a lost wake-up leaves a request without a call.
type turnSim struct {
	book    Tickets
	limiter *rate.Limiter
	latency time.Duration
	now     time.Time
	queue   []simEvent
	seq     int
	calls   map[types.NamespacedName]time.Time
}

type simEvent struct {
	at  time.Time
	seq int
	key types.NamespacedName
}

// maxLimiterSleep is the longest a reconcile worker sleeps for its turn
// (MaxLimiterSleep); a later turn is a requeue.
const maxLimiterSleep = 200 * time.Millisecond

func newTurnSim(l *rate.Limiter, latency time.Duration) *turnSim {
	s := &turnSim{limiter: l, latency: latency, now: t0, calls: map[types.NamespacedName]time.Time{}}
	s.book.turns.Wake = func(k types.NamespacedName) { s.push(k, s.now.Add(s.latency)) }
	return s
}

func simKey(namespace string, i int) types.NamespacedName {
	return types.NamespacedName{Namespace: namespace, Name: fmt.Sprintf("r%03d", i)}
}

func (s *turnSim) arrive(a arrival) {
	for i := range a.count {
		s.push(simKey(a.namespace, i), t0.Add(a.at))
	}
}

func (s *turnSim) push(k types.NamespacedName, at time.Time) {
	s.seq++
	s.queue = append(s.queue, simEvent{at: at, seq: s.seq, key: k})
}

// run reconciles queued requests in time order until none is left.
func (s *turnSim) run() {
	for len(s.queue) > 0 {
		i := 0
		for j, e := range s.queue {
			if e.at.Before(s.queue[i].at) || e.at.Equal(s.queue[i].at) && e.seq < s.queue[i].seq {
				i = j
			}
		}
		e := s.queue[i]
		s.queue = slices.Delete(s.queue, i, i+1)
		s.now = e.at
		if _, done := s.calls[e.key]; done {
			continue
		}
		wait, _, placed := s.book.Claim(e.key, s.limiter, "shared/"+e.key.Namespace, s.now)
		switch {
		case !placed:
		case wait > maxLimiterSleep:
			s.push(e.key, s.now.Add(wait))
		default:
			s.book.Use(e.key)
			s.calls[e.key] = s.now.Add(wait)
		}
	}
}

// firstCall is when the namespace's first call was made.
func (s *turnSim) firstCall(namespace string) time.Time {
	var first time.Time
	for k, at := range s.calls {
		if k.Namespace == namespace && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first
}

// TestTicketBookLanes drives a shared provider's 1/s limiter with explicit
// times: each namespace holds one reservation at a time, its next request
// is woken when that one is used or given back, and nothing is kept for a
// namespace that has left.
func TestTicketBookLanes(t *testing.T) {
	var b Tickets
	var woken []string
	b.turns.Wake = func(k types.NamespacedName) { woken = append(woken, k.Namespace+"/"+k.Name) }
	l := rate.NewLimiter(1, 1)
	type result struct {
		wait   time.Duration
		placed bool
	}
	claim := func(ns, name string, l *rate.Limiter, lane string) func(time.Time) result {
		return func(now time.Time) result {
			d, _, ok := b.Claim(types.NamespacedName{Namespace: ns, Name: name}, l, lane, now)
			return result{d, ok}
		}
	}
	use := func(ns, name string) func(time.Time) result {
		return func(time.Time) result {
			b.Use(types.NamespacedName{Namespace: ns, Name: name})
			return result{placed: true}
		}
	}
	drop := func(ns, name string) func(time.Time) result {
		return func(now time.Time) result {
			b.Drop(types.NamespacedName{Namespace: ns, Name: name}, now)
			return result{placed: true}
		}
	}
	steps := []struct {
		name      string
		at        time.Duration // after t0
		do        func(time.Time) result
		want      result
		wantWoken []string
	}{
		{"alice's first request reserves at once", 0, claim("alice", "a1", l, "p/alice"), result{0, true}, nil},
		{"and its call frees her place", 0, use("alice", "a1"), result{placed: true}, nil},
		{"her second reserves the next turn", 0, claim("alice", "a2", l, "p/alice"), result{time.Second, true}, nil},
		{"her third waits in her lane, not on the limiter", 0, claim("alice", "a3", l, "p/alice"), result{0, false}, nil},
		{"and so does her fourth", 0, claim("alice", "a4", l, "p/alice"), result{0, false}, nil},
		{"bob's first reserves right after alice's second", 100 * time.Millisecond, claim("bob", "b1", l, "p/bob"), result{1900 * time.Millisecond, true}, nil},
		{"asking again keeps the turn", 500 * time.Millisecond, claim("bob", "b1", l, "p/bob"), result{1500 * time.Millisecond, true}, nil},
		{"alice's second making its call wakes her lane's first", time.Second, use("alice", "a2"), result{placed: true}, []string{"alice/a3"}},
		{"which reserves after bob's", time.Second, claim("alice", "a3", l, "p/alice"), result{2 * time.Second, true}, nil},
		{"her fourth still waits", time.Second, claim("alice", "a4", l, "p/alice"), result{0, false}, nil},
		{"alice's third deleted gives her place to her fourth", 1500 * time.Millisecond, drop("alice", "a3"), result{placed: true}, []string{"alice/a4"}},
		{"which takes the returned turn", 1500 * time.Millisecond, claim("alice", "a4", l, "p/alice"), result{1500 * time.Millisecond, true}, nil},
		{"a request waiting in a lane can leave it", 1500 * time.Millisecond, claim("alice", "a5", l, "p/alice"), result{0, false}, nil},
		{"without waking anyone", 1500 * time.Millisecond, drop("alice", "a5"), result{placed: true}, nil},
		{"a request moving to an EmbedProvider gives its place back", 1500 * time.Millisecond, claim("alice", "a4", rate.NewLimiter(1, 1), ""), result{0, true}, nil},
		{"alice's lane is then free", 1500 * time.Millisecond, claim("alice", "a6", l, "p/alice"), result{1500 * time.Millisecond, true}, nil},
		{"a provider without a rate limit needs no place", 1500 * time.Millisecond, claim("alice", "a7", rate.NewLimiter(rate.Inf, 0), "p/alice"), result{0, true}, nil},
		{"bob's call", 2 * time.Second, use("bob", "b1"), result{placed: true}, nil},
		{"alice's calls", 3 * time.Second, use("alice", "a6"), result{placed: true}, nil},
		{"alice's other request's call", 3 * time.Second, use("alice", "a4"), result{placed: true}, nil},
	}
	for _, s := range steps {
		woken = nil
		if got := s.do(t0.Add(s.at)); got != s.want || !slices.Equal(woken, s.wantWoken) {
			t.Errorf("%s: %+v woken %v, want %+v woken %v", s.name, got, woken, s.want, s.wantWoken)
		}
	}
	if len(b.held) != 0 || len(b.turns.keys) != 0 {
		t.Errorf("state is kept after every namespace has left: %d tickets, lanes %v", len(b.held), b.turns.keys)
	}
}
