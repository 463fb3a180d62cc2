package controller

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// TestHeldTokens proves a token whose write failed is stored by the next
// attempt only while Decide would keep it, and only once.
func TestHeldTokens(t *testing.T) {
	issued := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	key := types.NamespacedName{Namespace: "ns", Name: "a"}
	tok := provider.Token{Value: "held-token", IssuedAt: issued, ExpiresAt: issued.Add(30 * time.Minute)}
	rec := StoredToken{Present: true, IssuedAt: issued, ExpiresAt: tok.ExpiresAt, InputHash: "inputs", RefreshHandled: "r1",
		CredentialsVersion: "c1"}
	current := PolicyInput{InputHash: "inputs", RefreshRequest: "r1", CredentialsVersion: "c1", Seed: "uid-1"}
	// The default margin for 30 minutes is 10 minutes, up to 10% earlier.
	for _, tc := range []struct {
		name   string
		uid    types.UID
		change func(*PolicyInput)
		after  time.Duration
		want   bool
	}{
		{"A fresh token for the same spec is stored", "uid-1", nil, time.Minute, true},
		{"A token still fresh just before its renewal window is stored", "uid-1", nil, 18 * time.Minute, true},
		{"A token already due for renewal is dropped", "uid-1", nil, 20 * time.Minute, false},
		{"An expired token is dropped", "uid-1", nil, time.Hour, false},
		{"A token for a request deleted and created again under the same name is dropped", "uid-2", nil, time.Minute, false},
		{"A token issued before the spec changed is dropped", "uid-1", func(in *PolicyInput) { in.InputHash = "other" }, time.Minute, false},
		{"A token issued before a refresh was asked for is dropped", "uid-1", func(in *PolicyInput) { in.RefreshRequest = "r2" }, time.Minute, false},
		{"A token issued with rotated credentials is dropped", "uid-1", func(in *PolicyInput) { in.CredentialsVersion = "c2" }, time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHeldTokens()
			h.hold(key, "uid-1", tok, rec)
			in := current
			if tc.change != nil {
				tc.change(&in)
			}
			got, ok := h.take(key, tc.uid, in, issued.Add(tc.after))
			if ok != tc.want || (ok && got != tok) {
				t.Fatalf("take = %v, %v; want the held token: %v", got.Digest(), ok, tc.want)
			}
			if _, again := h.take(key, "uid-1", current, issued.Add(time.Minute)); again {
				t.Fatal("a token was taken twice")
			}
		})
	}

	t.Run("A deleted request's token is forgotten", func(t *testing.T) {
		h := newHeldTokens()
		h.hold(key, "uid-1", tok, rec)
		h.forget(key)
		if _, ok := h.take(key, "uid-1", current, issued.Add(time.Minute)); ok {
			t.Fatal("a forgotten token was taken")
		}
	})
}
