package jwtprovider

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync/atomic"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/singleflight"
	"k8s.io/utils/lru"
)

// maxCachedKeys bounds the parsed keys kept: one per distinct key in use,
// as many as the other per-provider caches keep. A parsed 4,096-bit RSA key
// is a few kilobytes, so the cache stays within a few megabytes; past the
// bound, a key costs one more parse.
const maxCachedKeys = 256

// keyCache keeps the result of parsing a signing key, key or error, so a
// key is parsed once however many tokens it signs. An entry is found by a
// keyed fingerprint of the algorithm and the key's bytes: a provider is
// served only what parsing its own bytes gives, a rotated key (new bytes)
// is parsed afresh, and a spec or credentials change that keeps the key
// costs nothing. Least recently used entries go first. Safe for concurrent
// use; concurrent misses for one key parse it once, and a nil cache parses
// every time.
type keyCache struct {
	// hmacKey makes the fingerprints useless outside this process.
	hmacKey []byte
	entries *lru.Cache
	flight  singleflight.Group
	// parses counts the keys parsed, for tests.
	parses atomic.Int64
}

// parsedKey is what parseKey returned for one key.
type parsedKey struct {
	key any
	err error
}

func newKeyCache(size int) *keyCache {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails since Go 1.24
	return &keyCache{hmacKey: key, entries: lru.New(size)}
}

// parse returns parseKey(method, raw), parsing only on a miss. Only the
// bounded size check runs before the fingerprint, so an oversized Secret
// value is neither hashed nor kept.
func (c *keyCache) parse(method jwt.SigningMethod, raw []byte) (any, error) {
	if c == nil || len(raw) > maxKeyBytes {
		return parseKey(method, raw)
	}
	mac := hmac.New(sha256.New, c.hmacKey)
	mac.Write([]byte(method.Alg()))
	mac.Write([]byte{0})
	mac.Write(raw)
	var fp [sha256.Size]byte
	mac.Sum(fp[:0])
	if v, ok := c.entries.Get(fp); ok {
		p := v.(parsedKey)
		return p.key, p.err
	}
	v, _, _ := c.flight.Do(string(fp[:]), func() (any, error) {
		if v, ok := c.entries.Get(fp); ok { // parsed while this call waited
			return v, nil
		}
		c.parses.Add(1)
		key, err := parseKey(method, raw)
		p := parsedKey{key: key, err: err}
		c.entries.Add(fp, p)
		return p, nil
	})
	p := v.(parsedKey)
	return p.key, p.err
}
