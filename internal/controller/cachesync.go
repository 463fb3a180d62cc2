package controller

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// cacheSyncTimeout bounds the wait for the cache to show our own write. If
// someone else writes the object meanwhile, the wait ends at the timeout.
const cacheSyncTimeout = 5 * time.Second

// waitForCache blocks until the manager's cache holds written (or the
// timeout passes). The next reconcile of the same key starts only after this
// one returns, so it never decides from a state older than our last write:
// without this, a stale read could miss a just-stored token or a backoff and
// call the vendor twice.
func (r *EmbedTokenRequestReconciler) waitForCache(ctx context.Context, written client.Object) {
	key, rv := client.ObjectKeyFromObject(written), written.GetResourceVersion()
	cached := written.DeepCopyObject().(client.Object)
	err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, cacheSyncTimeout, true, func(ctx context.Context) (bool, error) {
		if err := r.Get(ctx, key, cached); err != nil {
			return false, nil //nolint:nilerr // not in the cache yet
		}
		return cached.GetResourceVersion() == rv, nil
	})
	if err != nil {
		log.FromContext(ctx).V(1).Info("Cache did not show our write in time", "object", key)
	}
}
