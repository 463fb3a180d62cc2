package controller

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// A ClusterEmbedProvider's rate limit is the platform's vendor quota, shared
// by every namespace it admits. Its limiter serves reservations in the order
// they were made, so a namespace that reserved a turn for each of its
// requests would put all of them ahead of another namespace's first. Each
// namespace therefore holds at most laneTickets reservations on a shared
// provider's limiter at once; its other requests wait in the namespace's
// lane (a callSlots queue, first come first) and the next is woken when a
// reservation is used or given back. The limiter's queue then holds at most
// laneTickets turns per namespace, so namespaces take turns: a newcomer
// waits about one turn per busy namespace, whatever their backlogs. A
// namespace alone reserves its next turn as soon as it uses the last, so it
// still gets the whole rate. An EmbedProvider serves one namespace and needs
// no lanes.
//
// This is round-robin across namespaces with equal weights, the fair
// queuing Kubernetes' API Priority and Fairness applies across flows, built
// on the limiter already there instead of a dispatcher of its own.

// laneTickets is how many reservations one namespace may hold on a shared
// provider's limiter at once.
const laneTickets = 1

// laneOf names the lane of namespace's requests through p: empty for an
// EmbedProvider, whose limit is its namespace's own.
func laneOf(p *resolvedProvider, namespace string) string {
	if !p.creds.clusterScoped {
		return ""
	}
	return string(p.uid) + "/" + namespace
}

// claimTurn takes a place in lane for key, or queues key there (at now,
// unless already) and returns false with where it stands. The empty lane
// has room for everyone. The returned function frees the place; it is safe
// to call more than once.
func (b *ticketBook) claimTurn(key types.NamespacedName, lane string, now time.Time) (func(), queueState, bool) {
	if lane == "" {
		return func() {}, queueState{}, true
	}
	return b.turns.acquire(key, []slotLimit{{key: lane, limit: laneTickets}}, now)
}

// waitForTurn records in o that etr's vendor call waits for its namespace's
// turn under p's rate limit. A woken request comes back as soon as the
// namespace's reservation is used or given back; the requeue is only the
// fallback for a lost wake-up, longer the longer the lane.
func (r *EmbedTokenRequestReconciler) waitForTurn(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, p *resolvedProvider,
	o *outcome, queue queueState, now time.Time) {
	after, quiet := slotWait(queue, unitJitter(string(etr.UID), now.UnixNano()))
	o.deferral = &deferral{after: after, quiet: quiet, message: "waiting for its namespace's turn under the rate limit of " + p.describe()}
	r.fair.slots.forget(client.ObjectKeyFromObject(etr))
	log.FromContext(ctx).V(1).Info("Vendor call waits for its namespace's turn under the rate limit", "embedTokenRequest", klog.KObj(etr),
		"queued", queue.rounds, "waited", queue.waited)
}
