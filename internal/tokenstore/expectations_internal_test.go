package tokenstore

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

// TestAtLeast proves a cached object shows our write when it is that write
// or a later one, and that versions that are not integers only match
// exactly.
func TestAtLeast(t *testing.T) {
	for _, tc := range []struct {
		cached, written string
		want            bool
	}{
		{"100", "100", true},
		{"101", "100", true},
		{"1000", "999", true},
		{"99", "100", false},
		{"", "100", false}, // not in the cache
		{"abc", "abc", true},
		{"abd", "abc", false},
	} {
		if got := atLeast(tc.cached, tc.written); got != tc.want {
			t.Errorf("atLeast(%q, %q) = %v, want %v", tc.cached, tc.written, got, tc.want)
		}
	}
}

// TestWriteExpectations proves an expectation holds both writes of a
// request, is met only as written, and is not dropped by a reconcile that
// saw an older one.
func TestWriteExpectations(t *testing.T) {
	e := newWriteExpectations()
	key := types.NamespacedName{Namespace: "ns", Name: "a"}
	if _, ok := e.pending(key); ok {
		t.Fatal("an expectation before any write")
	}
	e.wroteSecret(key, "5")
	e.wroteRequest(key, "6")
	seen, ok := e.pending(key)
	if !ok || seen.secret != "5" || seen.request != "6" {
		t.Fatalf("pending = %+v, %v; want secret 5, request 6", seen, ok)
	}
	e.wroteRequest(key, "7")
	e.met(key, seen) // a reconcile that checked before the newer write
	if now, ok := e.pending(key); !ok || now.request != "7" {
		t.Fatalf("the newer write's expectation was dropped: %+v, %v", now, ok)
	}
	now, _ := e.pending(key)
	e.met(key, now)
	if _, ok := e.pending(key); ok {
		t.Fatal("a met expectation is still pending")
	}
	e.wroteSecret(key, "8")
	e.forget(key)
	if _, ok := e.pending(key); ok {
		t.Fatal("a forgotten expectation is still pending")
	}
}
