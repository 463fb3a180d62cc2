package fairness

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/client-go/rest"
)

// DefaultNamespaceWriteShare is the share of the manager's client rate
// limit (--kube-api-qps and --kube-api-burst) one namespace may spend on
// issuing tokens unless --namespace-write-share says otherwise. Each token
// costs a Secret write and a status write, each under its resource's
// client limit, so with half of them a namespace with a thousand requests
// renewing at once leaves the other half to every other namespace: their
// requests are not queued behind its writes.
const DefaultNamespaceWriteShare = 0.5

// WriteBudget is how many tokens one namespace may issue per second (QPS)
// and at once (Burst). The zero value is no bound.
type WriteBudget struct {
	QPS   float64
	Burst int
}

// NamespaceWriteBudget is share (in (0, 1]) of the client's rate limit
// qps and burst, as a rest.Config holds them: zero means client-go's
// defaults, a negative qps a client with no rate limit, whose namespaces
// are then not bounded either.
func NamespaceWriteBudget(qps float32, burst int, share float64) WriteBudget {
	if qps < 0 || share <= 0 {
		return WriteBudget{}
	}
	if qps == 0 {
		qps, burst = rest.DefaultQPS, rest.DefaultBurst
	}
	share = min(share, 1)
	return WriteBudget{QPS: float64(qps) * share, Burst: max(int(float64(burst)*share), 1)}
}

// unbounded is the limiter of a namespace when there is no write budget.
var unbounded = rate.NewLimiter(rate.Inf, 0)

// NamespaceLimiters holds each namespace's token bucket of issues. A bucket
// that is full again carries no state and is forgotten, so the map holds
// only namespaces that issued in the last Burst/QPS seconds.
type NamespaceLimiters struct {
	mu     sync.Mutex
	budget WriteBudget
	m      map[string]*rate.Limiter
	// sweepAt is the size at which full buckets are next forgotten.
	sweepAt int
}

// minSweep is the least number of buckets kept before any is forgotten.
const minSweep = 64

// NewNamespaceLimiters bounds each namespace by budget.
func NewNamespaceLimiters(budget WriteBudget) *NamespaceLimiters {
	return &NamespaceLimiters{budget: budget}
}

// Limiter is namespace's bucket.
func (n *NamespaceLimiters) Limiter(namespace string, now time.Time) *rate.Limiter {
	if n.budget.QPS <= 0 {
		return unbounded
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if l, ok := n.m[namespace]; ok {
		return l
	}
	if n.m == nil {
		n.m = map[string]*rate.Limiter{}
	}
	if len(n.m) >= max(n.sweepAt, minSweep) {
		for ns, l := range n.m {
			if l.TokensAt(now) >= float64(l.Burst()) {
				delete(n.m, ns)
			}
		}
		n.sweepAt = 2 * len(n.m)
	}
	l := rate.NewLimiter(rate.Limit(n.budget.QPS), n.budget.Burst)
	n.m[namespace] = l
	return l
}
