package controller

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/issuance"
)

// providerRefIndex indexes requests by "Kind/Name" of their provider so a
// provider change enqueues exactly the requests that use it.
const providerRefIndex = "spec.providerRef"

func providerRefKey(kind, name string) string { return kind + "/" + name }

func indexProviderRef(ctx context.Context, mgr ctrl.Manager) error {
	return mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.EmbedTokenRequest{}, providerRefIndex, func(obj client.Object) []string {
		etr := obj.(*v1alpha1.EmbedTokenRequest)
		return []string{providerRefKey(etr.ProviderKind(), etr.Spec.ProviderRef.Name)}
	})
}

// requestsForProvider maps a provider to the requests that reference it.
func (r *EmbedTokenRequestReconciler) requestsForProvider(ctx context.Context, obj client.Object) []reconcile.Request {
	return referencing(ctx, r.Client, obj, &v1alpha1.EmbedTokenRequestList{})
}

// referencing lists the objects of list's kind (requests, templates) that
// reference the provider obj, by their providerRefIndex, as reconcile
// requests.
func referencing(ctx context.Context, c client.Reader, obj client.Object, list client.ObjectList) []reconcile.Request {
	var opts []client.ListOption
	if _, ok := obj.(*v1alpha1.EmbedProvider); ok {
		opts = append(opts, client.InNamespace(obj.GetNamespace()))
	}
	opts = append(opts, client.MatchingFields{providerRefIndex: providerRefKey(issuance.Key(obj).Kind, obj.GetName())})
	if err := c.List(ctx, list, opts...); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing objects for provider", "kind", fmt.Sprintf("%T", list), "provider", obj.GetName())
		return nil
	}
	var reqs []reconcile.Request
	_ = meta.EachListItem(list, func(item runtime.Object) error {
		o := item.(client.Object)
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}})
		return nil
	})
	return reqs
}

// providerChanged passes provider events that can change a request's
// outcome: a spec change, or a rotated credential.
var providerChanged = predicate.Or(predicate.GenerationChangedPredicate{}, predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return credentialsVersion(e.ObjectOld) != credentialsVersion(e.ObjectNew)
	},
})

func credentialsVersion(obj client.Object) string {
	switch p := obj.(type) {
	case *v1alpha1.EmbedProvider:
		return p.Status.CredentialsVersion
	case *v1alpha1.ClusterEmbedProvider:
		return p.Status.CredentialsVersion
	}
	return ""
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
