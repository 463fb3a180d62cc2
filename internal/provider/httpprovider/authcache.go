package httpprovider

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// The auth cache is shared by every provider the manager serves, so it is
// bounded by bytes, and each namespace (the namespace of the provider whose
// credentials got the token; "" for a ClusterEmbedProvider) may use only a
// share of it: a namespace with many providers, or large tokens, evicts its
// own entries and never another namespace's. When the whole cache is full,
// the namespace using the most bytes gives way. provider.MaxTokenBytes caps
// one token, so a share holds at least 16 of the largest.
const (
	// maxAuthBytes bounds the bytes of every cached auth token together.
	maxAuthBytes = 16 << 20
	// maxAuthShareBytes bounds the bytes one namespace's tokens may use.
	maxAuthShareBytes = 1 << 20
	// authEntryOverhead is what an entry costs beside its token: its key,
	// owner and bookkeeping. It is charged too, so tiny tokens still bound
	// the number of entries.
	authEntryOverhead = 256
)

// maxAuthMargin is how long before its expiry a cached auth token stops
// being reused, so the main request never carries a token about to expire.
// Tokens shorter-lived than four margins stop at three quarters of their
// lifetime instead.
const maxAuthMargin = time.Minute

// authCache keeps auth-step access tokens for reuse until shortly before
// they expire, keyed by the owning namespace and authStep.prepare's key: two
// namespaces never share, or evict, each other's entry. At most one auth
// call per key is in flight; concurrent requests wait for it. Its zero value
// is ready to use, with the default bounds.
type authCache struct {
	group singleflight.Group
	// maxBytes and shareBytes override maxAuthBytes and maxAuthShareBytes
	// when set, for tests.
	maxBytes, shareBytes int

	mu sync.Mutex
	// entries holds each namespace's tokens by key.
	entries map[string]map[string]authEntry
	// used is the bytes each namespace's entries cost; total is their sum.
	used  map[string]int
	total int
}

// authEntry is one cached token and the time it stops being reused.
type authEntry struct {
	token string
	until time.Time
}

// cost is what an entry is charged against the bounds.
func (e authEntry) cost() int { return len(e.token) + authEntryOverhead }

// token returns the access token for key of owner's provider: the cached
// one if it is still reusable at now (cached is then true), else the
// result of fetch, shared with every concurrent caller for the same key and
// cached. fetch runs without the caller's cancellation, so one caller
// giving up does not fail the others; the HTTP client's timeout bounds it.
func (c *authCache) token(ctx context.Context, owner, key string, now time.Time,
	fetch func(context.Context) (provider.Token, error)) (token string, cached bool, err error) {
	if t, ok := c.lookup(owner, key, now); ok {
		return t, true, nil
	}
	detached := context.WithoutCancel(ctx)
	// Namespace names hold no "/", and key is hex.
	ch := c.group.DoChan(owner+"/"+key, func() (any, error) {
		if t, ok := c.lookup(owner, key, now); ok { // stored while this call waited to start
			return t, nil
		}
		tok, err := fetch(detached)
		if err != nil {
			return "", err
		}
		c.store(owner, key, tok, now)
		return tok.Value, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", false, r.Err
		}
		return r.Val.(string), false, nil
	case <-ctx.Done():
		return "", false, provider.Transient(v1alpha1.ReasonVendorUnavailable, "gave up waiting for the auth call: %v", ctx.Err())
	}
}

// lookup returns owner's token for key if it is reusable at now.
func (c *authCache) lookup(owner, key string, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[owner][key]
	if !ok || !now.Before(e.until) {
		return "", false
	}
	return e.token, true
}

// store caches tok as owner's token for key until its expiry minus the
// margin. To make room it forgets expired entries first, then the owner's
// entries that expire soonest until the owner is within its share, then,
// while the cache is over its bound, those of the namespace using the most
// bytes. A token larger than a share is not cached.
func (c *authCache) store(owner, key string, tok provider.Token, now time.Time) {
	life := tok.ExpiresAt.Sub(now)
	e := authEntry{token: tok.Value, until: tok.ExpiresAt.Add(-min(maxAuthMargin, life/4))}
	maxBytes, share := c.bounds()
	if !now.Before(e.until) || e.cost() > share {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries, c.used = map[string]map[string]authEntry{}, map[string]int{}
	}
	c.remove(owner, key)
	if c.used[owner]+e.cost() > share || c.total+e.cost() > maxBytes {
		c.removeExpired(now)
	}
	c.shrink(owner, share-e.cost())
	for c.total+e.cost() > maxBytes {
		heaviest := c.heaviest()
		c.shrink(heaviest, c.used[heaviest]-(c.total+e.cost()-maxBytes))
	}
	if c.entries[owner] == nil {
		c.entries[owner] = map[string]authEntry{}
	}
	c.entries[owner][key] = e
	c.used[owner] += e.cost()
	c.total += e.cost()
}

// bounds returns the cache's byte bound and a namespace's share.
func (c *authCache) bounds() (maxBytes, share int) {
	maxBytes, share = maxAuthBytes, maxAuthShareBytes
	if c.maxBytes > 0 {
		maxBytes = c.maxBytes
	}
	if c.shareBytes > 0 {
		share = c.shareBytes
	}
	return maxBytes, min(share, maxBytes)
}

// remove forgets owner's entry for key, if any; c.mu is held.
func (c *authCache) remove(owner, key string) {
	e, ok := c.entries[owner][key]
	if !ok {
		return
	}
	delete(c.entries[owner], key)
	c.used[owner] -= e.cost()
	c.total -= e.cost()
	if len(c.entries[owner]) == 0 {
		delete(c.entries, owner)
		delete(c.used, owner)
	}
}

// removeExpired forgets every entry no longer reusable at now; c.mu is held.
func (c *authCache) removeExpired(now time.Time) {
	for owner, keys := range c.entries {
		for key, e := range keys {
			if !now.Before(e.until) {
				c.remove(owner, key)
			}
		}
	}
}

// shrink forgets owner's entries that stop being reused soonest until they
// use at most limit bytes; c.mu is held.
func (c *authCache) shrink(owner string, limit int) {
	if c.used[owner] <= limit {
		return
	}
	keys := slices.SortedFunc(maps.Keys(c.entries[owner]), func(a, b string) int {
		return c.entries[owner][a].until.Compare(c.entries[owner][b].until)
	})
	for _, key := range keys {
		if c.used[owner] <= limit {
			return
		}
		c.remove(owner, key)
	}
}

// heaviest is the namespace whose entries use the most bytes; c.mu is held
// and the cache is not empty.
func (c *authCache) heaviest() string {
	owner, most := "", -1
	for ns, n := range c.used {
		if n > most || n == most && ns < owner {
			owner, most = ns, n
		}
	}
	return owner
}

// drop forgets owner's token for key if it is still token, after the vendor
// refused it; a newer token stored meanwhile stays.
func (c *authCache) drop(owner, key, token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[owner][key]; ok && e.token == token {
		c.remove(owner, key)
	}
}

// size is the number of cached tokens and the bytes they are charged, for
// tests.
func (c *authCache) size() (entries, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, keys := range c.entries {
		entries += len(keys)
	}
	return entries, c.total
}
