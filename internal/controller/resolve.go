package controller

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/egress"
	"github.com/embedtokens/embed-token-operator/internal/requestpolicy"
)

// resolvedProvider is a provider object that this request may use, with the
// implementation for its vendor.
type resolvedProvider struct {
	kind              string // EmbedProvider or ClusterEmbedProvider
	namespace         string // "" for a ClusterEmbedProvider
	name              string
	uid               types.UID
	generation        int64
	spec              *v1alpha1.EmbedProviderSpec
	vendor            string
	impl              provider.Provider
	creds             credentialReader
	namespaceSelector *metav1.LabelSelector
	// scope decides which addresses the provider's vendor calls may reach.
	scope egress.Scope
	// credentialsVersion is the provider's status.credentialsVersion, or ""
	// when the provider does not re-issue tokens on credential rotation.
	credentialsVersion string
}

// getProvider reads the referenced provider from the cache. It runs on every
// reconcile, so it makes no API calls.
func (r *EmbedTokenRequestReconciler) getProvider(ctx context.Context, etr *v1alpha1.EmbedTokenRequest) (*resolvedProvider, error) {
	ref := etr.Spec.ProviderRef
	if etr.ProviderKind() == "ClusterEmbedProvider" {
		if len(r.WatchNamespaces) > 0 {
			return nil, provider.Permanent(v1alpha1.ReasonProviderNotFound,
				"ClusterEmbedProvider %s cannot be used: the operator runs in namespaced mode (--watch-namespaces=%s) "+
					"and does not read cluster-scoped providers; reference an EmbedProvider in namespace %s",
				ref.Name, strings.Join(r.WatchNamespaces, ","), etr.Namespace)
		}
		cp := &v1alpha1.ClusterEmbedProvider{}
		if err := r.Get(ctx, client.ObjectKey{Name: ref.Name}, cp); err != nil {
			return nil, providerGetError(err, "ClusterEmbedProvider "+ref.Name)
		}
		return newResolvedProvider(cp, &cp.Spec.EmbedProviderSpec, &cp.Status,
			r.credentialReader(cp, &cp.Status, credentialReader{clusterScoped: true}), cp.Spec.NamespaceSelector), nil
	}
	p := &v1alpha1.EmbedProvider{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: etr.Namespace, Name: ref.Name}, p); err != nil {
		return nil, providerGetError(err, "EmbedProvider "+etr.Namespace+"/"+ref.Name)
	}
	return newResolvedProvider(p, &p.Spec, &p.Status, r.credentialReader(p, &p.Status, credentialReader{namespace: p.Namespace}), nil), nil
}

// credentialReader completes c for the provider obj: uncached reads, served
// from the credential cache while the provider's generation and
// credentialsVersion stay the same.
func (r *EmbedTokenRequestReconciler) credentialReader(obj client.Object, status *v1alpha1.EmbedProviderStatus, c credentialReader) credentialReader {
	c.reader, c.cache, c.uid = r.APIReader, r.credCache, obj.GetUID()
	c.stamp = credentialStamp(obj.GetGeneration(), status.CredentialsVersion)
	return c
}

func newResolvedProvider(obj client.Object, spec *v1alpha1.EmbedProviderSpec, status *v1alpha1.EmbedProviderStatus,
	creds credentialReader, selector *metav1.LabelSelector) *resolvedProvider {
	p := &resolvedProvider{kind: providerKind(obj), namespace: obj.GetNamespace(), name: obj.GetName(), uid: obj.GetUID(),
		generation: obj.GetGeneration(), spec: spec, vendor: spec.Vendor(), creds: creds, namespaceSelector: selector}
	if creds.clusterScoped {
		p.scope = egress.Cluster
	}
	if spec.ReissueOnCredentialChange == nil || *spec.ReissueOnCredentialChange {
		p.credentialsVersion = status.CredentialsVersion
	}
	return p
}

// providerKind is the kind of a provider object.
func providerKind(obj client.Object) string {
	if _, ok := obj.(*v1alpha1.ClusterEmbedProvider); ok {
		return "ClusterEmbedProvider"
	}
	return "EmbedProvider"
}

// policyKey names the provider in the compiled-rules cache.
func (p *resolvedProvider) policyKey() requestpolicy.Key {
	return requestpolicy.Key{Kind: p.kind, Namespace: p.namespace, Name: p.name}
}

// checkProvider checks that the request may use the provider: the namespace
// is admitted, the vendors match, this build implements the vendor, and the
// provider's requestValidations admit the request. It makes no vendor call;
// it reads the Namespace (uncached) only when the namespaceSelector or a
// rule needs it.
func (r *EmbedTokenRequestReconciler) checkProvider(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, p *resolvedProvider) error {
	policy, ns, err := r.admitProvider(ctx, etr.Namespace, etr.Spec.Vendor(), "request", p)
	if err != nil {
		return err
	}
	return r.checkRequestPolicy(ctx, etr, p, policy, ns)
}

// admitProvider checks that an object of namespace whose vendor block is
// vendor (what, for messages: "request", "template") may use the provider:
// the namespace is admitted, the vendors match, this build implements the
// vendor, and the provider's requestValidations compile. It sets p.impl
// and returns the compiled rules and the Namespace, when it was read.
func (r *EmbedTokenRequestReconciler) admitProvider(ctx context.Context, namespace, vendor, what string,
	p *resolvedProvider) (*requestpolicy.Policy, *corev1.Namespace, error) {
	policy, policyErr := r.Policies.Get(p.policyKey(), p.uid, p.generation, p.spec.RequestValidations)
	var ns *corev1.Namespace
	if p.hasNamespaceSelector() || policy.UsesNamespace() && len(r.WatchNamespaces) == 0 {
		var err error
		if ns, err = r.readNamespace(ctx, namespace); err != nil {
			return nil, nil, err
		}
	}
	if p.hasNamespaceSelector() {
		if err := checkNamespaceAllowed(p, ns); err != nil {
			return nil, nil, err
		}
	}
	if vendor != p.vendor {
		return nil, nil, provider.Permanent(v1alpha1.ReasonVendorMismatch,
			"the %s sets spec.%s but provider %s is a %s provider", what, vendor, p.name, p.vendor)
	}
	impl, ok := r.Providers[p.vendor]
	if !ok {
		return nil, nil, provider.Permanent(v1alpha1.ReasonVendorNotSupported, "this operator build has no %s provider", p.vendor)
	}
	if policyErr != nil {
		return nil, nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "%s %s has invalid requestValidations: %v", p.kind, p.name, policyErr)
	}
	p.impl = impl
	return policy, ns, nil
}

// checkRequestPolicy evaluates the provider's requestValidations. A denial
// is permanent: the request is re-evaluated when it or the provider changes,
// and at the permanent-error backoff (a Namespace label change is not
// watched).
func (r *EmbedTokenRequestReconciler) checkRequestPolicy(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, p *resolvedProvider,
	policy *requestpolicy.Policy, ns *corev1.Namespace) error {
	if policy.Empty() {
		return nil
	}
	if policy.UsesNamespace() && ns == nil {
		return provider.Permanent(v1alpha1.ReasonRequestDenied,
			"%s %s has requestValidations that read namespaceObject, which the operator cannot read in namespaced mode (--watch-namespaces)",
			p.kind, p.name)
	}
	if d := policy.Evaluate(ctx, etr, ns); d != nil {
		return provider.Permanent(v1alpha1.ReasonRequestDenied, "%s %s denies the request: %s", p.kind, p.name, d)
	}
	return nil
}

// describe names the provider for status messages, e.g.
// "ClusterEmbedProvider shared-qrvey".
func (p *resolvedProvider) describe() string {
	return p.kind + " " + p.name
}

func providerGetError(err error, what string) error {
	if apierrors.IsNotFound(err) {
		return provider.Permanent(v1alpha1.ReasonProviderNotFound, "%s not found", what)
	}
	return provider.Transient(v1alpha1.ReasonProviderNotFound, "reading %s: %v", what, apierrors.ReasonForError(err))
}

// hasNamespaceSelector reports whether a ClusterEmbedProvider restricts
// the namespaces it serves; an empty selector admits all.
func (p *resolvedProvider) hasNamespaceSelector() bool {
	sel := p.namespaceSelector
	return sel != nil && (len(sel.MatchLabels) > 0 || len(sel.MatchExpressions) > 0)
}

// readNamespace reads the request's Namespace uncached: the operator does
// not watch Namespaces.
func (r *EmbedTokenRequestReconciler) readNamespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	ns := &corev1.Namespace{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Name: name}, ns); err != nil {
		return nil, provider.Transient(v1alpha1.ReasonNamespaceNotAllowed, "reading Namespace %s: %v", name, apierrors.ReasonForError(err))
	}
	return ns, nil
}

// checkNamespaceAllowed applies a ClusterEmbedProvider's namespaceSelector.
func checkNamespaceAllowed(p *resolvedProvider, ns *corev1.Namespace) error {
	selector, err := metav1.LabelSelectorAsSelector(p.namespaceSelector)
	if err != nil {
		return provider.Permanent(v1alpha1.ReasonProviderInvalid, "ClusterEmbedProvider %s has an invalid namespaceSelector: %v", p.name, err)
	}
	if !selector.Matches(labels.Set(ns.Labels)) {
		return provider.Permanent(v1alpha1.ReasonNamespaceNotAllowed,
			"ClusterEmbedProvider %s does not admit namespace %s (namespaceSelector %s)", p.name, ns.Name, selector)
	}
	return nil
}
