package credentials

import (
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// maxCachedProviders bounds the credential cache; past it the cache starts
// over, which costs one read per credential and nothing else.
const maxCachedProviders = 4096

// maxCachedValueBytes bounds a value the credential cache keeps: the
// largest CA bundle accepted, far more than any key or password. A larger
// value is read again on every use, which only a misconfigured provider
// pays; it is not kept for each provider that names it.
const maxCachedValueBytes = provider.MaxCABundleBytes

// Cache keeps the credential values each provider's vendor calls read, so
// a token costs no Secret read. An entry belongs to one provider
// object (UID) at one generation and one status.credentialsVersion: the
// provider reconciler re-reads the Secrets' resource versions every
// --credential-check-interval and changes credentialsVersion on a rotation,
// so a rotated credential is used by new vendor calls within one interval.
// Only successful reads are kept: a missing credential is read again on
// every attempt.
type Cache struct {
	mu      sync.Mutex
	entries map[types.UID]credentialEntry
}

// credentialEntry holds one provider's values at one stamp
// (generation/credentialsVersion).
type credentialEntry struct {
	stamp  string
	values map[v1alpha1.SecretKeySelector][]byte
}

// NewCache returns an empty Cache. One is built per manager and shared by
// every Reader of ForProvider, so a credential is read once per provider
// and credentialsVersion, not once per token.
func NewCache() *Cache {
	return &Cache{entries: map[types.UID]credentialEntry{}}
}

// stampOf is what must not change for a cached value to be served;
// "" (the provider has no credentialsVersion yet) disables caching.
func stampOf(generation int64, credentialsVersion string) string {
	if credentialsVersion == "" {
		return ""
	}
	return strconv.FormatInt(generation, 10) + "/" + credentialsVersion
}

// get returns the cached value of ref for the provider uid at stamp.
func (c *Cache) get(uid types.UID, stamp string, ref v1alpha1.SecretKeySelector) ([]byte, bool) {
	if c == nil || stamp == "" {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[uid]
	if !ok || e.stamp != stamp {
		return nil, false
	}
	v, ok := e.values[ref]
	return v, ok
}

// put records a value read for the provider uid at stamp, dropping what the
// provider's entry held for an older stamp; a value over
// maxCachedValueBytes is not kept.
func (c *Cache) put(uid types.UID, stamp string, ref v1alpha1.SecretKeySelector, value []byte) {
	if c == nil || stamp == "" || len(value) > maxCachedValueBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[uid]
	if !ok || e.stamp != stamp {
		if !ok && len(c.entries) >= maxCachedProviders {
			c.entries = map[types.UID]credentialEntry{}
		}
		e = credentialEntry{stamp: stamp, values: map[v1alpha1.SecretKeySelector][]byte{}}
		c.entries[uid] = e
	}
	e.values[ref] = value
}

// Forget drops the values cached for the provider objects uids:
// issuance.Issuer calls it when a provider is gone or was replaced, so a
// deleted provider's credentials do not stay in memory until the cache
// starts over.
func (c *Cache) Forget(uids ...types.UID) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, uid := range uids {
		delete(c.entries, uid)
	}
}
