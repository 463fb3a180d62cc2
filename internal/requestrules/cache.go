package requestrules

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// Cache keeps each provider's compiled RuleSet (or compile error) for its
// current generation, so rules are compiled once per provider change, not
// once per reconcile. It is safe for concurrent use by every worker of both
// the request and the provider reconcilers.
type Cache struct {
	mu      sync.Mutex
	entries map[Key]cacheEntry
}

// Key names a provider: its kind, namespace ("" for a ClusterEmbedProvider)
// and name, so the entry of a deleted provider can be dropped by name.
type Key struct {
	Kind, Namespace, Name string
}

type cacheEntry struct {
	uid        types.UID
	generation int64
	rules      *RuleSet
	err        error
}

// NewCache returns an empty Cache.
func NewCache() *Cache {
	return &Cache{entries: map[Key]cacheEntry{}}
}

// Get returns the provider's compiled rules, compiling them if this object
// (uid) at this generation has not been seen. validations must be the spec
// of that generation: a provider's spec changes only with its generation.
// A provider without rules gets a nil RuleSet, which admits every request.
// A nil Cache compiles on every call.
func (c *Cache) Get(key Key, uid types.UID, generation int64, validations []v1alpha1.RequestValidation) (*RuleSet, error) {
	if len(validations) == 0 {
		c.Forget(key)
		return nil, nil
	}
	if c == nil {
		return Compile(validations)
	}
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && e.uid == uid && e.generation == generation {
		return e.rules, e.err
	}
	// Compiling outside the lock lets other providers' lookups proceed; two
	// workers compiling the same generation at once store equal results.
	p, err := Compile(validations)
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.entries[key]; !ok || cur.uid != uid || cur.generation <= generation {
		c.entries[key] = cacheEntry{uid: uid, generation: generation, rules: p, err: err}
	}
	return p, err
}

// Forget drops a provider's entry, once it is deleted or has no rules.
func (c *Cache) Forget(key Key) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
}
