/*
Copyright 2026 The embed-token-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package tokenendpoint

import (
	"encoding/hex"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/lru"

	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// Defaults of the token cache's bounds.
const (
	// DefaultCacheMaxEntries is the tokens the cache holds when Options
	// leave CacheMaxEntries zero.
	DefaultCacheMaxEntries = 10000
	// DefaultCacheMaxBytes is the bytes of tokens and keys the cache holds
	// when Options leave CacheMaxBytes zero.
	DefaultCacheMaxBytes = 64 << 20
	// entryOverhead approximates the bytes an entry holds besides its token
	// and key: the entry, its list element and its index slots.
	entryOverhead = 256
)

// tokenCache holds tokens in memory only, for calls that may share them,
// bounded by entries and bytes with the least recently used dropped first.
// An index by template UID lets a template's entries be dropped together.
type tokenCache struct {
	mu         sync.Mutex
	lru        *lru.Cache
	byTemplate map[types.UID]*templateEntries
	bytes      int64
	maxBytes   int64
	// changed is told the number of entries after each change.
	changed func(entries int)
}

// templateEntries are the keys of one template's entries, all of one
// generation and credentials version, so a put checks whether the others
// are stale at once, not entry by entry.
type templateEntries struct {
	generation   int64
	credsVersion string
	keys         map[string]struct{}
}

// cacheEntry is one cached token and what its key was made of.
type cacheEntry struct {
	key          string
	uid          types.UID
	generation   int64
	credsVersion string
	token        provider.Token
	size         int64
}

func newTokenCache(maxEntries int, maxBytes int64, changed func(int)) *tokenCache {
	if maxEntries <= 0 {
		maxEntries = DefaultCacheMaxEntries
	}
	if maxBytes <= 0 {
		maxBytes = DefaultCacheMaxBytes
	}
	if changed == nil {
		changed = func(int) {}
	}
	c := &tokenCache{byTemplate: map[types.UID]*templateEntries{}, maxBytes: maxBytes, changed: changed}
	// The eviction function runs inside the lru's calls, which are made
	// with c.mu held only.
	c.lru = lru.NewWithEvictionFunc(maxEntries, func(_ lru.Key, v any) { c.unindex(v.(*cacheEntry)) })
	return c
}

// cacheKey is the key calls share a token by: the template's UID and
// generation, the provider's credentials version and the parameters, sorted
// by name and length-prefixed, hashed.
func cacheKey(uid types.UID, generation int64, credsVersion string, params map[string]string) string {
	var h keyHash
	h.strings(string(uid), strconv.FormatInt(generation, 10), credsVersion)
	names := slices.Sorted(maps.Keys(params))
	h.strings(names...)
	for _, n := range names {
		h.strings(params[n])
	}
	sum := h.sum()
	return hex.EncodeToString(sum[:])
}

// parametersDigest is a short digest of the parameters for the audit log,
// which shows the values themselves only when asked to.
func parametersDigest(params map[string]string) string {
	return cacheKey("", 0, "", params)[:12]
}

// get returns the token under key if it is valid for at least minValidFor
// after now; zero minValidFor is a third of the token's lifetime. An expired
// entry is dropped.
func (c *tokenCache) get(key string, now time.Time, minValidFor time.Duration) (provider.Token, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.lru.Get(key)
	if !ok {
		return provider.Token{}, false
	}
	e := v.(*cacheEntry)
	left := e.token.ExpiresAt.Sub(now)
	if left <= 0 {
		c.lru.Remove(key)
		c.changed(c.lru.Len())
		return provider.Token{}, false
	}
	if left < need(e.token, minValidFor) {
		return provider.Token{}, false
	}
	return e.token, true
}

// need is how long a token must still be valid to be served: minValidFor,
// or a third of its lifetime when zero.
func need(tok provider.Token, minValidFor time.Duration) time.Duration {
	if minValidFor > 0 {
		return minValidFor
	}
	return tok.ExpiresAt.Sub(tok.IssuedAt) / 3
}

// put caches tok under key and drops the template's entries of another
// generation or credentials version, which no call will ask for again.
// Tokens without an expiry or issue time are not cached: their freshness
// cannot be judged.
func (c *tokenCache) put(key string, uid types.UID, generation int64, credsVersion string, tok provider.Token) {
	if tok.ExpiresAt.IsZero() || tok.IssuedAt.IsZero() {
		return
	}
	e := &cacheEntry{key: key, uid: uid, generation: generation, credsVersion: credsVersion, token: tok,
		size: int64(len(tok.Value)+len(tok.Type)+len(key)+len(credsVersion)) + entryOverhead}
	if e.size > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.byTemplate[uid]; t != nil {
		if t.generation != generation || t.credsVersion != credsVersion {
			for k := range t.keys {
				c.lru.Remove(k)
			}
		} else if _, ok := t.keys[key]; ok {
			c.lru.Remove(key)
		}
	}
	c.lru.Add(key, e)
	t := c.byTemplate[uid]
	if t == nil {
		t = &templateEntries{generation: generation, credsVersion: credsVersion, keys: map[string]struct{}{}}
		c.byTemplate[uid] = t
	}
	t.keys[key] = struct{}{}
	c.bytes += e.size
	for c.bytes > c.maxBytes && c.lru.Len() > 0 {
		c.lru.RemoveOldest()
	}
	c.changed(c.lru.Len())
}

// forget drops every entry of the template with UID uid.
func (c *tokenCache) forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.byTemplate[uid]; t != nil {
		for k := range t.keys {
			c.lru.Remove(k)
		}
	}
	c.changed(c.lru.Len())
}

// len is the number of entries.
func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// unindex accounts for an entry leaving the lru; c.mu is held.
func (c *tokenCache) unindex(e *cacheEntry) {
	c.bytes -= e.size
	t := c.byTemplate[e.uid]
	if t == nil {
		return
	}
	delete(t.keys, e.key)
	if len(t.keys) == 0 {
		delete(c.byTemplate, e.uid)
	}
}
