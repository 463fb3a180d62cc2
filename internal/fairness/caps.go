package fairness

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// RetryBase is how long a caller refused a call slot or a lane's turn waits
// per round of calls ahead of it when no freed slot wakes it first, and the
// retry of a rate limit that can never grant a turn.
const RetryBase = 2 * time.Second

// Caps are how many vendor calls may be in flight at once, so a provider
// that never answers holds a bounded share of the callers (the reconcile
// workers, the endpoint's requests): half of them through one provider and
// half from one namespace (whatever providers it uses, so many providers do
// not multiply its share; its providers share that half), and a quarter
// from one namespace through a shared ClusterEmbedProvider, so one team
// cannot take it all. A quarter per provider cost a single-provider cluster
// about 13% of its issuing rate (docs/benchmarks.md); half cost nothing
// measurable.
type Caps struct {
	Provider, Namespace, SharedNamespace int
}

// NewCaps derives the caps from the number of workers, each at least 1.
func NewCaps(workers int) Caps {
	half := max(workers/2, 1)
	return Caps{Provider: half, Namespace: half, SharedNamespace: max(workers/4, 1)}
}

// Limits are the caps one call from namespace through provider uid counts
// against; shared is true for a ClusterEmbedProvider.
func (c Caps) Limits(uid types.UID, namespace string, shared bool) []Limit {
	l := []Limit{{Key: "provider/" + string(uid), Max: c.Provider}, {Key: "namespace/" + namespace, Max: c.Namespace}}
	if shared {
		l = append(l, Limit{Key: "provider/" + string(uid) + "/" + namespace, Max: c.SharedNamespace})
	}
	return l
}

// Describe states the caps for a status message.
func (c Caps) Describe(shared bool) string {
	if shared {
		return fmt.Sprintf("at most %d calls at once per provider, %d per namespace and %d per namespace through a ClusterEmbedProvider",
			c.Provider, c.Namespace, c.SharedNamespace)
	}
	return fmt.Sprintf("at most %d calls at once per provider and %d per namespace", c.Provider, c.Namespace)
}
