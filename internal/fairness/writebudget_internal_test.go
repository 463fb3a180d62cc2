package fairness

import (
	"fmt"
	"testing"
	"time"
)

var writeT0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

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

func TestIdleNamespaceBucketsAreForgotten(t *testing.T) {
	n := NewNamespaceLimiters(WriteBudget{QPS: 1, Burst: 1})
	for i := range 1000 {
		l := n.Limiter(fmt.Sprintf("ns-%d", i), writeT0.Add(time.Duration(i)*time.Second))
		l.ReserveN(writeT0.Add(time.Duration(i)*time.Second), 1)
	}
	if len(n.m) > 2*minSweep {
		t.Fatalf("%d buckets held for namespaces that each issued once, long ago", len(n.m))
	}
	busy := n.Limiter("ns-999", writeT0.Add(999*time.Second))
	if busy.TokensAt(writeT0.Add(999*time.Second)) >= 1 {
		t.Fatal("the bucket of the namespace that just issued was forgotten")
	}
}
