package httpprovider

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// maxAuthEntries bounds the auth tokens one Provider keeps: one per distinct
// auth configuration and credential, so far more than a cluster has.
const maxAuthEntries = 256

// maxAuthMargin is how long before its expiry a cached auth token stops
// being reused, so the main request never carries a token about to expire.
// Tokens shorter-lived than four margins stop at three quarters of their
// lifetime instead.
const maxAuthMargin = time.Minute

// authCache keeps auth-step access tokens for reuse until shortly before
// they expire, keyed by authStep.prepare's key. At most one auth call per
// key is in flight; concurrent requests wait for it. Its zero value is
// ready to use.
type authCache struct {
	group   singleflight.Group
	mu      sync.Mutex
	entries map[string]authEntry
}

// authEntry is one cached token and the time it stops being reused.
type authEntry struct {
	token string
	until time.Time
}

// token returns the access token for key: the cached one if it is still
// reusable at now (cached is then true), else the result of fetch, shared
// with every concurrent caller for the same key and cached. fetch runs
// without the caller's cancellation, so one caller giving up does not fail
// the others; the HTTP client's timeout bounds it.
func (c *authCache) token(ctx context.Context, key string, now time.Time,
	fetch func(context.Context) (provider.Token, error)) (token string, cached bool, err error) {
	if t, ok := c.lookup(key, now); ok {
		return t, true, nil
	}
	detached := context.WithoutCancel(ctx)
	ch := c.group.DoChan(key, func() (any, error) {
		if t, ok := c.lookup(key, now); ok { // stored while this call waited to start
			return t, nil
		}
		tok, err := fetch(detached)
		if err != nil {
			return "", err
		}
		c.store(key, tok, now)
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

// lookup returns key's token if it is reusable at now.
func (c *authCache) lookup(key string, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !now.Before(e.until) {
		return "", false
	}
	return e.token, true
}

// store caches tok under key until its expiry minus the margin. When full,
// it forgets expired entries first, then the one that expires soonest.
func (c *authCache) store(key string, tok provider.Token, now time.Time) {
	life := tok.ExpiresAt.Sub(now)
	until := tok.ExpiresAt.Add(-min(maxAuthMargin, life/4))
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]authEntry{}
	}
	if _, ok := c.entries[key]; !ok && len(c.entries) >= maxAuthEntries {
		c.evict(now)
	}
	c.entries[key] = authEntry{token: tok.Value, until: until}
}

// evict frees at least one entry; c.mu is held.
func (c *authCache) evict(now time.Time) {
	soonest := ""
	for k, e := range c.entries {
		if !now.Before(e.until) {
			delete(c.entries, k)
		} else if soonest == "" || e.until.Before(c.entries[soonest].until) {
			soonest = k
		}
	}
	if len(c.entries) >= maxAuthEntries {
		delete(c.entries, soonest)
	}
}

// drop forgets key's token if it is still token, after the vendor refused
// it; a newer token stored meanwhile stays.
func (c *authCache) drop(key, token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok && e.token == token {
		delete(c.entries, key)
	}
}

// size is the number of cached tokens, for tests.
func (c *authCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
