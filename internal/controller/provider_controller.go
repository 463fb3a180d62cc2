package controller

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/credentials"
	"github.com/embedtokens/embed-token-operator/internal/issuance"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/requestrules"
)

// DefaultCredentialCheckInterval is how often a provider's credential
// Secrets are read again to notice a rotation. They are not watched: a watch
// would cache every Secret in the cluster, and a few reads per provider per
// minute cost far less.
const DefaultCredentialCheckInterval = time.Minute

// ProviderReconciler reports whether an EmbedProvider or ClusterEmbedProvider
// is usable, so platform teams see a bad configuration before any request
// fails on it.
type ProviderReconciler struct {
	client.Client
	APIReader client.Reader
	Providers map[string]provider.Provider
	// ClusterScoped selects ClusterEmbedProvider instead of EmbedProvider.
	ClusterScoped bool
	// RecheckInterval is how often credentials are checked again.
	RecheckInterval time.Duration
	// RequestRules holds each provider's compiled requestValidations, shared
	// with the request reconciler; nil compiles them on every use.
	RequestRules *requestrules.Cache
	// Memory, when set, is told when a provider is gone and each time one
	// is reconciled, so what the issuance path keeps for it goes.
	Memory ProviderMemory
}

// ProviderMemory is what the issuance path (issuance.Issuer) keeps in
// memory for each provider it has used: an HTTP client, a rate limiter, a
// parsed CA bundle, credentials. The provider reconciler drives its release: it sees a
// provider go, and sees every provider at least once per RecheckInterval,
// whether or not any request still uses it.
type ProviderMemory interface {
	// ForgetProvider drops everything kept for the provider key, which is
	// gone.
	ForgetProvider(key requestrules.Key)
	// ReleaseProvider drops what is kept for the provider key that would not
	// serve obj, the provider as it is now, or has not been used lately.
	ReleaseProvider(key requestrules.Key, obj client.Object)
}

// SetupProviderReconcilers registers the reconcilers of both provider kinds,
// or only of EmbedProvider when clusterProviders is false (namespaced mode,
// where the operator may not watch cluster-scoped objects).
func SetupProviderReconcilers(mgr ctrl.Manager, providers map[string]provider.Provider, recheck time.Duration, clusterProviders bool,
	requestRules *requestrules.Cache, memory ProviderMemory) error {
	kinds := []bool{false}
	if clusterProviders {
		kinds = append(kinds, true)
	}
	for _, cluster := range kinds {
		r := &ProviderReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Providers: providers,
			ClusterScoped: cluster, RecheckInterval: recheck, RequestRules: requestRules, Memory: memory}
		if err := r.SetupWithManager(mgr); err != nil {
			return err
		}
	}
	return nil
}

// +kubebuilder:rbac:groups=embedtokens.io,resources=embedproviders/status;clusterembedproviders/status,verbs=patch

// Reconcile validates the provider and patches its Ready condition.
func (r *ProviderReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj, spec, status := r.newObject()
	key := requestrules.Key{Kind: issuance.Key(obj).Kind, Namespace: req.Namespace, Name: req.Name}
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.RequestRules.Forget(key)
			if r.Memory != nil {
				r.Memory.ForgetProvider(key)
			}
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if r.Memory != nil {
		r.Memory.ReleaseProvider(key, obj)
	}
	before := status.DeepCopy()

	creds := credentials.New(r.APIReader, obj.GetNamespace(), r.ClusterScoped)
	ready := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonValid,
		Message: "The configuration is valid and its credentials resolve", ObservedGeneration: obj.GetGeneration()}
	// Validation reads the credentials; none of them may reach the condition.
	recorded := provider.RecordCredentials(creds)
	if err := recorded.Redact(r.validate(ctx, key, obj, spec, recorded)); err != nil {
		e := provider.Classify(err)
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, e.Reason, e.Message
	} else {
		ready.Message = withWarnings(ctx, ready.Message, r.Providers[spec.Vendor()], spec, recorded)
	}
	status.Vendor = spec.Vendor()
	status.ObservedGeneration = obj.GetGeneration()
	if version, err := creds.Version(ctx, credentialRefs(spec, r.Providers[spec.Vendor()])); err == nil {
		status.CredentialsVersion = version
	}
	meta.SetStatusCondition(&status.Conditions, ready)

	if !equality.Semantic.DeepEqual(before, status) {
		patchBase := obj.DeepCopyObject().(client.Object)
		r.setStatus(patchBase, *before)
		if err := r.Status().Patch(ctx, obj, client.MergeFrom(patchBase)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	return ctrl.Result{RequeueAfter: r.RecheckInterval}, nil
}

// validate checks what the schema cannot: the vendor is implemented, the
// requestValidations compile, every credential resolves, the CA bundle
// parses, and the vendor's own checks.
func (r *ProviderReconciler) validate(ctx context.Context, key requestrules.Key, obj client.Object, spec *v1alpha1.EmbedProviderSpec,
	creds provider.CredentialReader) error {
	impl, ok := r.Providers[spec.Vendor()]
	if !ok {
		return provider.Permanent(v1alpha1.ReasonVendorNotSupported, "this operator build has no %s provider", spec.Vendor())
	}
	if _, err := r.RequestRules.Get(key, obj.GetUID(), obj.GetGeneration(), spec.RequestValidations); err != nil {
		return provider.Permanent(v1alpha1.ReasonProviderInvalid, "invalid requestValidations: %v", err)
	}
	for _, ref := range credentialRefs(spec, impl) {
		value, err := creds.Read(ctx, ref)
		if err != nil {
			return err
		}
		if spec.CABundleSecretRef != nil && ref == *spec.CABundleSecretRef {
			if _, err := provider.CertPool(value); err != nil {
				return err
			}
		}
	}
	if v, ok := impl.(provider.ConfigValidator); ok {
		return v.Validate(ctx, spec, creds)
	}
	return nil
}

func (r *ProviderReconciler) newObject() (client.Object, *v1alpha1.EmbedProviderSpec, *v1alpha1.EmbedProviderStatus) {
	if r.ClusterScoped {
		cp := &v1alpha1.ClusterEmbedProvider{}
		return cp, &cp.Spec.EmbedProviderSpec, &cp.Status
	}
	p := &v1alpha1.EmbedProvider{}
	return p, &p.Spec, &p.Status
}

func (r *ProviderReconciler) setStatus(obj client.Object, status v1alpha1.EmbedProviderStatus) {
	switch o := obj.(type) {
	case *v1alpha1.ClusterEmbedProvider:
		o.Status = status
	case *v1alpha1.EmbedProvider:
		o.Status = status
	}
}

// SetupWithManager watches the provider kind this reconciler serves.
func (r *ProviderReconciler) SetupWithManager(mgr ctrl.Manager) error {
	obj, name := client.Object(&v1alpha1.EmbedProvider{}), "embedprovider"
	if r.ClusterScoped {
		obj, name = &v1alpha1.ClusterEmbedProvider{}, "clusterembedprovider"
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(obj, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named(name).
		Complete(r)
}

// credentialRefs lists every Secret key a provider reads: the vendor's, as
// its implementation says (none when this build has no such vendor), and
// the CA bundle.
func credentialRefs(spec *v1alpha1.EmbedProviderSpec, impl provider.Provider) []v1alpha1.SecretKeySelector {
	var refs []v1alpha1.SecretKeySelector
	if impl != nil {
		refs = impl.SecretRefs(spec)
	}
	if spec.CABundleSecretRef != nil {
		refs = append(refs, *spec.CABundleSecretRef)
	}
	return refs
}
