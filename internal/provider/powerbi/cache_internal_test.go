package powerbi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func token(value string, life time.Duration) accessToken {
	return accessToken{value: value, expiresAt: epoch.Add(life), life: life}
}

func TestUsableFor(t *testing.T) {
	for _, tc := range []struct {
		life, after, lifetime time.Duration
		want                  bool
	}{
		{time.Hour, 0, 10 * time.Minute, true},
		{time.Hour, 53*time.Minute + 59*time.Second, 0, true}, // 6m01s left: outside the margin of 6m
		{time.Hour, 54 * time.Minute, 0, false},
		{time.Hour, 40 * time.Minute, 20 * time.Minute, true},
		{time.Hour, 41 * time.Minute, 20 * time.Minute, false},
		{90 * time.Minute, 45 * time.Minute, 24 * time.Hour, true}, // half its life is enough
		{90 * time.Minute, 46 * time.Minute, 24 * time.Hour, false},
		{10 * time.Minute, 4 * time.Minute, 0, true}, // margin 5m, at most half its life
		{10 * time.Minute, 5 * time.Minute, 0, false},
		{4 * time.Minute, time.Minute, 0, true}, // margin 2m: half its life
		{4 * time.Minute, 2 * time.Minute, 0, false},
		{time.Hour, 2 * time.Hour, 0, false},
	} {
		if got := token("t", tc.life).usableFor(epoch.Add(tc.after), tc.lifetime); got != tc.want {
			t.Errorf("a %v token %v later for a %v embed token: usable %v, want %v", tc.life, tc.after, tc.lifetime, got, tc.want)
		}
	}
}

// TestCacheIsBounded fills the cache past its size: expired tokens and
// those of collected clients go first, then the one expiring first.
func TestCacheIsBounded(t *testing.T) {
	c := newTokenCache(3)
	clients := []*http.Client{{}, {}, {}, {}}
	put := func(client *http.Client, value string, life time.Duration) {
		c.put(weak.Make(client), cacheEntry{key: value, token: token(value, life)}, epoch)
	}
	put(clients[0], "a", time.Hour)
	put(clients[1], "b", 30*time.Minute)
	put(clients[2], "c", 2*time.Hour)
	put(clients[3], "d", time.Hour)
	if _, ok := c.entries[weak.Make(clients[1])]; ok || c.len() != 3 {
		t.Errorf("full cache kept %d entries, the earliest expiring among them: %v", c.len(), ok)
	}

	c = newTokenCache(2)
	put(clients[0], "expired", -time.Minute)
	func() { put(&http.Client{}, "collected", 3*time.Hour) }()
	runtime.GC()
	put(clients[1], "new", 10*time.Minute)
	if c.len() != 1 {
		t.Errorf("expired and collected entries were kept: %d entries", c.len())
	}

	c = newTokenCache(2)
	put(clients[0], "old-secret", time.Hour)
	put(clients[0], "new-secret", time.Hour)
	if c.len() != 1 || c.entries[weak.Make(clients[0])].key != "new-secret" {
		t.Errorf("a provider has %d entries, want its newest only", c.len())
	}
}

// TestWaitersGetTheirOwnError: a failed shared call gives each caller its
// own copy of the error, so redacting one does not race with another.
func TestWaitersGetTheirOwnError(t *testing.T) {
	refused := func() error { return provider.Permanent(v1alpha1.ReasonVendorUnauthorized, "refused") }
	tests := []struct {
		name     string
		fail     error
		wantText string
	}{
		{"a classified error is copied", refused(), "refused"},
		{"a wrapped classified error is copied with its whole text", fmt.Errorf("token call: %w", refused()), "token call: refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTokenCache(2)
			client := &http.Client{}
			fetch := func(context.Context) (accessToken, error) { return accessToken{}, tc.fail }
			_, _, err1 := c.get(context.Background(), client, "k", epoch, 0, fetch)
			_, _, err2 := c.get(context.Background(), client, "k", epoch, 0, fetch)
			var e1, e2, orig *provider.Error
			if !errors.As(err1, &e1) || !errors.As(err2, &e2) || !errors.As(tc.fail, &orig) || e1 == e2 || e1 == orig || errors.Is(err1, tc.fail) {
				t.Errorf("errors %v and %v share their value", err1, err2)
			}
			if err1.Error() != tc.wantText || e1.Reason != v1alpha1.ReasonVendorUnauthorized || !e1.Permanent {
				t.Errorf("the copy is %q (%s, permanent %v), want %q as classified", err1, e1.Reason, e1.Permanent, tc.wantText)
			}
			if c.len() != 0 {
				t.Error("a failure was cached")
			}
		})
	}
}

// TestCanceledWaiterLeavesTheCall: a caller that gives up does not cancel
// the call the others wait for.
func TestCanceledWaiterLeavesTheCall(t *testing.T) {
	c := newTokenCache(2)
	client := &http.Client{Timeout: time.Second}
	started, release := make(chan struct{}), make(chan struct{})
	fetch := func(ctx context.Context) (accessToken, error) {
		close(started)
		<-release
		return token("t", time.Hour), ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error)
	go func() {
		_, _, err := c.get(context.Background(), client, "k", epoch, 0, fetch)
		done <- err
	}()
	<-started
	if _, _, err := c.get(ctx, client, "k", epoch, 0, fetch); provider.Classify(err).Reason != v1alpha1.ReasonVendorUnavailable {
		t.Errorf("canceled waiter: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("the other caller failed: %v", err)
	}
	if c.len() != 1 {
		t.Error("the shared call's token was not cached")
	}
}
