package fairness

import (
	"testing"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// TestLimitersAreSharedPerProviderObjectAndLimit proves every call of one
// provider object shares one limiter, and that a changed limit or a new
// object under the same name starts a new one.
func TestLimitersAreSharedPerProviderObjectAndLimit(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	key := ProviderKey{Kind: "EmbedProvider", Namespace: "team-a", Name: "qrvey"}
	one := &v1alpha1.RateLimit{RequestsPerSecond: 1}
	var l Limiters
	first := l.For(key, "uid-1", one, now)
	if l.For(key, "uid-1", &v1alpha1.RateLimit{RequestsPerSecond: 1}, now) != first {
		t.Error("a second call of the same provider got its own limiter")
	}
	if l.For(key, "uid-1", &v1alpha1.RateLimit{RequestsPerSecond: 2}, now) == first {
		t.Error("a changed limit kept the old limiter")
	}
	if l.For(key, "uid-2", &v1alpha1.RateLimit{RequestsPerSecond: 2}, now) == first {
		t.Error("a new object under the same name kept the old limiter")
	}
	unlimited := l.For(key, "uid-2", nil, now)
	for range 100 {
		if !unlimited.Allow() {
			t.Fatal("a provider without rateLimit is limited")
		}
	}
	if _, released := l.Release(key, "uid-2", now.Add(-time.Minute)); released {
		t.Error("a limiter in use was released")
	}
	if uid, released := l.Release(key, "uid-2", now.Add(time.Second)); !released || uid != "uid-2" || l.Len() != 0 {
		t.Errorf("an idle limiter was kept: released %v, uid %q, %d left", released, uid, l.Len())
	}
}
