package servingcert

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// ConfigMapName is the ConfigMap the CA bundle is published as in every
// namespace with an EmbedTokenTemplate, beside kube-root-ca.crt, so pods
// mount it the same way.
const ConfigMapName = "embedtokens-ca.crt"

// ConfigMapKey is the key of the CA bundle in ConfigMapName, as in
// kube-root-ca.crt.
const ConfigMapKey = "ca.crt"

// ReasonConfigMapConflict is the Event reason when a namespace already has a
// ConfigMapName the operator did not create.
const ReasonConfigMapConflict = "CABundleConflict"

// conflictRecheck is how often a namespace whose ConfigMapName belongs to
// someone else is looked at again: that ConfigMap is not watched, since it
// lacks the label the cache selects on.
const conflictRecheck = 10 * time.Minute

// CacheByObject restricts the manager's ConfigMap cache to the published
// bundles: the name ConfigMapName with the operator's managed-by label. Add
// it to the manager's cache.Options.ByObject so no other ConfigMap of the
// cluster is held in memory.
func CacheByObject() (client.Object, cache.ByObject) {
	return &corev1.ConfigMap{}, cache.ByObject{
		Label: labels.SelectorFromSet(labels.Set{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue}),
		Field: fields.OneTermEqualSelector("metadata.name", ConfigMapName),
	}
}

// BundleSource is where the publisher reads the CA bundle; Source
// implements it.
type BundleSource interface {
	// CABundle returns the PEM bundle to publish, nil while none is known.
	CABundle() []byte
	// OnCABundleChange registers a non-blocking callback for changes.
	OnCABundleChange(func())
}

// Publisher writes the CA bundle into ConfigMapName in every namespace that
// has an EmbedTokenTemplate and deletes it when the namespace's last
// template goes. It never changes a ConfigMap of that name it did not
// create: it logs the conflict and records an Event on a template there.
type Publisher struct {
	client   client.Client
	reader   client.Reader
	bundle   BundleSource
	recorder events.EventRecorder
}

// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=embedtokens.io,resources=embedtokentemplates,verbs=get;list;watch
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// SetupPublisher registers the Publisher with mgr; it runs on the leader
// only. The manager's cache must include CacheByObject. recorder receives
// the conflict Events.
func SetupPublisher(mgr ctrl.Manager, bundle BundleSource, recorder events.EventRecorder) error {
	p := &Publisher{client: mgr.GetClient(), reader: mgr.GetAPIReader(), bundle: bundle, recorder: recorder}
	changed := make(chan event.GenericEvent, 1)
	bundle.OnCABundleChange(func() {
		select {
		case changed <- event.GenericEvent{Object: &corev1.ConfigMap{}}:
		default: // one pending refresh covers every change
		}
	})
	byNamespace := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: o.GetNamespace()}}}
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("cabundle").
		Watches(&v1alpha1.EmbedTokenTemplate{}, byNamespace).
		Watches(&corev1.ConfigMap{}, byNamespace).
		WatchesRawSource(source.Channel(changed, handler.EnqueueRequestsFromMapFunc(p.everyNamespace))).
		Complete(p)
}

// everyNamespace maps a CA bundle change to every namespace with a
// template.
func (p *Publisher) everyNamespace(ctx context.Context, _ client.Object) []reconcile.Request {
	var list v1alpha1.EmbedTokenTemplateList
	if err := p.client.List(ctx, &list); err != nil {
		log.FromContext(ctx).Error(err, "Unable to list EmbedTokenTemplates to republish the CA bundle")
		return nil
	}
	var reqs []reconcile.Request
	for _, t := range list.Items {
		r := reconcile.Request{NamespacedName: types.NamespacedName{Name: t.Namespace}}
		if !slices.Contains(reqs, r) {
			reqs = append(reqs, r)
		}
	}
	return reqs
}

// Reconcile publishes or removes the CA bundle in the namespace req.Name.
func (p *Publisher) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	ns := req.Name
	logger := log.FromContext(ctx).WithValues("configMap", klog.KRef(ns, ConfigMapName))
	var templates v1alpha1.EmbedTokenTemplateList
	if err := p.client.List(ctx, &templates, client.InNamespace(ns)); err != nil {
		return reconcile.Result{}, fmt.Errorf("list EmbedTokenTemplates: %w", err)
	}
	key := types.NamespacedName{Namespace: ns, Name: ConfigMapName}
	owned := &corev1.ConfigMap{}
	err := p.client.Get(ctx, key, owned) // the cache holds only the operator's
	if err != nil && !apierrors.IsNotFound(err) {
		return reconcile.Result{}, fmt.Errorf("read ConfigMap: %w", err)
	}
	found := err == nil
	var live []v1alpha1.EmbedTokenTemplate
	for _, t := range templates.Items {
		if t.DeletionTimestamp == nil {
			live = append(live, t)
		}
	}
	if len(live) == 0 {
		if !found {
			return reconcile.Result{}, nil
		}
		err := p.client.Delete(ctx, owned, client.Preconditions{UID: &owned.UID, ResourceVersion: &owned.ResourceVersion})
		if err != nil && !apierrors.IsNotFound(err) {
			return reconcile.Result{}, fmt.Errorf("delete ConfigMap: %w", err)
		}
		logger.Info("Removed the token endpoint's CA bundle: the namespace has no EmbedTokenTemplate left")
		return reconcile.Result{}, nil
	}
	bundle := p.bundle.CABundle()
	if bundle == nil {
		return reconcile.Result{}, nil // published when the bundle loads
	}
	if found {
		if bytes.Equal([]byte(owned.Data[ConfigMapKey]), bundle) && len(owned.Data) == 1 && len(owned.BinaryData) == 0 {
			return reconcile.Result{}, nil
		}
		owned.Data, owned.BinaryData = map[string]string{ConfigMapKey: string(bundle)}, nil
		if err := p.client.Update(ctx, owned); err != nil {
			return reconcile.Result{}, fmt.Errorf("update ConfigMap: %w", err)
		}
		logger.Info("Updated the token endpoint's CA bundle")
		return reconcile.Result{}, nil
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ConfigMapName,
			Labels: map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue}},
		Data: map[string]string{ConfigMapKey: string(bundle)},
	}
	err = p.client.Create(ctx, cm)
	if err == nil {
		logger.Info("Published the token endpoint's CA bundle")
		return reconcile.Result{}, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return reconcile.Result{}, fmt.Errorf("create ConfigMap: %w", err)
	}
	// Not in the cache: someone else's, or ours and the cache is behind.
	existing := &metav1.PartialObjectMetadata{}
	existing.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMap"))
	if err := p.reader.Get(ctx, key, existing); err != nil {
		return reconcile.Result{}, fmt.Errorf("read ConfigMap: %w", err)
	}
	if existing.Labels[v1alpha1.ManagedByLabel] == v1alpha1.ManagedByValue {
		return reconcile.Result{RequeueAfter: time.Second}, nil
	}
	logger.Info("Not publishing the token endpoint's CA bundle: a ConfigMap of that name exists and the operator did not create it")
	if p.recorder != nil {
		p.recorder.Eventf(&live[0], nil, corev1.EventTypeWarning, ReasonConfigMapConflict, "PublishCABundle",
			"ConfigMap %s exists and was not created by embed-token-operator; the token endpoint's CA bundle is not "+
				"published in this namespace until it is removed or renamed", ConfigMapName)
	}
	return reconcile.Result{RequeueAfter: conflictRecheck}, nil
}
