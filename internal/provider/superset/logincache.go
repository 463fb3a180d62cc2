package superset

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"time"
	"weak"

	"golang.org/x/sync/singleflight"
	"k8s.io/utils/lru"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// loginCache keeps one access token per provider and Superset login, so
// requests on one provider share a login until shortly before it expires.
// It is bounded (least recently used entries go first) and concurrent
// misses of one key make a single login.
type loginCache struct {
	// hmacKey makes the password's fingerprint in a key useless outside
	// this process.
	hmacKey []byte
	entries *lru.Cache
	flights singleflight.Group
}

// loginKey identifies a login. client is the provider's HTTP client, which
// the controller builds per provider object (and rebuilds when its spec
// changes): an access token is reused only through the client, and so the
// egress rules and CA bundle, it was obtained with, and never by another
// provider. A weak pointer, so the cache does not keep a discarded client
// alive. The password's fingerprint makes a rotated password miss.
type loginKey struct {
	client                      weak.Pointer[http.Client]
	url, username, authProvider string
	password                    [sha256.Size]byte
	// flight names the key for singleflight, which wants a string; it is
	// only compared while a login is in flight, when the client is alive.
	flight string
}

func newLoginCache(size int) *loginCache {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails since Go 1.24
	return &loginCache{hmacKey: key, entries: lru.New(size)}
}

// key is the cache key of a login through client.
func (c *loginCache) key(client *http.Client, url, username, authProvider, password string) loginKey {
	mac := hmac.New(sha256.New, c.hmacKey)
	mac.Write([]byte(password))
	k := loginKey{client: weak.Make(client), url: url, username: username, authProvider: authProvider}
	mac.Sum(k.password[:0])
	k.flight = fmt.Sprintf("%p\x00%s\x00%s\x00%s\x00%x", client, url, username, authProvider, k.password)
	return k
}

// get returns a cached access token still good at now (cached true), or
// logs in with fetch. Concurrent callers of one key share one fetch, which
// runs without the first caller's cancellation (the client's timeout still
// bounds it) so one caller giving up does not fail the others; each caller
// stops waiting when its own ctx ends.
func (c *loginCache) get(ctx context.Context, key loginKey, now time.Time,
	fetch func(context.Context) (login, error)) (access string, cached bool, err error) {
	if v, ok := c.entries.Get(key); ok {
		if l := v.(login); now.Before(l.until) {
			return l.accessToken, true, nil
		}
	}
	ch := c.flights.DoChan(key.flight, func() (any, error) {
		l, err := fetch(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		if now.Before(l.until) {
			c.entries.Add(key, l)
		} else {
			c.entries.Remove(key)
		}
		return l, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return "", false, ownCopy(res.Err)
		}
		return res.Val.(login).accessToken, false, nil
	case <-ctx.Done():
		return "", false, provider.Transient(v1alpha1.ReasonVendorUnavailable, "gave up waiting for the Superset login: %v", ctx.Err())
	}
}

// ownCopy gives each caller sharing a failed login its own error: callers
// add to a classified error's message (the step, redaction) in place.
func ownCopy(err error) error {
	var e *provider.Error
	if errors.As(err, &e) {
		own := *e
		return &own
	}
	return err
}

// drop forgets key's login if it is still access, the token Superset
// refused; a newer login another call made meanwhile is kept.
func (c *loginCache) drop(key loginKey, access string) {
	if v, ok := c.entries.Get(key); ok && v.(login).accessToken == access {
		c.entries.Remove(key)
	}
}
