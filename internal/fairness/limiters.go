package fairness

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/types"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// ProviderKey names a provider: its kind, namespace (empty for a
// ClusterEmbedProvider) and name.
type ProviderKey struct {
	Kind, Namespace, Name string
}

// Limiters keeps one rate limiter per provider, built from its
// spec.rateLimit, so every call of the provider, from the reconciler or the
// token endpoint, shares the limit. An entry records the provider object
// (UID) and the limit it was built for; a changed limit or a new object
// under the same name gets a new limiter. Nothing outlives its use: a
// deleted provider's entry goes at once (Forget), an idle or replaced one at
// the provider's next reconcile (Release).
type Limiters struct {
	mu sync.Mutex
	m  map[ProviderKey]*providerLimiter
}

type providerLimiter struct {
	uid      types.UID
	limit    v1alpha1.RateLimit
	limiter  *rate.Limiter
	lastUsed time.Time
}

// For returns the limiter of the provider key, object uid, whose
// spec.rateLimit is limit (nil: no limit), marking it used at now.
func (l *Limiters) For(key ProviderKey, uid types.UID, limit *v1alpha1.RateLimit, now time.Time) *rate.Limiter {
	want := v1alpha1.RateLimit{}
	if limit != nil {
		want = *limit
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.m[key]; ok && e.uid == uid && e.limit == want {
		e.lastUsed = now
		return e.limiter
	}
	lim := rate.NewLimiter(rate.Inf, 0)
	if want.RequestsPerSecond > 0 {
		lim = rate.NewLimiter(rate.Limit(want.RequestsPerSecond), int(max(want.Burst, 1)))
	}
	if l.m == nil {
		l.m = map[ProviderKey]*providerLimiter{}
	}
	l.m[key] = &providerLimiter{uid: uid, limit: want, limiter: lim, lastUsed: now}
	return lim
}

// Forget drops the limiter of the provider key, which is gone, and returns
// the object it was built for.
func (l *Limiters) Forget(key ProviderKey) (types.UID, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.m[key]
	if !ok {
		return "", false
	}
	delete(l.m, key)
	return e.uid, true
}

// Release drops the limiter of the provider key when it was built for
// another object than uid or has not been used since idleSince, and returns
// the object it was built for. A limiter unused that long has refilled, so
// a new one behaves the same.
func (l *Limiters) Release(key ProviderKey, uid types.UID, idleSince time.Time) (types.UID, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.m[key]
	if !ok || e.uid == uid && !e.lastUsed.Before(idleSince) {
		return "", false
	}
	delete(l.m, key)
	return e.uid, true
}

// Len is how many limiters are kept, for the operator's memory metrics.
func (l *Limiters) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
