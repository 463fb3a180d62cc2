package tokenstore

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

const (
	// cacheSyncTimeout bounds how long a request's reconciles wait for the
	// cache to show our own writes, for an object deleted meanwhile or an
	// API server whose resourceVersions are not comparable.
	cacheSyncTimeout = 5 * time.Second
	// CacheSyncRetry is how soon a reconcile that found the cache behind our
	// writes looks again. A Secret write's watch event enqueues the request
	// by itself; a status write's does not (the request's predicates drop
	// status changes), so this requeue is what notices it.
	CacheSyncRetry = 20 * time.Millisecond
)

// writeExpectations remembers, per request, the resourceVersions of the
// request's status and of its Secret as this operator last wrote them, until
// the manager's cache shows them or cacheSyncTimeout passes. A reconcile
// that starts while the cache is behind decides nothing and looks again
// shortly, so it never decides from a state older than our last write:
// without this, a stale read could miss a just-stored token or a backoff and
// call the vendor twice, or write a status we already wrote. Unlike waiting
// in the reconcile that wrote, it holds no worker while the watch events
// travel.
type writeExpectations struct {
	mu     sync.Mutex
	m      map[types.NamespacedName]expectation
	writes int // since the last sweep
}

// sweepEvery is how many writes pass between sweeps of timed-out
// expectations: a request whose last write no reconcile followed keeps its
// entry until then.
const sweepEvery = 1024

// expectation is what the cache must show for one request; "" is no
// expectation for that object.
type expectation struct {
	request, secret string
	until           time.Time
}

func newWriteExpectations() *writeExpectations {
	return &writeExpectations{m: map[types.NamespacedName]expectation{}}
}

// wroteRequest records a write of the request's status, at resourceVersion
// rv.
func (e *writeExpectations) wroteRequest(key types.NamespacedName, rv string) {
	e.wrote(key, func(exp *expectation) { exp.request = rv })
}

// wroteSecret records a write of the request's Secret, at resourceVersion
// rv.
func (e *writeExpectations) wroteSecret(key types.NamespacedName, rv string) {
	e.wrote(key, func(exp *expectation) { exp.secret = rv })
}

// wrote records a write that set changes in the request's expectation.
// Deadlines use the real clock: they measure watch latency, not token time.
func (e *writeExpectations) wrote(key types.NamespacedName, set func(*expectation)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	exp := e.m[key]
	set(&exp)
	now := time.Now()
	exp.until = now.Add(cacheSyncTimeout)
	e.m[key] = exp
	if e.writes++; e.writes >= sweepEvery {
		e.writes = 0
		for k, v := range e.m {
			if now.After(v.until) {
				e.drop(k)
			}
		}
	}
}

// pending returns the request's expectation, dropping one that timed out.
func (e *writeExpectations) pending(key types.NamespacedName) (expectation, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	exp, ok := e.m[key]
	if ok && time.Now().After(exp.until) {
		e.drop(key)
		return expectation{}, false
	}
	return exp, ok
}

// met drops the request's expectation once the cache showed it, unless a
// newer write replaced it meanwhile.
func (e *writeExpectations) met(key types.NamespacedName, exp expectation) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m[key] == exp {
		e.drop(key)
	}
}

// forget drops the expectation of a request that is gone.
func (e *writeExpectations) forget(key types.NamespacedName) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.drop(key)
}

// drop deletes key's expectation. A map never shrinks, so once the last
// expectation is gone (a burst of first tokens is over) a new, empty one
// replaces it and the burst's buckets are freed.
func (e *writeExpectations) drop(key types.NamespacedName) {
	delete(e.m, key)
	if len(e.m) == 0 {
		e.m = map[types.NamespacedName]expectation{}
	}
}

// atLeast reports whether the cached resourceVersion is the written one or a
// later write's (someone else's change after ours must not make us wait for
// the timeout). An API server whose versions are not comparable integers
// only matches the written one exactly.
func atLeast(cached, written string) bool {
	c, err := resourceversion.CompareResourceVersion(cached, written)
	if err != nil {
		return cached == written
	}
	return c >= 0
}

// CacheBehind reports whether the cache does not yet show this operator's
// last writes of etr (as read from the cache) and its Secret. It reads the
// cache only while a write is expected, which costs no API request. A
// reconcile that finds it behind decides nothing and looks again after
// CacheSyncRetry.
func (s *Store) CacheBehind(ctx context.Context, etr *v1alpha1.EmbedTokenRequest) bool {
	key := client.ObjectKeyFromObject(etr)
	exp, ok := s.expect.pending(key)
	if !ok {
		return false
	}
	if exp.request != "" && !atLeast(etr.ResourceVersion, exp.request) {
		return true
	}
	if exp.secret != "" {
		secret := secretMeta()
		err := s.client.Get(ctx, secretKey(etr), secret)
		if err != nil || !atLeast(secret.ResourceVersion, exp.secret) {
			return true
		}
	}
	s.expect.met(key, exp)
	log.FromContext(ctx).V(2).Info("Cache shows our writes", "embedTokenRequest", key)
	return false
}

// WroteRequest records a write of etr's status, whose answer etr now holds:
// reconciles wait for the cache to show it (CacheBehind).
func (s *Store) WroteRequest(etr *v1alpha1.EmbedTokenRequest) {
	s.expect.wroteRequest(client.ObjectKeyFromObject(etr), etr.ResourceVersion)
}
