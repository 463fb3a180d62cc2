package httpprovider

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/embedtokens/embed-token-operator/internal/provider"
)

var cacheEpoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// TestAuthCacheReuseWindow checks how long tokens of various lifetimes are
// reused: until a minute before expiry, or three quarters of a short life.
func TestAuthCacheReuseWindow(t *testing.T) {
	tests := []struct {
		life, reusedUntil time.Duration
	}{
		{time.Hour, 59 * time.Minute},
		{4 * time.Minute, 3 * time.Minute},
		{2 * time.Minute, 90 * time.Second},
		{8 * time.Second, 6 * time.Second},
		{0, 0}, // already expired: never cached
	}
	for _, tc := range tests {
		t.Run(tc.life.String(), func(t *testing.T) {
			var c authCache
			c.store("k", provider.Token{Value: "tok", ExpiresAt: cacheEpoch.Add(tc.life)}, cacheEpoch)
			if _, ok := c.lookup("k", cacheEpoch.Add(tc.reusedUntil-time.Nanosecond)); ok != (tc.reusedUntil > 0) {
				t.Errorf("just before %v: cached = %v", tc.reusedUntil, ok)
			}
			if _, ok := c.lookup("k", cacheEpoch.Add(tc.reusedUntil)); ok {
				t.Errorf("at %v: still cached", tc.reusedUntil)
			}
		})
	}
}

// TestAuthCacheBounded fills the cache beyond its bound: expired entries go
// first, then the ones that stop being reused soonest.
func TestAuthCacheBounded(t *testing.T) {
	var c authCache
	for i := range maxAuthEntries {
		life := time.Duration(i+2) * time.Hour
		if i%2 == 0 {
			life = time.Minute + time.Duration(i)*time.Second // these expire first
		}
		c.store(fmt.Sprint(i), provider.Token{Value: "t", ExpiresAt: cacheEpoch.Add(life)}, cacheEpoch)
	}
	later := cacheEpoch.Add(time.Hour)
	c.store("new", provider.Token{Value: "t", ExpiresAt: later.Add(time.Hour)}, later)
	if n := c.size(); n != maxAuthEntries/2+1 {
		t.Errorf("after evicting the expired: %d entries, want %d", n, maxAuthEntries/2+1)
	}
	for i := range maxAuthEntries {
		c.store(fmt.Sprint("more", i), provider.Token{Value: "t", ExpiresAt: later.Add(1000 * time.Hour)}, later)
	}
	if _, ok := c.lookup("1", later); ok || c.size() != maxAuthEntries {
		t.Errorf("full cache: %d entries, soonest-expiring kept: %v", c.size(), ok)
	}
	if _, ok := c.lookup("more0", later); !ok {
		t.Error("a long-lived entry was evicted before shorter-lived ones")
	}
}

// TestAuthCacheDrop checks that only the refused token is dropped.
func TestAuthCacheDrop(t *testing.T) {
	var c authCache
	c.store("k", provider.Token{Value: "new", ExpiresAt: cacheEpoch.Add(time.Hour)}, cacheEpoch)
	c.drop("k", "old")
	if v, ok := c.lookup("k", cacheEpoch); !ok || v != "new" {
		t.Fatalf("dropping a replaced token removed its successor")
	}
	c.drop("k", "new")
	if _, ok := c.lookup("k", cacheEpoch); ok {
		t.Fatal("token not dropped")
	}
}

// TestAuthCacheWaiterGivesUp checks that a caller whose context ends stops
// waiting, while the shared call still completes and is cached for others.
func TestAuthCacheWaiterGivesUp(t *testing.T) {
	var c authCache
	release := make(chan struct{})
	started := make(chan struct{})
	fetch := func(ctx context.Context) (provider.Token, error) {
		close(started)
		select {
		case <-release:
			return provider.Token{Value: "tok", ExpiresAt: cacheEpoch.Add(time.Hour)}, nil
		case <-ctx.Done():
			return provider.Token{}, errors.New("the shared call was cancelled")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, _, err := c.token(ctx, "k", cacheEpoch, fetch)
		done <- err
	}()
	<-started
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a cancelled caller got no error")
	}
	close(release)
	// Joins the shared call if it is still running, else finds its result;
	// fetch running twice would panic on closing started again.
	tok, _, err := c.token(context.Background(), "k", cacheEpoch, fetch)
	if _, cached, _ := c.token(context.Background(), "k", cacheEpoch, fetch); err != nil || tok != "tok" || !cached {
		t.Errorf("after the shared call: %q, %v, cached %v", tok, err, cached)
	}
}
