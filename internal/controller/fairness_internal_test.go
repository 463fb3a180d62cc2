package controller

import (
	"slices"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

func TestVendorTimeout(t *testing.T) {
	tests := []struct {
		name       string
		spec       *metav1.Duration
		maxTimeout time.Duration
		want       time.Duration
	}{
		{"no spec.timeout is 10s", nil, 30 * time.Second, 10 * time.Second},
		{"a shorter spec.timeout is kept", &metav1.Duration{Duration: 5 * time.Second}, 30 * time.Second, 5 * time.Second},
		{"a longer spec.timeout is capped", &metav1.Duration{Duration: 5 * time.Minute}, 30 * time.Second, 30 * time.Second},
		{"a cap below the default applies to it", nil, 3 * time.Second, 3 * time.Second},
		{"no cap keeps spec.timeout", &metav1.Duration{Duration: 5 * time.Minute}, 0, 5 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := vendorTimeout(tc.spec, tc.maxTimeout); got != tc.want {
				t.Errorf("vendorTimeout = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestCallCaps(t *testing.T) {
	tests := []struct {
		workers int
		want    callCaps
	}{
		{1, callCaps{1, 1, 1}},
		{2, callCaps{1, 1, 1}},
		{4, callCaps{2, 2, 1}},
		{10, callCaps{5, 5, 2}}, // the default --max-concurrent-reconciles
		{40, callCaps{20, 20, 10}},
	}
	for _, tc := range tests {
		c := newCallCaps(tc.workers)
		if c != tc.want {
			t.Errorf("newCallCaps(%d) = %+v, want %+v", tc.workers, c, tc.want)
		}
		if tc.workers > 1 && (c.provider >= tc.workers || c.namespace >= tc.workers) {
			t.Errorf("newCallCaps(%d): one provider or namespace may hold every worker", tc.workers)
		}
	}
}

func TestCallCapsLimits(t *testing.T) {
	c := newCallCaps(10)
	tests := []struct {
		name   string
		shared bool
		want   []slotLimit
		text   string
	}{
		{"an EmbedProvider's call counts against its provider and namespace", false,
			[]slotLimit{{"provider/uid-1", 5}, {"namespace/team-a", 5}},
			"at most 5 calls at once per provider and 5 per namespace"},
		{"a ClusterEmbedProvider's call also against the namespace's share of it", true,
			[]slotLimit{{"provider/uid-1", 5}, {"namespace/team-a", 5}, {"provider/uid-1/team-a", 2}},
			"at most 5 calls at once per provider, 5 per namespace and 2 per namespace through a ClusterEmbedProvider"},
	}
	for _, tc := range tests {
		if got := c.limits("uid-1", "team-a", tc.shared); !slices.Equal(got, tc.want) {
			t.Errorf("%s: limits %v, want %v", tc.name, got, tc.want)
		}
		if got := c.describe(tc.shared); got != tc.text {
			t.Errorf("%s: describe %q, want %q", tc.name, got, tc.text)
		}
	}
}

func TestSlotWait(t *testing.T) {
	long := reportWaitAfter
	tests := []struct {
		name      string
		q         queueState
		unit      float64
		min, max  time.Duration
		wantQuiet bool
	}{
		{"a first refusal comes back soon and writes nothing", queueState{rounds: 1}, 0, slotRetryBase, slotRetryBase, true},
		{"jitter makes it up to a quarter later", queueState{rounds: 1, waited: long}, 0.999, slotRetryBase, slotRetryBase * 5 / 4, false},
		{"a long queue looks again later", queueState{rounds: 5, waited: long}, 0, 5 * slotRetryBase, 5 * slotRetryBase, false},
		{"but a wait not yet reported comes back to report it", queueState{rounds: 5, waited: time.Second}, 0, reportWaitAfter, reportWaitAfter, true},
		{"a huge queue waits at most the backoff cap", queueState{rounds: 10000, waited: long}, 0.999, MaxBackoff, MaxBackoff * 5 / 4, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			after, quiet := slotWait(tc.q, tc.unit)
			if after < tc.min || after > tc.max || quiet != tc.wantQuiet {
				t.Errorf("slotWait(%+v, %v) = %s, %v; want within [%s, %s], %v", tc.q, tc.unit, after, quiet, tc.min, tc.max, tc.wantQuiet)
			}
		})
	}
}

func key(name string) types.NamespacedName { return types.NamespacedName{Namespace: "ns", Name: name} }

// TestTicketBookServesInOrder drives a 1/s limiter with explicit times:
// each request keeps its turn across requeues, and a dropped turn goes to
// the next newcomer.
func TestTicketBookServesInOrder(t *testing.T) {
	var b ticketBook
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

func claim(b *ticketBook, name string, l *rate.Limiter) func(time.Time) time.Duration {
	return func(now time.Time) time.Duration {
		d, _, _ := b.claim(key(name), l, "", now)
		return d
	}
}

func claimAndUse(b *ticketBook, name string, l *rate.Limiter) func(time.Time) time.Duration {
	return func(now time.Time) time.Duration {
		d, _, _ := b.claim(key(name), l, "", now)
		b.use(key(name))
		return d
	}
}

func drop(b *ticketBook, name string) func(time.Time) time.Duration {
	return func(now time.Time) time.Duration {
		b.drop(key(name), now)
		return 0
	}
}

// TestCallSlots plays a sequence on a provider capped at 2 calls and, for a
// shared provider, 1 per namespace: who gets a slot, who waits, and whom a
// freed slot wakes.
func TestCallSlots(t *testing.T) {
	var woken []string
	s := callSlots{wake: func(k types.NamespacedName) { woken = append(woken, k.Name) }}
	provider := []slotLimit{{key: "p", limit: 2}}
	releases := map[string]func(){}
	now := t0
	acquire := func(name string, limits []slotLimit) (int, bool) {
		now = now.Add(time.Second)
		release, q, ok := s.acquire(key(name), limits, now)
		if ok {
			releases[name] = release
		}
		return q.rounds, ok
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
		{"d forgotten (deleted) leaves e first", func() (int, bool) { s.forget(key("d")); return 0, true }, 0, true, nil},
		{"a freed slot wakes e", func() (int, bool) { releases["b"](); return 0, true }, 0, true, []string{"e"}},
		{"e forgotten while woken wakes nobody else", func() (int, bool) { s.forget(key("e")); return 0, true }, 0, true, nil},
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
	s := callSlots{wake: func(k types.NamespacedName) { woken = append(woken, k.Name) }}
	limits := func(ns string) []slotLimit {
		return []slotLimit{{key: "p", limit: 2}, {key: "p/" + ns, limit: 1}}
	}
	releaseA, _, ok := s.acquire(key("a"), limits("team-a"), t0)
	if !ok {
		t.Fatal("a's first call is refused")
	}
	if _, q, ok := s.acquire(key("a2"), limits("team-a"), t0); ok || q.rounds != 1 {
		t.Fatalf("a second call of team-a is let through (ok %v, rounds %d) beside its first", ok, q.rounds)
	}
	releaseB, _, ok := s.acquire(key("b"), limits("team-b"), t0)
	if !ok {
		t.Fatal("team-b waits behind team-a")
	}
	if _, _, ok := s.acquire(key("c"), limits("team-c"), t0); ok {
		t.Fatal("a third namespace exceeds the provider's cap")
	}
	if _, q, _ := s.acquire(key("a2"), limits("team-a"), t0.Add(7*time.Second)); q.waited != 7*time.Second {
		t.Errorf("a2 asking again has waited %s, want 7s since it was first queued", q.waited)
	}
	releaseA()
	if want := []string{"c", "a2"}; !slices.Equal(woken, want) {
		t.Errorf("a's release woke %v, want %v (the provider's and team-a's first waiters)", woken, want)
	}
	releaseB()
	s.forget(key("a2"))
	s.forget(key("c"))
	if len(s.keys) != 0 {
		t.Errorf("idle keys are kept: %v", s.keys)
	}
}

// TestSetStatusWhileDeferred checks that waiting for a rate limit or a call
// slot is not a failure, and that requeues while waiting leave the status
// exactly as it was, so they cost no status write.
func TestSetStatusWhileDeferred(t *testing.T) {
	wait := &deferral{after: 3 * time.Second, message: "waiting for the rate limit of EmbedProvider qrvey"}
	stored := StoredToken{Present: true, IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	tests := []struct {
		name        string
		status      v1alpha1.EmbedTokenRequestStatus
		o           outcome
		wantReady   metav1.ConditionStatus
		wantReason  string
		wantMessage string
		reconciling bool
	}{
		{
			name:      "a first token waits as Issuing",
			o:         outcome{decision: Decision{Reason: RefreshNoToken}},
			wantReady: metav1.ConditionFalse, wantReason: v1alpha1.ReasonIssuing,
			wantMessage: "Issuing a token: waiting for the rate limit of EmbedProvider qrvey", reconciling: true,
		},
		{
			name: "a valid token's renewal waits with Ready kept",
			status: v1alpha1.EmbedTokenRequestStatus{RenewAt: timePtr(t0.Add(40 * time.Minute)), Conditions: []metav1.Condition{
				{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonTokenRefreshed}}},
			o:         outcome{stored: stored, decision: Decision{Reason: RefreshDue}},
			wantReady: metav1.ConditionTrue, wantReason: v1alpha1.ReasonTokenRefreshed,
			wantMessage: "The token is valid until 2026-11-21T13:00:00Z; renewing it is waiting for the rate limit of EmbedProvider qrvey",
		},
		{
			name: "after a failure the failure's conditions stay",
			status: v1alpha1.EmbedTokenRequestStatus{FailedAttempts: 2, RenewAt: timePtr(t0.Add(30 * time.Minute)), Conditions: []metav1.Condition{
				{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonVendorUnavailable,
					Message: "Refresh failed: HTTP 503; the current token is valid until 2026-11-21T13:00:00Z; retrying at 2026-11-21T12:30:00Z"}}},
			o:         outcome{stored: stored, decision: Decision{Reason: RefreshDue}},
			wantReady: metav1.ConditionTrue, wantReason: v1alpha1.ReasonVendorUnavailable,
			wantMessage: "Refresh failed: HTTP 503; the current token is valid until 2026-11-21T13:00:00Z; retrying at 2026-11-21T12:30:00Z",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			etr := &v1alpha1.EmbedTokenRequest{Status: tc.status}
			o := tc.o
			o.now, o.deferral = t0.Add(45*time.Minute), wait
			if o.stored.Present {
				o.digest = "d1"
			}
			setStatus(etr, &o)
			after := etr.Status.DeepCopy()
			ready := meta.FindStatusCondition(etr.Status.Conditions, v1alpha1.ConditionReady)
			if ready == nil || ready.Status != tc.wantReady || ready.Reason != tc.wantReason || ready.Message != tc.wantMessage {
				t.Fatalf("Ready = %+v, want %s %s %q", ready, tc.wantReady, tc.wantReason, tc.wantMessage)
			}
			if got := meta.IsStatusConditionTrue(etr.Status.Conditions, v1alpha1.ConditionReconciling); got != tc.reconciling {
				t.Errorf("Reconciling = %v, want %v", got, tc.reconciling)
			}
			if meta.FindStatusCondition(etr.Status.Conditions, v1alpha1.ConditionStalled) != nil {
				t.Errorf("a deferral stalls the request")
			}
			if etr.Status.FailedAttempts != tc.status.FailedAttempts || !equality.Semantic.DeepEqual(etr.Status.RenewAt, tc.status.RenewAt) {
				t.Errorf("failedAttempts %d renewAt %v changed from %d %v", etr.Status.FailedAttempts, etr.Status.RenewAt,
					tc.status.FailedAttempts, tc.status.RenewAt)
			}
			o.now = o.now.Add(7 * time.Second)
			setStatus(etr, &o)
			if !equality.Semantic.DeepEqual(*after, etr.Status) {
				t.Errorf("a requeue while waiting changes the status:\n%+v\n%+v", *after, etr.Status)
			}
		})
	}
}
