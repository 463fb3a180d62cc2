package issuance

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"net/http"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/internal/fairness"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/egress"
	"github.com/embedtokens/embed-token-operator/internal/requestrules"
)

// defaultVendorTimeout applies when a provider sets no spec.timeout.
const defaultVendorTimeout = 10 * time.Second

// idleClientTTL is how long a provider's client and rate limiter are kept
// unused. Past it they are dropped at the provider's next reconcile (at
// least every --credential-check-interval): the transport has closed its
// idle connections long before (after 90 s), and a rate limiter unused
// this long has refilled, so a new one behaves the same (fairness.Limiters).
const idleClientTTL = 10 * time.Minute

// vendorTimeout is the bound on one vendor call: the provider's
// spec.timeout (10s when unset), at most maxTimeout when that is positive.
func vendorTimeout(spec *metav1.Duration, maxTimeout time.Duration) time.Duration {
	d := defaultVendorTimeout
	if spec != nil && spec.Duration > 0 {
		d = spec.Duration
	}
	if maxTimeout > 0 {
		d = min(d, maxTimeout)
	}
	return d
}

// httpClients keeps one HTTP client per provider, so connections are
// reused across requests, and one parsed CA bundle per distinct content, shared by every provider's client
// that trusts it. Entries are named by provider (kind, namespace, name) and
// record the object (UID) they were built for. Nothing outlives its use:
// a deleted provider's entries go at once (forget), a changed or idle one's
// at the provider's next reconcile (release) or its next use, and a parsed
// bundle when the last client that uses it goes.
type httpClients struct {
	// maxTimeout caps every provider's spec.timeout (--max-vendor-timeout).
	maxTimeout time.Duration
	clock      clock.PassiveClock

	mu      sync.Mutex
	clients map[requestrules.Key]*cachedClient
	pools   map[caBundleHash]*sharedPool
}

// caBundleHash names a CA bundle by its content; the zero hash is no bundle.
type caBundleHash [sha256.Size]byte

type cachedClient struct {
	uid        types.UID
	generation int64
	key        string // everything the client was built from
	client     *http.Client
	bundle     caBundleHash
	lastUsed   time.Time
}

// sharedPool is a parsed CA bundle and the number of cached clients that
// trust it.
type sharedPool struct {
	pool  *x509.CertPool
	users int
}

func newHTTPClients(maxTimeout time.Duration, clk clock.PassiveClock) *httpClients {
	return &httpClients{maxTimeout: maxTimeout, clock: clk, clients: map[requestrules.Key]*cachedClient{},
		pools: map[caBundleHash]*sharedPool{}}
}

// httpClient returns the provider's HTTP client, whose connections the
// egress guard checks for the provider's kind. Every vendor call uses it.
func (i *Issuer) httpClient(ctx context.Context, p *Provider) (*http.Client, error) {
	return i.clients.get(ctx, p, egress.Guard{Policy: i.egress, Scope: p.scope, Resolver: i.resolver})
}

// ForgetProvider drops the client, limiter and credentials kept for a
// provider that is gone. The provider reconciler calls it (its
// ProviderMemory), since it sees every provider go.
func (i *Issuer) ForgetProvider(key requestrules.Key) {
	uids := i.clients.forget(key)
	if uid, ok := i.gates.Limiters.Forget(fairness.ProviderKey(key)); ok {
		uids = append(uids, uid)
	}
	i.credCache.Forget(uids...)
	i.saTokens.Forget(uids...)
}

// ReleaseProvider drops the client, limiter and credentials kept for a
// provider that were built for another object or an older spec, or that
// have been idle for idleClientTTL. The provider reconciler calls it each
// time it reconciles obj, at least every --credential-check-interval.
func (i *Issuer) ReleaseProvider(key requestrules.Key, obj client.Object) {
	uids := i.clients.release(key, obj)
	if uid, ok := i.gates.Limiters.Release(fairness.ProviderKey(key), obj.GetUID(), i.clients.clock.Now().Add(-idleClientTTL)); ok {
		uids = append(uids, uid)
	}
	i.credCache.Forget(uids...)
	i.saTokens.Forget(uids...)
}

// HTTPClientCounts returns how many vendor HTTP clients, rate limiters and
// parsed CA bundles are kept, for the operator's memory metrics.
func (i *Issuer) HTTPClientCounts() (clients, limiters, pools int) {
	clients, pools = i.clients.size()
	return clients, i.gates.Limiters.Len(), pools
}

// get returns the provider's client, building a new one when anything it
// was built from changed. The guard's scope is part of the key: a UID is
// never both kinds, but the key should not depend on that.
func (h *httpClients) get(ctx context.Context, p *Provider, guard egress.Guard) (*http.Client, error) {
	var caPEM []byte
	if ref := p.Spec.CABundleSecretRef; ref != nil {
		var err error
		if caPEM, err = p.creds.Read(ctx, *ref); err != nil {
			return nil, err
		}
	}
	return h.client(p.Key(), p.UID, p.Generation, vendorTimeout(p.Spec.Timeout, h.maxTimeout), caPEM, guard)
}

// client returns the client cached for the provider key, or builds and
// caches one for the provider object uid at generation.
func (h *httpClients) client(pk requestrules.Key, uid types.UID, generation int64, timeout time.Duration, caPEM []byte,
	guard egress.Guard) (*http.Client, error) {
	var bundle caBundleHash
	if len(caPEM) > 0 {
		bundle = sha256.Sum256(caPEM)
	}
	key := fmt.Sprintf("%s/%d/%s/%x", guard.Scope, generation, timeout, bundle)
	now := h.clock.Now()

	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.clients[pk]; ok && c.uid == uid && c.key == key {
		c.lastUsed = now
		return c.client, nil
	}
	roots, err := h.acquirePool(bundle, caPEM)
	if err != nil {
		return nil, err
	}
	c, err := provider.NewHTTPClient(timeout, roots, guard)
	if err != nil {
		h.releasePool(bundle)
		return nil, err
	}
	h.dropClient(pk)
	h.clients[pk] = &cachedClient{uid: uid, generation: generation, key: key, client: c, bundle: bundle, lastUsed: now}
	return c, nil
}

// acquirePool returns the parsed CA bundle with this content, parsing it
// only if no cached client trusts it yet, and counts one more user; nil
// (the system roots) without a bundle. h.mu is held.
func (h *httpClients) acquirePool(bundle caBundleHash, caPEM []byte) (*x509.CertPool, error) {
	if len(caPEM) == 0 {
		return nil, nil
	}
	if p, ok := h.pools[bundle]; ok {
		p.users++
		return p.pool, nil
	}
	pool, err := provider.CertPool(caPEM)
	if err != nil {
		return nil, err
	}
	h.pools[bundle] = &sharedPool{pool: pool, users: 1}
	return pool, nil
}

// releasePool counts one user of a parsed bundle less and drops the bundle
// with its last user. h.mu is held.
func (h *httpClients) releasePool(bundle caBundleHash) {
	p, ok := h.pools[bundle]
	if !ok {
		return
	}
	if p.users--; p.users <= 0 {
		delete(h.pools, bundle)
	}
}

// dropClient removes the provider key's client. h.mu is held.
func (h *httpClients) dropClient(pk requestrules.Key) {
	if c, ok := h.clients[pk]; ok {
		delete(h.clients, pk)
		h.releasePool(c.bundle)
	}
}

// forget drops the client of the provider key, which is gone, and returns
// the provider object (UID) it was built for.
func (h *httpClients) forget(pk requestrules.Key) []types.UID {
	h.mu.Lock()
	defer h.mu.Unlock()
	var uids []types.UID
	if c, ok := h.clients[pk]; ok {
		uids = append(uids, c.uid)
		h.dropClient(pk)
	}
	return uids
}

// release drops what is kept for the provider key that obj, the provider as
// it is now, would not reuse: entries built for another object under the
// same name or an older generation, and entries unused for idleClientTTL.
// It returns the provider objects (UIDs) whose entries it dropped.
func (h *httpClients) release(pk requestrules.Key, obj client.Object) []types.UID {
	now := h.clock.Now()
	idle := func(lastUsed time.Time) bool { return now.Sub(lastUsed) > idleClientTTL }
	h.mu.Lock()
	defer h.mu.Unlock()
	var uids []types.UID
	if c, ok := h.clients[pk]; ok && (c.uid != obj.GetUID() || c.generation < obj.GetGeneration() || idle(c.lastUsed)) {
		uids = append(uids, c.uid)
		h.dropClient(pk)
	}
	return uids
}

// size returns how many clients and parsed CA bundles are kept.
func (h *httpClients) size() (clients, pools int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients), len(h.pools)
}
