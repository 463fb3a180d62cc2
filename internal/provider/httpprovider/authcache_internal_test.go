package httpprovider

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
			c.store("ns", "k", provider.Token{Value: "tok", ExpiresAt: cacheEpoch.Add(tc.life)}, cacheEpoch)
			if _, ok := c.lookup("ns", "k", cacheEpoch.Add(tc.reusedUntil-time.Nanosecond)); ok != (tc.reusedUntil > 0) {
				t.Errorf("just before %v: cached = %v", tc.reusedUntil, ok)
			}
			if _, ok := c.lookup("ns", "k", cacheEpoch.Add(tc.reusedUntil)); ok {
				t.Errorf("at %v: still cached", tc.reusedUntil)
			}
		})
	}
}

// TestAuthCacheEvictsSoonest fills a namespace's share: expired entries go
// first, then the ones that stop being reused soonest.
func TestAuthCacheEvictsSoonest(t *testing.T) {
	c := authCache{shareBytes: 10 * (1 + authEntryOverhead)}
	for i := range 10 {
		life := time.Duration(i+2) * time.Hour
		if i%2 == 0 {
			life = time.Minute + time.Duration(i)*time.Second // these expire first
		}
		c.store("ns", fmt.Sprint(i), provider.Token{Value: "t", ExpiresAt: cacheEpoch.Add(life)}, cacheEpoch)
	}
	later := cacheEpoch.Add(time.Hour)
	c.store("ns", "new", provider.Token{Value: "t", ExpiresAt: later.Add(time.Hour)}, later)
	if n, _ := c.size(); n != 10/2+1 {
		t.Errorf("after evicting the expired: %d entries, want %d", n, 10/2+1)
	}
	for i := range 10 {
		c.store("ns", fmt.Sprint("more", i), provider.Token{Value: "t", ExpiresAt: later.Add(1000 * time.Hour)}, later)
	}
	if _, ok := c.lookup("ns", "1", later); ok {
		t.Error("full share: the soonest-expiring entry was kept")
	}
	if n, _ := c.size(); n != 10 {
		t.Errorf("full share: %d entries, want 10", n)
	}
	if _, ok := c.lookup("ns", "more0", later); !ok {
		t.Error("a long-lived entry was evicted before shorter-lived ones")
	}
}

// TestAuthCacheShares stores many large tokens and checks the cache stays
// within its byte bound and each namespace within its share, and that a
// namespace filling its share, or many namespaces filling the cache, never
// evict a quieter namespace's token.
func TestAuthCacheShares(t *testing.T) {
	const tokenBytes = 60 << 10 // under provider.MaxTokenBytes
	large := func(i int) provider.Token {
		return provider.Token{Value: fmt.Sprintf("%d-%s", i, strings.Repeat("x", tokenBytes)), ExpiresAt: cacheEpoch.Add(time.Hour)}
	}
	quiet := provider.Token{Value: "quiet-token", ExpiresAt: cacheEpoch.Add(time.Hour)}
	tests := []struct {
		name string
		// noisy is the namespaces that each store that many large tokens.
		noisy  []string
		tokens int
		// quietOwner stores one small token before the noisy ones.
		quietOwner string
	}{
		{"one namespace's 200 large tokens stay within its share", []string{"tenant-a"}, 200, "tenant-b"},
		{"a namespace filling its share keeps a cluster provider's token", []string{"tenant-a"}, 200, ""},
		{"a cluster provider's large tokens keep a namespace's token", []string{""}, 200, "tenant-b"},
		{"forty namespaces filling the cache keep a quiet namespace's token",
			func() (ns []string) {
				for i := range 40 {
					ns = append(ns, fmt.Sprint("tenant-", i))
				}
				return ns
			}(), 20, "quiet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c authCache
			c.store(tc.quietOwner, "quiet", quiet, cacheEpoch)
			// The noisy namespaces' shares, within the cache's bound, and
			// the quiet token.
			bound := min(len(tc.noisy)*maxAuthShareBytes, maxAuthBytes) + len(quiet.Value) + authEntryOverhead
			for _, ns := range tc.noisy {
				for i := range tc.tokens {
					c.store(ns, fmt.Sprint(ns, "-", i), large(i), cacheEpoch) // keys hash each provider's spec
					if used := c.used[ns]; used > maxAuthShareBytes {
						t.Fatalf("namespace %q holds %d bytes, over its share of %d", ns, used, maxAuthShareBytes)
					}
					if _, bytes := c.size(); bytes > bound {
						t.Fatalf("the cache holds %d bytes, over %d", bytes, bound)
					}
				}
			}
			if tok, ok := c.lookup(tc.quietOwner, "quiet", cacheEpoch); !ok || tok != quiet.Value {
				t.Errorf("namespace %q lost its token", tc.quietOwner)
			}
			last := tc.noisy[len(tc.noisy)-1]
			if _, ok := c.lookup(last, fmt.Sprint(last, "-", tc.tokens-1), cacheEpoch); !ok {
				t.Error("the newest token was not cached")
			}
		})
	}
}

// TestAuthCacheNamespacesDoNotShare checks that the same key in two
// namespaces names two entries: one namespace's token is never served to,
// or dropped by, another.
func TestAuthCacheNamespacesDoNotShare(t *testing.T) {
	var c authCache
	c.store("a", "k", provider.Token{Value: "ta", ExpiresAt: cacheEpoch.Add(time.Hour)}, cacheEpoch)
	if _, ok := c.lookup("b", "k", cacheEpoch); ok {
		t.Fatal("namespace b was served namespace a's token")
	}
	c.store("b", "k", provider.Token{Value: "tb", ExpiresAt: cacheEpoch.Add(time.Hour)}, cacheEpoch)
	c.drop("b", "k", "tb")
	if tok, ok := c.lookup("a", "k", cacheEpoch); !ok || tok != "ta" {
		t.Fatalf("namespace a's token after b's was dropped: %q, %v", tok, ok)
	}
}

// TestAuthCacheDrop checks that only the refused token is dropped.
func TestAuthCacheDrop(t *testing.T) {
	var c authCache
	c.store("ns", "k", provider.Token{Value: "new", ExpiresAt: cacheEpoch.Add(time.Hour)}, cacheEpoch)
	c.drop("ns", "k", "old")
	if v, ok := c.lookup("ns", "k", cacheEpoch); !ok || v != "new" {
		t.Fatalf("dropping a replaced token removed its successor")
	}
	c.drop("ns", "k", "new")
	if _, ok := c.lookup("ns", "k", cacheEpoch); ok {
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
		_, _, err := c.token(ctx, "ns", "k", cacheEpoch, fetch)
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
	tok, _, err := c.token(context.Background(), "ns", "k", cacheEpoch, fetch)
	if _, cached, _ := c.token(context.Background(), "ns", "k", cacheEpoch, fetch); err != nil || tok != "tok" || !cached {
		t.Errorf("after the shared call: %q, %v, cached %v", tok, err, cached)
	}
}
