package fairness

import (
	"slices"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/types"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func TestCallCaps(t *testing.T) {
	tests := []struct {
		workers int
		want    Caps
	}{
		{1, Caps{1, 1, 1}},
		{2, Caps{1, 1, 1}},
		{4, Caps{2, 2, 1}},
		{10, Caps{5, 5, 2}}, // the default --max-concurrent-reconciles
		{40, Caps{20, 20, 10}},
	}
	for _, tc := range tests {
		c := NewCaps(tc.workers)
		if c != tc.want {
			t.Errorf("NewCaps(%d) = %+v, want %+v", tc.workers, c, tc.want)
		}
		if tc.workers > 1 && (c.Provider >= tc.workers || c.Namespace >= tc.workers) {
			t.Errorf("NewCaps(%d): one provider or namespace may hold every worker", tc.workers)
		}
	}
}

func TestCallCapsLimits(t *testing.T) {
	c := NewCaps(10)
	tests := []struct {
		name   string
		shared bool
		want   []Limit
		text   string
	}{
		{"an EmbedProvider's call counts against its provider and namespace", false,
			[]Limit{{"provider/uid-1", 5}, {"namespace/team-a", 5}},
			"at most 5 calls at once per provider and 5 per namespace"},
		{"a ClusterEmbedProvider's call also against the namespace's share of it", true,
			[]Limit{{"provider/uid-1", 5}, {"namespace/team-a", 5}, {"provider/uid-1/team-a", 2}},
			"at most 5 calls at once per provider, 5 per namespace and 2 per namespace through a ClusterEmbedProvider"},
	}
	for _, tc := range tests {
		if got := c.Limits("uid-1", "team-a", tc.shared); !slices.Equal(got, tc.want) {
			t.Errorf("%s: limits %v, want %v", tc.name, got, tc.want)
		}
		if got := c.Describe(tc.shared); got != tc.text {
			t.Errorf("%s: describe %q, want %q", tc.name, got, tc.text)
		}
	}
}

func key(name string) types.NamespacedName { return types.NamespacedName{Namespace: "ns", Name: name} }

// TestTicketBookServesInOrder drives a 1/s limiter with explicit times:
// each request keeps its turn across requeues, and a dropped turn goes to
// the next newcomer.
func TestTicketBookServesInOrder(t *testing.T) {
	var b Tickets
	l := rate.NewLimiter(1, 1)
	steps := []struct {
		name string
		at   time.Duration // after t0
		do   func(time.Time) time.Duration
		want time.Duration
	}{
		{"the first call goes at once", 0, claimAndUse(&b, "a", l), 0},
		{"the second waits a second", 0, claim(&b, "b", l), time.Second},
		{"the third waits two", 0, claim(&b, "c", l), 2 * time.Second},
		{"a requeue keeps its turn", 500 * time.Millisecond, claim(&b, "b", l), 500 * time.Millisecond},
		{"near its turn it sleeps the rest", 900 * time.Millisecond, claimAndUse(&b, "b", l), 100 * time.Millisecond},
		{"a dropped turn is given back", 950 * time.Millisecond, drop(&b, "c"), 0},
		{"and taken by the next newcomer", 950 * time.Millisecond, claim(&b, "d", l), 1050 * time.Millisecond},
		{"a changed rate limit takes a new turn", time.Second, claim(&b, "d", rate.NewLimiter(1, 1)), 0},
		{"no rate limit never waits", time.Second, claim(&b, "e", rate.NewLimiter(rate.Inf, 0)), 0},
	}
	for _, s := range steps {
		if got := s.do(t0.Add(s.at)); got != s.want {
			t.Errorf("%s: wait %s, want %s", s.name, got, s.want)
		}
	}
	if _, held := b.held[key("e")]; held {
		t.Errorf("a request without a rate limit holds a ticket")
	}
}

func claim(b *Tickets, name string, l *rate.Limiter) func(time.Time) time.Duration {
	return func(now time.Time) time.Duration {
		d, _, _ := b.Claim(key(name), l, "", now)
		return d
	}
}

func claimAndUse(b *Tickets, name string, l *rate.Limiter) func(time.Time) time.Duration {
	return func(now time.Time) time.Duration {
		d, _, _ := b.Claim(key(name), l, "", now)
		b.Use(key(name))
		return d
	}
}

func drop(b *Tickets, name string) func(time.Time) time.Duration {
	return func(now time.Time) time.Duration {
		b.Drop(key(name), now)
		return 0
	}
}

// TestCallSlots plays a sequence on a provider capped at 2 calls and, for a
// shared provider, 1 per namespace: who gets a slot, who waits, and whom a
// freed slot wakes.
func TestCallSlots(t *testing.T) {
	var woken []string
	s := Slots{Wake: func(k types.NamespacedName) { woken = append(woken, k.Name) }}
	provider := []Limit{{Key: "p", Max: 2}}
	releases := map[string]func(){}
	now := t0
	acquire := func(name string, limits []Limit) (int, bool) {
		now = now.Add(time.Second)
		release, q, ok := s.Acquire(key(name), limits, now)
		if ok {
			releases[name] = release
		}
		return q.Rounds, ok
	}
	steps := []struct {
		name       string
		do         func() (int, bool)
		wantRounds int
		wantOK     bool
		wantWoken  []string
	}{
		{"a takes a slot", func() (int, bool) { return acquire("a", provider) }, 0, true, nil},
		{"b takes the other", func() (int, bool) { return acquire("b", provider) }, 0, true, nil},
		{"c waits one round", func() (int, bool) { return acquire("c", provider) }, 1, false, nil},
		{"d waits one round", func() (int, bool) { return acquire("d", provider) }, 1, false, nil},
		{"e waits two", func() (int, bool) { return acquire("e", provider) }, 2, false, nil},
		{"c asking again keeps its place", func() (int, bool) { return acquire("c", provider) }, 2, false, nil},
		{"a freed slot wakes the first waiter", func() (int, bool) { releases["a"](); return 0, true }, 0, true, []string{"c"}},
		{"releasing twice frees one slot", func() (int, bool) { releases["a"](); return 0, true }, 0, true, nil},
		{"c takes it", func() (int, bool) { return acquire("c", provider) }, 0, true, nil},
		{"d forgotten (deleted) leaves e first", func() (int, bool) { s.Forget(key("d")); return 0, true }, 0, true, nil},
		{"a freed slot wakes e", func() (int, bool) { releases["b"](); return 0, true }, 0, true, []string{"e"}},
		{"e forgotten while woken wakes nobody else", func() (int, bool) { s.Forget(key("e")); return 0, true }, 0, true, nil},
		{"c's release empties the provider", func() (int, bool) { releases["c"](); return 0, true }, 0, true, nil},
	}
	for _, st := range steps {
		woken = nil
		rounds, ok := st.do()
		if rounds != st.wantRounds || ok != st.wantOK || !slices.Equal(woken, st.wantWoken) {
			t.Errorf("%s: rounds %d ok %v woken %v; want %d %v %v", st.name, rounds, ok, woken, st.wantRounds, st.wantOK, st.wantWoken)
		}
	}
	if len(s.keys) != 0 {
		t.Errorf("idle keys are kept: %v", s.keys)
	}
}

func TestCallSlotsPerNamespaceOfASharedProvider(t *testing.T) {
	var woken []string
	s := Slots{Wake: func(k types.NamespacedName) { woken = append(woken, k.Name) }}
	limits := func(ns string) []Limit {
		return []Limit{{Key: "p", Max: 2}, {Key: "p/" + ns, Max: 1}}
	}
	releaseA, _, ok := s.Acquire(key("a"), limits("team-a"), t0)
	if !ok {
		t.Fatal("a's first call is refused")
	}
	if _, q, ok := s.Acquire(key("a2"), limits("team-a"), t0); ok || q.Rounds != 1 {
		t.Fatalf("a second call of team-a is let through (ok %v, rounds %d) beside its first", ok, q.Rounds)
	}
	releaseB, _, ok := s.Acquire(key("b"), limits("team-b"), t0)
	if !ok {
		t.Fatal("team-b waits behind team-a")
	}
	if _, _, ok := s.Acquire(key("c"), limits("team-c"), t0); ok {
		t.Fatal("a third namespace exceeds the provider's cap")
	}
	if _, q, _ := s.Acquire(key("a2"), limits("team-a"), t0.Add(7*time.Second)); q.Waited != 7*time.Second {
		t.Errorf("a2 asking again has waited %s, want 7s since it was first queued", q.Waited)
	}
	releaseA()
	if want := []string{"c", "a2"}; !slices.Equal(woken, want) {
		t.Errorf("a's release woke %v, want %v (the provider's and team-a's first waiters)", woken, want)
	}
	releaseB()
	s.Forget(key("a2"))
	s.Forget(key("c"))
	if len(s.keys) != 0 {
		t.Errorf("idle keys are kept: %v", s.keys)
	}
}
