package controller

import (
	"context"
	"errors"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/issuance"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/refresh"
	"github.com/embedtokens/embed-token-operator/internal/template"
)

// providerChecker is what the template reconciler needs of provider
// resolution: whether a template of namespace, whose vendor block is
// vendor, may use the provider ref names. Errors are *provider.Error with
// a condition reason.
type providerChecker interface {
	ResolveAndCheck(ctx context.Context, namespace string, ref v1alpha1.ProviderRef, vendor string) error
}

// issuerChecker resolves a template's provider with the issuance path the
// requests and the token endpoint use, so a template is Ready exactly when a
// request of its namespace could use the provider. It evaluates no
// requestValidations: a template's vendor block holds placeholders; each
// filled call is checked by the endpoint.
type issuerChecker struct {
	issuer *issuance.Issuer
}

// ResolveAndCheck implements providerChecker.
func (c issuerChecker) ResolveAndCheck(ctx context.Context, namespace string, ref v1alpha1.ProviderRef, vendor string) error {
	p, err := c.issuer.Resolve(ctx, namespace, ref)
	if err != nil {
		return err
	}
	return c.issuer.CheckVendor(ctx, p, namespace, vendor, "template")
}

// EmbedTokenTemplateReconciler reports, in each EmbedTokenTemplate's status,
// whether the token endpoint can serve it: its provider resolves and admits
// its namespace and vendor, and every parameter's path and validation
// compile. It makes no vendor call and writes nothing but the status.
type EmbedTokenTemplateReconciler struct {
	client.Client
	// Providers resolves and checks a template's provider.
	Providers providerChecker
	// Templates holds compiled templates, shared with the token endpoint;
	// nil compiles them on every use.
	Templates *template.Cache
	// WatchNamespaces is set in namespaced mode: ClusterEmbedProviders are
	// not watched.
	WatchNamespaces []string
}

// +kubebuilder:rbac:groups=embedtokens.io,resources=embedtokentemplates,verbs=get;list;watch
// +kubebuilder:rbac:groups=embedtokens.io,resources=embedtokentemplates/status,verbs=update;patch

// Reconcile checks the template and patches its conditions when they change.
// A permanent problem is checked again when the template or its provider
// changes, and every refresh.MaxBackoff for what is not watched (a Namespace's
// labels); a transient one is retried with controller-runtime's backoff.
func (r *EmbedTokenTemplateReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ett := &v1alpha1.EmbedTokenTemplate{}
	if err := r.Get(ctx, req.NamespacedName, ett); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !ett.DeletionTimestamp.IsZero() {
		r.Templates.Forget(ett.UID)
		return ctrl.Result{}, nil
	}
	before := ett.DeepCopy()
	problem := r.check(ctx, ett)
	setTemplateConditions(ett, problem)
	if !equality.Semantic.DeepEqual(before.Status, ett.Status) {
		if err := r.Status().Patch(ctx, ett, client.MergeFrom(before)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	switch {
	case problem == nil:
		return ctrl.Result{}, nil
	case problem.Permanent:
		return ctrl.Result{RequeueAfter: refresh.MaxBackoff}, nil
	}
	return ctrl.Result{}, problem
}

// check returns why the endpoint cannot serve ett, or nil.
func (r *EmbedTokenTemplateReconciler) check(ctx context.Context, ett *v1alpha1.EmbedTokenTemplate) *provider.Error {
	if _, err := r.Templates.Get(ett); err != nil {
		var invalid *template.Error
		if errors.As(err, &invalid) {
			return &provider.Error{Reason: invalid.Reason, Message: invalid.Message, Permanent: true}
		}
		return &provider.Error{Reason: v1alpha1.ReasonInvalidParameters, Message: err.Error(), Permanent: true}
	}
	if err := r.Providers.ResolveAndCheck(ctx, ett.Namespace, ett.Spec.ProviderRef, ett.Spec.Vendor()); err != nil {
		return provider.Classify(err)
	}
	return nil
}

// setTemplateConditions sets Ready from problem, and Stalled (a permanent
// problem) or Reconciling (a transient one) as kstatus reads them.
func setTemplateConditions(ett *v1alpha1.EmbedTokenTemplate, problem *provider.Error) {
	st := &ett.Status
	ready := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonValid,
		Message: "The provider resolves and admits the template, and every parameter compiles", ObservedGeneration: ett.Generation}
	var reconciling, stalled string
	if problem != nil {
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, problem.Reason, problem.Message
		if problem.Permanent {
			stalled = problem.Reason
		} else {
			reconciling = problem.Reason
		}
	}
	setAbnormalCondition(&st.Conditions, ett.Generation, v1alpha1.ConditionReconciling, reconciling, ready.Message)
	setAbnormalCondition(&st.Conditions, ett.Generation, v1alpha1.ConditionStalled, stalled, ready.Message)
	meta.SetStatusCondition(&st.Conditions, ready)
	st.ObservedGeneration = ett.Generation
}

// SetupWithManager indexes templates by provider (providerRefIndex, as
// requests are) and watches templates and
// the providers they use.
func (r *EmbedTokenTemplateReconciler) SetupWithManager(mgr ctrl.Manager) error {
	err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.EmbedTokenTemplate{}, providerRefIndex,
		func(obj client.Object) []string {
			ett := obj.(*v1alpha1.EmbedTokenTemplate)
			return []string{providerRefKey(ett.Spec.ProviderRef.KindOrDefault(), ett.Spec.ProviderRef.Name)}
		})
	if err != nil {
		return err
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.EmbedTokenTemplate{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.EmbedProvider{}, handler.EnqueueRequestsFromMapFunc(r.templatesForProvider),
			builder.WithPredicates(providerChanged))
	if len(r.WatchNamespaces) == 0 {
		b = b.Watches(&v1alpha1.ClusterEmbedProvider{}, handler.EnqueueRequestsFromMapFunc(r.templatesForProvider),
			builder.WithPredicates(providerChanged))
	}
	return b.Named("embedtokentemplate").Complete(r)
}

// templatesForProvider maps a provider to the templates that reference it.
func (r *EmbedTokenTemplateReconciler) templatesForProvider(ctx context.Context, obj client.Object) []reconcile.Request {
	return referencing(ctx, r.Client, obj, &v1alpha1.EmbedTokenTemplateList{})
}
