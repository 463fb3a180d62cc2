package controller

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/egress"
)

// DefaultMaxVendorTimeout bounds each vendor call whatever a provider's
// spec.timeout says (--max-vendor-timeout), so a vendor that never answers
// holds a worker for at most this long.
const DefaultMaxVendorTimeout = 30 * time.Second

// defaultVendorTimeout applies when a provider sets no spec.timeout.
const defaultVendorTimeout = 10 * time.Second

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

// httpClients keeps one HTTP client and one rate limiter per provider, so
// connections are reused across requests and the limit is shared.
type httpClients struct {
	// maxTimeout caps every provider's spec.timeout (--max-vendor-timeout).
	maxTimeout time.Duration

	mu       sync.Mutex
	clients  map[types.UID]cachedClient
	limiters map[types.UID]cachedLimiter
}

type cachedClient struct {
	key    string
	client *http.Client
}

type cachedLimiter struct {
	limit   v1alpha1.RateLimit
	limiter *rate.Limiter
}

// httpClient returns the provider's HTTP client, whose connections the
// egress guard checks for the provider's kind. Every vendor call uses it.
func (r *EmbedTokenRequestReconciler) httpClient(ctx context.Context, p *resolvedProvider) (*http.Client, error) {
	return r.clients.get(ctx, p, egress.Guard{Policy: r.Egress, Scope: p.scope, Resolver: r.VendorResolver})
}

// get returns the provider's client, building a new one when anything it
// was built from changed. The guard's scope is part of the key: a UID is
// never both kinds, but the key should not depend on that.
func (h *httpClients) get(ctx context.Context, p *resolvedProvider, guard egress.Guard) (*http.Client, error) {
	var caPEM []byte
	if ref := p.spec.CABundleSecretRef; ref != nil {
		var err error
		if caPEM, err = p.creds.Read(ctx, *ref); err != nil {
			return nil, err
		}
	}
	timeout := vendorTimeout(p.spec.Timeout, h.maxTimeout)
	key := fmt.Sprintf("%s/%d/%s/%x", guard.Scope, p.generation, timeout, sha256.Sum256(caPEM))

	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.clients[p.uid]; ok && c.key == key {
		return c.client, nil
	}
	c, err := provider.NewHTTPClient(timeout, caPEM, guard)
	if err != nil {
		return nil, err
	}
	if h.clients == nil {
		h.clients = map[types.UID]cachedClient{}
	}
	h.clients[p.uid] = cachedClient{key: key, client: c}
	return c, nil
}

func (h *httpClients) limiter(p *resolvedProvider) *rate.Limiter {
	limit := v1alpha1.RateLimit{}
	if p.spec.RateLimit != nil {
		limit = *p.spec.RateLimit
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if l, ok := h.limiters[p.uid]; ok && l.limit == limit {
		return l.limiter
	}
	l := rate.NewLimiter(rate.Inf, 0)
	if limit.RequestsPerSecond > 0 {
		l = rate.NewLimiter(rate.Limit(limit.RequestsPerSecond), int(max(limit.Burst, 1)))
	}
	if h.limiters == nil {
		h.limiters = map[types.UID]cachedLimiter{}
	}
	h.limiters[p.uid] = cachedLimiter{limit: limit, limiter: l}
	return l
}
