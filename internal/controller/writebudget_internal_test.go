package controller

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/embedtokens/embed-token-operator/internal/fairness"
)

func TestNamespaceWriteBudget(t *testing.T) {
	tests := []struct {
		name  string
		qps   float32
		burst int
		share float64
		want  WriteBudget
	}{
		{"a namespace gets half of the default client's rate and burst", 50, 100, 0.5, WriteBudget{QPS: 25, Burst: 50}},
		{"a share of one lets one namespace use the whole client", 50, 100, 1, WriteBudget{QPS: 50, Burst: 100}},
		{"a share above one is the whole client", 50, 100, 3, WriteBudget{QPS: 50, Burst: 100}},
		{"a client with client-go's defaults shares those", 0, 0, 0.5, WriteBudget{QPS: 2.5, Burst: 5}},
		{"a client with no rate limit leaves namespaces unbounded", -1, 0, 0.5, WriteBudget{}},
		{"a tiny burst still lets one token through at once", 1, 1, 0.5, WriteBudget{QPS: 0.5, Burst: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NamespaceWriteBudget(tt.qps, tt.burst, tt.share); got != tt.want {
				t.Fatalf("budget = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAFloodingNamespaceWaitsForItsShareWhileAnotherIssuesAtOnce(t *testing.T) {
	f := newRequestGates(fairness.NewGates(10, nil), WriteBudget{QPS: 25, Burst: 50})
	now := t0
	var waits []time.Duration
	for i := range 100 {
		k := types.NamespacedName{Namespace: "flood", Name: fmt.Sprintf("r%03d", i)}
		waits = append(waits, f.writeTurn(k, f.writes.limiter("flood", now), now))
	}
	if waits[49] != 0 || waits[50] <= 0 {
		t.Fatalf("the burst of 50 issues at once and the 51st waits: waits %v, %v", waits[49], waits[50])
	}
	if last, want := waits[99], 2*time.Second; last != want {
		t.Fatalf("the 100th waits %s, want %s (50 more at 25 a second)", last, want)
	}
	quiet := types.NamespacedName{Namespace: "quiet", Name: "first"}
	if w := f.writeTurn(quiet, f.writes.limiter("quiet", now), now); w != 0 {
		t.Fatalf("a quiet namespace's first issue waits %s behind the flood", w)
	}
}

func TestNoWriteBudgetNeverWaits(t *testing.T) {
	f := newRequestGates(fairness.NewGates(10, nil), WriteBudget{})
	for i := range 1000 {
		k := types.NamespacedName{Namespace: "flood", Name: fmt.Sprintf("r%04d", i)}
		if w := f.writeTurn(k, f.writes.limiter("flood", t0), t0); w != 0 {
			t.Fatalf("request %d waits %s with no budget", i, w)
		}
	}
}

func TestIdleNamespaceBucketsAreForgotten(t *testing.T) {
	n := namespaceLimiters{budget: WriteBudget{QPS: 1, Burst: 1}}
	for i := range 1000 {
		l := n.limiter(fmt.Sprintf("ns-%d", i), t0.Add(time.Duration(i)*time.Second))
		l.ReserveN(t0.Add(time.Duration(i)*time.Second), 1)
	}
	if len(n.m) > 2*minSweep {
		t.Fatalf("%d buckets held for namespaces that each issued once, long ago", len(n.m))
	}
	busy := n.limiter("ns-999", t0.Add(999*time.Second))
	if busy.TokensAt(t0.Add(999*time.Second)) >= 1 {
		t.Fatal("the bucket of the namespace that just issued was forgotten")
	}
}
