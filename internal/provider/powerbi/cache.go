package powerbi

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
	"weak"

	"golang.org/x/sync/singleflight"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// Access tokens are cached so that the embed tokens of one provider cost one
// Microsoft Entra ID call per access token lifetime, not one each. Power BI
// gives an embed token at most the remaining life of the access token that
// asked for it, so a cached token is reused only while it has enough left.
const (
	// maxCachedTokens bounds the cache: one entry per provider HTTP client.
	maxCachedTokens = 256
	// minRefreshMargin is how long before its expiry an access token is
	// replaced at the latest, whatever its lifetime: longer than any vendor
	// call may take (--max-vendor-timeout) plus clock skew.
	minRefreshMargin = 5 * time.Minute
	// defaultFetchTimeout bounds an Entra ID call made for waiting callers
	// when the provider's client sets no timeout of its own.
	defaultFetchTimeout = 30 * time.Second
)

// accessToken is an Entra ID access token and its validity.
type accessToken struct {
	value     string
	expiresAt time.Time
	// life is the lifetime Entra ID gave it, from which its refresh margin
	// and the embed lifetime it can still cover are derived.
	life time.Duration
}

// usableFor reports whether the token can serve a call made at now for an
// embed token of lifetime: it is not within its refresh margin (the larger
// of minRefreshMargin and a tenth of its life, at most half of it), and its
// remaining life covers the lifetime, or half its own life if that is less,
// so a reused token never cuts an embed token short by much.
func (t accessToken) usableFor(now time.Time, lifetime time.Duration) bool {
	left := t.expiresAt.Sub(now)
	margin := min(max(minRefreshMargin, t.life/10), t.life/2)
	return left > margin && left >= min(lifetime, t.life/2)
}

// cacheEntry is the one access token cached for a provider, with the key of
// the configuration and credential it was issued for.
type cacheEntry struct {
	key   string
	token accessToken
}

// tokenCache holds one access token per provider. A provider is known by
// its HTTP client, which the controller builds once per provider object,
// generation and egress scope: so a token is never shared between two
// providers, and a spec change starts afresh. Clients are held weakly, so
// the cache keeps no client of a deleted provider alive. It is safe for
// concurrent use, and concurrent misses for one provider share one call.
type tokenCache struct {
	max    int
	flight singleflight.Group

	mu      sync.Mutex
	entries map[weak.Pointer[http.Client]]cacheEntry
}

func newTokenCache(maxEntries int) *tokenCache {
	return &tokenCache{max: maxEntries, entries: map[weak.Pointer[http.Client]]cacheEntry{}}
}

// cacheKey identifies what an access token was issued for: the authority,
// tenant, client, scope and credential (credential.id). Hashing the secret
// in means a rotated secret never finds the token of the old one, and that
// only a holder of the secret can match an entry.
func cacheKey(c config, credentialID string) string {
	h := sha256.New()
	for _, part := range []string{c.authorityURL, c.tenantID, c.clientID, c.scope, credentialID} {
		_, _ = fmt.Fprintf(h, "%d:%s;", len(part), part) // a hash.Hash's Write never fails
	}
	return hex.EncodeToString(h.Sum(nil))
}

// get returns the provider's cached access token for key when it is usable
// for an embed token of lifetime at now; otherwise it calls fetch, once for
// all concurrent callers of the provider and key, and caches the result.
// cached says whether the token came from the cache. fetch runs detached
// from the caller's context, bounded by the client's timeout, so one
// caller's cancellation does not fail the others.
func (c *tokenCache) get(ctx context.Context, client *http.Client, key string, now time.Time, lifetime time.Duration,
	fetch func(context.Context) (accessToken, error)) (tok accessToken, cached bool, err error) {
	slot := weak.Make(client)
	if tok, ok := c.usable(slot, key, now, lifetime); ok {
		return tok, true, nil
	}
	ch := c.flight.DoChan(fmt.Sprintf("%p/%s", client, key), func() (any, error) {
		// A flight that ended between the check above and this one has
		// cached its token: use it rather than call Entra ID again.
		if tok, ok := c.usable(slot, key, now, lifetime); ok {
			return tok, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cmp.Or(client.Timeout, defaultFetchTimeout))
		defer cancel()
		tok, err := fetch(fctx)
		if err == nil {
			c.put(slot, cacheEntry{key: key, token: tok}, now)
		}
		return tok, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return accessToken{}, false, cloneError(res.Err)
		}
		return res.Val.(accessToken), false, nil
	case <-ctx.Done():
		return accessToken{}, false, provider.Transient(v1alpha1.ReasonVendorUnavailable, "gave up waiting for the Microsoft Entra ID token call: %v", context.Cause(ctx))
	}
}

// usable returns the cached token of the provider's client slot when it was
// fetched for key and is usable for an embed token of lifetime at now.
func (c *tokenCache) usable(slot weak.Pointer[http.Client], key string, now time.Time, lifetime time.Duration) (accessToken, bool) {
	c.mu.Lock()
	e, ok := c.entries[slot]
	c.mu.Unlock()
	if ok && e.key == key && e.token.usableFor(now, lifetime) {
		return e.token, true
	}
	return accessToken{}, false
}

// put stores e as the provider's entry, replacing any older one (a token for
// a previous secret among them). When the cache is full it first forgets
// entries of collected clients and expired tokens, then the entry that
// expires first.
func (c *tokenCache) put(slot weak.Pointer[http.Client], e cacheEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[slot]; !ok && len(c.entries) >= c.max {
		for s, old := range c.entries {
			if s.Value() == nil || !old.token.expiresAt.After(now) {
				delete(c.entries, s)
			}
		}
		for len(c.entries) >= c.max {
			var first weak.Pointer[http.Client]
			var firstAt time.Time
			for s, old := range c.entries {
				if firstAt.IsZero() || old.token.expiresAt.Before(firstAt) {
					first, firstAt = s, old.token.expiresAt
				}
			}
			delete(c.entries, first)
		}
	}
	c.entries[slot] = e
}

// drop forgets the provider's entry if it still holds value, the token
// Power BI refused; a newer token, fetched meanwhile, is kept.
func (c *tokenCache) drop(client *http.Client, value string) {
	slot := weak.Make(client)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[slot]; ok && e.token.value == value {
		delete(c.entries, slot)
	}
}

// len is the number of cached entries, for tests.
func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// cloneError gives each waiter of a shared call its own copy of a classified
// error, since redaction changes an Error's message in place. An Error
// wrapped in another error is copied as an Error with the whole text, the
// way Redact returns one.
func cloneError(err error) error {
	var e *provider.Error
	if !errors.As(err, &e) {
		return err
	}
	clone := *e
	if text := err.Error(); text != e.Error() { // e is wrapped
		clone.Message, clone.Err = text, nil
	}
	return &clone
}
