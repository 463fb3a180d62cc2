package template

import (
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/lru"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// DefaultCacheSize is how many templates' compiled parameters a Cache keeps
// when NewCache is given no size.
const DefaultCacheSize = 1024

// Cache keeps compiled templates by UID and generation, so the endpoint,
// which asks on every call, compiles each template generation once. It is
// a bounded LRU and safe for concurrent use; a nil Cache compiles every time.
type Cache struct {
	lru *lru.Cache
}

// cached is one template generation's compilation, an error included.
type cached struct {
	generation int64
	compiled   *Compiled
	err        error
}

// NewCache returns a Cache holding at most size templates
// (DefaultCacheSize when size is not positive).
func NewCache(size int) *Cache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	return &Cache{lru: lru.New(size)}
}

// Get returns tmpl's compiled parameters, compiling them when its UID and
// generation are not cached.
func (c *Cache) Get(tmpl *v1alpha1.EmbedTokenTemplate) (*Compiled, error) {
	if c == nil {
		return Compile(&tmpl.Spec)
	}
	if v, ok := c.lru.Get(tmpl.UID); ok {
		if e := v.(cached); e.generation == tmpl.Generation {
			return e.compiled, e.err
		}
	}
	// Compiling outside any lock lets other templates' lookups proceed;
	// two callers compiling one generation at once store equal results.
	compiled, err := Compile(&tmpl.Spec)
	c.lru.Add(tmpl.UID, cached{generation: tmpl.Generation, compiled: compiled, err: err})
	return compiled, err
}

// Forget drops the template uid, which is gone.
func (c *Cache) Forget(uid types.UID) {
	if c != nil {
		c.lru.Remove(uid)
	}
}

// Len is how many templates are cached.
func (c *Cache) Len() int {
	if c == nil {
		return 0
	}
	return c.lru.Len()
}
