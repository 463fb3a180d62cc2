package controller

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// uncachedSecret reads the metadata of the request's Secret past the cache,
// which misses it when the Secret still carries the shard label of the
// instance the request was moved from (or lost its managed-by label). A
// Secret this request owns is returned, so its stored token is kept rather
// than re-issued and the next write gives it this shard's labels. A Secret
// owned by someone else is left to checkSecretConflict to report. When there
// is no Secret at all, o.secretAbsent saves that check a second read. It
// runs only in a sharded instance; an unsharded one caches every managed
// Secret and leaves any other in the way to the create's AlreadyExists.
func (r *EmbedTokenRequestReconciler) uncachedSecret(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, o *outcome) (*metav1.PartialObjectMetadata, error) {
	key := client.ObjectKey{Namespace: etr.Namespace, Name: etr.TargetSecretName()}
	secret := secretMeta()
	err := r.APIReader.Get(ctx, key, secret)
	switch {
	case apierrors.IsNotFound(err):
		o.secretAbsent = true
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading Secret %s: %w", key.Name, err)
	case !metav1.IsControlledBy(secret, etr):
		o.foreignSecret = true // reported before any vendor call
		return nil, nil
	}
	if secret.Labels[v1alpha1.ShardLabel] != etr.Labels[v1alpha1.ShardLabel] {
		log.FromContext(ctx).Info("Adopting Secret from another shard", "embedTokenRequest", klog.KObj(etr),
			"secret", key.Name, "fromShard", secret.Labels[v1alpha1.ShardLabel], "toShard", etr.Labels[v1alpha1.ShardLabel])
	}
	return secret, nil
}

// setShardLabel gives the Secret the request's shard label, or none when
// the request has none, so the Secret is cached by the same instance as
// its request.
func setShardLabel(labels map[string]string, etr *v1alpha1.EmbedTokenRequest) {
	if shard, ok := etr.Labels[v1alpha1.ShardLabel]; ok {
		labels[v1alpha1.ShardLabel] = shard
	} else {
		delete(labels, v1alpha1.ShardLabel)
	}
}

// shardLabelChanged passes updates of a request's shard label, which change
// neither its generation nor its annotations, so an instance whose selector
// still matches (an unsharded one) relabels the Secret at once.
var shardLabelChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		if e.ObjectOld == nil || e.ObjectNew == nil {
			return false
		}
		oldShard, hadShard := e.ObjectOld.GetLabels()[v1alpha1.ShardLabel]
		newShard, hasShard := e.ObjectNew.GetLabels()[v1alpha1.ShardLabel]
		return oldShard != newShard || hadShard != hasShard
	},
}
