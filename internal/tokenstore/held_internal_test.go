package tokenstore

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/refresh"
)

// TestHeldTokens proves a token whose write failed is stored by the next
// attempt only while Decide would keep it, and only once.
func TestHeldTokens(t *testing.T) {
	issued := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	key := types.NamespacedName{Namespace: "ns", Name: "a"}
	tok := provider.Token{Value: "held-token", IssuedAt: issued, ExpiresAt: issued.Add(30 * time.Minute)}
	rec := refresh.StoredToken{Present: true, IssuedAt: issued, ExpiresAt: tok.ExpiresAt, InputHash: "inputs", RefreshHandled: "r1",
		CredentialsVersion: "c1"}
	current := refresh.Input{InputHash: "inputs", RefreshRequest: "r1", CredentialsVersion: "c1", Seed: "uid-1"}
	// The default margin for 30 minutes is 10 minutes, up to 10% earlier.
	for _, tc := range []struct {
		name   string
		uid    types.UID
		change func(*refresh.Input)
		after  time.Duration
		want   bool
	}{
		{"A fresh token for the same spec is stored", "uid-1", nil, time.Minute, true},
		{"A token still fresh just before its renewal window is stored", "uid-1", nil, 18 * time.Minute, true},
		{"A token already due for renewal is dropped", "uid-1", nil, 20 * time.Minute, false},
		{"An expired token is dropped", "uid-1", nil, time.Hour, false},
		{"A token for a request deleted and created again under the same name is dropped", "uid-2", nil, time.Minute, false},
		{"A token issued before the spec changed is dropped", "uid-1", func(in *refresh.Input) { in.InputHash = "other" }, time.Minute, false},
		{"A token issued before a refresh was asked for is dropped", "uid-1", func(in *refresh.Input) { in.RefreshRequest = "r2" }, time.Minute, false},
		{"A token issued with rotated credentials is dropped", "uid-1", func(in *refresh.Input) { in.CredentialsVersion = "c2" }, time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHeld(MaxHeldTokenBytes, MaxHeldTokenBytesPerNamespace)
			h.Hold(key, "uid-1", tok, rec)
			in := current
			if tc.change != nil {
				tc.change(&in)
			}
			got, ok := h.Take(key, tc.uid, in, issued.Add(tc.after))
			if ok != tc.want || (ok && got != tok) {
				t.Fatalf("take = %v, %v; want the held token: %v", got.Digest(), ok, tc.want)
			}
			if _, again := h.Take(key, "uid-1", current, issued.Add(time.Minute)); again {
				t.Fatal("a token was taken twice")
			}
		})
	}

	t.Run("A deleted request's token is forgotten", func(t *testing.T) {
		h := NewHeld(MaxHeldTokenBytes, MaxHeldTokenBytesPerNamespace)
		h.Hold(key, "uid-1", tok, rec)
		h.Forget(key)
		if _, ok := h.Take(key, "uid-1", current, issued.Add(time.Minute)); ok {
			t.Fatal("a forgotten token was taken")
		}
	})
}

// TestHeldTokensAreBounded proves the held tokens never take more than
// their bound, in all and per namespace, that a token past a bound is not
// held, and that nothing one namespace holds is given up for another's.
func TestHeldTokensAreBounded(t *testing.T) {
	issued := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	rec := refresh.StoredToken{Present: true, IssuedAt: issued, ExpiresAt: issued.Add(30 * time.Minute), InputHash: "inputs"}
	in := refresh.Input{InputHash: "inputs", Seed: "uid"}
	// A token of n bytes costs n plus its entry's overhead and strings.
	tokenOf := func(n int) provider.Token {
		return provider.Token{Value: strings.Repeat("t", n), IssuedAt: issued, ExpiresAt: rec.ExpiresAt}
	}
	key := func(ns, name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }
	const kib = 1 << 10
	type hold struct {
		key  types.NamespacedName
		size int
		want bool
	}
	for _, tc := range []struct {
		name        string
		total, perN int64
		holds       []hold
		// kept are the keys still held at the end, with their tokens.
		kept []types.NamespacedName
	}{
		{"Tokens within both bounds are all held", 64 * kib, 16 * kib,
			[]hold{{key("a", "1"), kib, true}, {key("a", "2"), kib, true}, {key("b", "1"), kib, true}},
			[]types.NamespacedName{key("a", "1"), key("a", "2"), key("b", "1")}},
		{"A token larger than a namespace's share is not held", 64 * kib, 16 * kib,
			[]hold{{key("a", "1"), 16 * kib, false}},
			nil},
		{"A namespace past its share holds no more, and keeps what it holds", 64 * kib, 16 * kib,
			[]hold{{key("a", "1"), 7 * kib, true}, {key("a", "2"), 7 * kib, true}, {key("a", "3"), 7 * kib, false}},
			[]types.NamespacedName{key("a", "1"), key("a", "2")}},
		{"One namespace at its share leaves another's room alone", 64 * kib, 16 * kib,
			[]hold{{key("a", "1"), 15 * kib, true}, {key("a", "2"), 15 * kib, false}, {key("b", "1"), 15 * kib, true}},
			[]types.NamespacedName{key("a", "1"), key("b", "1")}},
		{"Past the total nothing more is held, and no namespace loses a token for it", 32 * kib, 16 * kib,
			[]hold{{key("a", "1"), 15 * kib, true}, {key("b", "1"), 15 * kib, true}, {key("c", "1"), 15 * kib, false}},
			[]types.NamespacedName{key("a", "1"), key("b", "1")}},
		{"A token replacing the request's own held token counts only once", 64 * kib, 16 * kib,
			[]hold{{key("a", "1"), 10 * kib, true}, {key("a", "1"), 10 * kib, true}},
			[]types.NamespacedName{key("a", "1")}},
		{"A request refused a larger token holds none, not its older one", 64 * kib, 16 * kib,
			[]hold{{key("a", "1"), kib, true}, {key("a", "1"), 16 * kib, false}},
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHeld(tc.total, tc.perN)
			tokens := map[types.NamespacedName]provider.Token{}
			for i, step := range tc.holds {
				tok := tokenOf(step.size)
				if got := h.Hold(step.key, "uid", tok, rec); got != step.want {
					t.Fatalf("hold %d (%v, %d bytes) = %v, want %v", i, step.key, step.size, got, step.want)
				}
				if step.want {
					tokens[step.key] = tok
				}
				var total int64
				for ns, n := range h.Usage() {
					if n > tc.perN {
						t.Fatalf("after hold %d namespace %s holds %d bytes, its share is %d", i, ns, n, tc.perN)
					}
					total += n
				}
				if total > tc.total {
					t.Fatalf("after hold %d %d bytes are held, the bound is %d", i, total, tc.total)
				}
			}
			for _, k := range tc.kept {
				if got, ok := h.Take(k, "uid", in, issued.Add(time.Minute)); !ok || got.Value != tokens[k].Value {
					t.Errorf("the token held for %v was lost", k)
				}
			}
			if len(h.m) != 0 || len(h.Usage()) != 0 || h.bytes != 0 {
				t.Errorf("after taking the kept tokens, %d entries and %d bytes remain (%v)", len(h.m), h.bytes, h.Usage())
			}
		})
	}
}
