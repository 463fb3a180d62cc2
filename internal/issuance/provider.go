package issuance

import (
	"context"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/credentials"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/egress"
	"github.com/embedtokens/embed-token-operator/internal/requestrules"
)

// KindEmbedProvider and KindClusterEmbedProvider are the kinds a
// ProviderRef names; an empty kind is an EmbedProvider.
const (
	KindEmbedProvider        = "EmbedProvider"
	KindClusterEmbedProvider = "ClusterEmbedProvider"
)

// Provider is a provider object as read from the cache by Resolve, with
// what its vendor calls need: its spec, its credentials (read through the
// Issuer's credential cache) and, once Check has passed, its vendor's
// implementation. It is read-only and belongs to one call or reconcile.
type Provider struct {
	// Kind is EmbedProvider or ClusterEmbedProvider.
	Kind string
	// Namespace is "" for a ClusterEmbedProvider.
	Namespace  string
	Name       string
	UID        types.UID
	Generation int64
	// Spec is the provider's spec, shared with the cache: never modified.
	Spec *v1alpha1.EmbedProviderSpec

	vendor            string
	impl              provider.Provider
	creds             credentials.Reader
	namespaceSelector *metav1.LabelSelector
	// scope decides which addresses the provider's vendor calls may reach.
	scope egress.Scope
	// credentialsVersion is the provider's status.credentialsVersion.
	credentialsVersion string
}

// Resolve reads the provider that an object in namespace references, from
// the cache: it runs for every reconcile and endpoint call, so it makes no
// API call. A missing provider is a permanent ProviderNotFound; in
// namespaced mode (WatchNamespaces) a ClusterEmbedProvider cannot be read
// and is reported as not found with the reason.
func (i *Issuer) Resolve(ctx context.Context, namespace string, ref v1alpha1.ProviderRef) (*Provider, error) {
	if ref.Kind == KindClusterEmbedProvider {
		if len(i.watchNamespaces) > 0 {
			return nil, provider.Permanent(v1alpha1.ReasonProviderNotFound,
				"ClusterEmbedProvider %s cannot be used: the operator runs in namespaced mode (--watch-namespaces=%s) "+
					"and does not read cluster-scoped providers; reference an EmbedProvider in namespace %s",
				ref.Name, strings.Join(i.watchNamespaces, ","), namespace)
		}
		cp := &v1alpha1.ClusterEmbedProvider{}
		if err := i.client.Get(ctx, client.ObjectKey{Name: ref.Name}, cp); err != nil {
			return nil, providerGetError(err, "ClusterEmbedProvider "+ref.Name)
		}
		return i.newProvider(cp, &cp.Spec.EmbedProviderSpec, &cp.Status, cp.Spec.NamespaceSelector), nil
	}
	p := &v1alpha1.EmbedProvider{}
	if err := i.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Name}, p); err != nil {
		return nil, providerGetError(err, "EmbedProvider "+namespace+"/"+ref.Name)
	}
	return i.newProvider(p, &p.Spec, &p.Status, nil), nil
}

// newProvider builds the handle of obj. Its credentials are read uncached,
// served from the credential cache while the provider's generation and
// credentialsVersion stay the same.
func (i *Issuer) newProvider(obj client.Object, spec *v1alpha1.EmbedProviderSpec, status *v1alpha1.EmbedProviderStatus,
	selector *metav1.LabelSelector) *Provider {
	creds := credentials.ForProvider(i.apiReader, obj, status.CredentialsVersion, i.credCache, i.saTokens)
	return newProvider(obj, spec, status, creds, selector)
}

func newProvider(obj client.Object, spec *v1alpha1.EmbedProviderSpec, status *v1alpha1.EmbedProviderStatus,
	creds credentials.Reader, selector *metav1.LabelSelector) *Provider {
	p := &Provider{Kind: kindOf(obj), Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: obj.GetUID(),
		Generation: obj.GetGeneration(), Spec: spec, vendor: spec.Vendor(), creds: creds, namespaceSelector: selector,
		credentialsVersion: status.CredentialsVersion}
	if p.Shared() {
		p.scope = egress.Cluster
	}
	return p
}

// kindOf is the kind of a provider object.
func kindOf(obj client.Object) string {
	if _, ok := obj.(*v1alpha1.ClusterEmbedProvider); ok {
		return KindClusterEmbedProvider
	}
	return KindEmbedProvider
}

// Key names the provider object in the per-provider caches (compiled
// rules, HTTP clients, limiters), as the provider reconciler names it.
func Key(obj client.Object) requestrules.Key {
	return requestrules.Key{Kind: kindOf(obj), Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

// Key names the provider in the per-provider caches.
func (p *Provider) Key() requestrules.Key {
	return requestrules.Key{Kind: p.Kind, Namespace: p.Namespace, Name: p.Name}
}

// Vendor is the vendor the provider's spec configures (v1alpha1.Vendor*).
func (p *Provider) Vendor() string { return p.vendor }

// Shared reports whether the provider is a ClusterEmbedProvider, shared by
// the namespaces it admits: its calls then also count against a
// per-namespace share and take turns by namespace under its rate limit.
func (p *Provider) Shared() bool { return p.Kind == KindClusterEmbedProvider }

// SingleUse reports whether the vendor's tokens for this provider can be
// redeemed once (provider.SingleUser): known once Check or CheckVendor has
// passed.
func (p *Provider) SingleUse() bool {
	return p.impl != nil && provider.IsSingleUse(p.impl, p.Spec)
}

// CredentialsVersion is the provider's status.credentialsVersion, which
// changes when a credential Secret is rotated: a cache of tokens keys on it.
func (p *Provider) CredentialsVersion() string { return p.credentialsVersion }

// RotationVersion is the credentialsVersion a stored token records so that
// a rotation re-issues it: CredentialsVersion, or "" when the provider's
// reissueOnCredentialChange is false.
func (p *Provider) RotationVersion() string {
	if p == nil || p.Spec.ReissueOnCredentialChange != nil && !*p.Spec.ReissueOnCredentialChange {
		return ""
	}
	return p.credentialsVersion
}

// CanRevoke reports whether the provider's vendor revokes tokens; it is
// false until Check has passed.
func (p *Provider) CanRevoke() bool {
	_, ok := p.impl.(provider.Revoker)
	return ok
}

// Describe names the provider for status messages, e.g.
// "ClusterEmbedProvider shared-qrvey".
func (p *Provider) Describe() string {
	return p.Kind + " " + p.Name
}

// Lifetime is the lifetime to ask the vendor for when requested is asked:
// no more than the provider's maxLifetime. Without a provider it is
// requested: nothing can be issued then anyway.
func (p *Provider) Lifetime(requested time.Duration) time.Duration {
	if p == nil {
		return requested
	}
	return GrantedLifetime(requested, p.Spec.LifetimeCap())
}

// GrantedLifetime is the lifetime asked of the vendor: the request's, but
// no more than the provider's maxLifetime (limit), so a namespace cannot hold
// a token minted with a shared credential for longer than the platform
// allows. It is part of a stored token's input hash: lowering maxLifetime
// below a request's lifetime re-issues that request's token, and nothing
// else.
func GrantedLifetime(requested, limit time.Duration) time.Duration {
	if limit > 0 && requested > limit {
		return limit
	}
	return requested
}

// Check checks that obj may use p: obj's namespace is admitted by the
// namespaceSelector, the vendors match, this build implements the vendor,
// and the provider's requestValidations admit obj (for the token endpoint,
// the request filled in from a template). It makes no vendor call; it reads
// the Namespace (uncached) only when the namespaceSelector or a rule needs
// it. Its errors are *provider.Error with the reasons the conditions use:
// NamespaceNotAllowed, VendorMismatch, VendorNotSupported, ProviderInvalid,
// RequestDenied.
func (i *Issuer) Check(ctx context.Context, p *Provider, obj *v1alpha1.EmbedTokenRequest) error {
	rules, ns, err := i.admit(ctx, p, obj.Namespace, obj.Spec.Vendor(), "request")
	if err != nil {
		return err
	}
	return checkRequestRules(ctx, obj, p, rules, ns)
}

// CheckVendor is Check without the requestValidations, for an object that
// is not yet a request: a template, whose vendor block holds placeholders
// and whose filled calls Check judges. It checks that an object of
// namespace whose vendor block is vendor (what names it in messages, e.g.
// "template") may use p, and that p's requestValidations compile.
func (i *Issuer) CheckVendor(ctx context.Context, p *Provider, namespace, vendor, what string) error {
	_, _, err := i.admit(ctx, p, namespace, vendor, what)
	return err
}

// admit checks that an object of namespace whose vendor block is vendor
// (what, for messages: "request", "template") may use the provider: the
// namespace is admitted, the vendors match, this build implements the
// vendor, and the provider's requestValidations compile. It sets p's
// implementation and returns the compiled rules and the Namespace, when it
// was read.
func (i *Issuer) admit(ctx context.Context, p *Provider, namespace, vendor, what string) (*requestrules.RuleSet, *corev1.Namespace, error) {
	rules, rulesErr := i.requestRules.Get(p.Key(), p.UID, p.Generation, p.Spec.RequestValidations)
	var ns *corev1.Namespace
	if p.hasNamespaceSelector() || rules.UsesNamespace() && len(i.watchNamespaces) == 0 {
		var err error
		if ns, err = i.readNamespace(ctx, namespace); err != nil {
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
			"the %s sets spec.%s but provider %s is a %s provider", what, vendor, p.Name, p.vendor)
	}
	impl, ok := i.providers[p.vendor]
	if !ok {
		return nil, nil, provider.Permanent(v1alpha1.ReasonVendorNotSupported, "this operator build has no %s provider", p.vendor)
	}
	if rulesErr != nil {
		return nil, nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "%s %s has invalid requestValidations: %v", p.Kind, p.Name, rulesErr)
	}
	p.impl = impl
	return rules, ns, nil
}

// checkRequestRules evaluates the provider's requestValidations. A denial
// is permanent: the request is re-evaluated when it or the provider changes,
// and at the permanent-error backoff (a Namespace label change is not
// watched).
func checkRequestRules(ctx context.Context, obj *v1alpha1.EmbedTokenRequest, p *Provider,
	rules *requestrules.RuleSet, ns *corev1.Namespace) error {
	if rules.Empty() {
		return nil
	}
	if rules.UsesNamespace() && ns == nil {
		return provider.Permanent(v1alpha1.ReasonRequestDenied,
			"%s %s has requestValidations that read namespaceObject, which the operator cannot read in namespaced mode (--watch-namespaces)",
			p.Kind, p.Name)
	}
	if d := rules.Evaluate(ctx, obj, ns); d != nil {
		return provider.Permanent(v1alpha1.ReasonRequestDenied, "%s %s denies the request: %s", p.Kind, p.Name, d)
	}
	return nil
}

func providerGetError(err error, what string) error {
	if apierrors.IsNotFound(err) {
		return provider.Permanent(v1alpha1.ReasonProviderNotFound, "%s not found", what)
	}
	return provider.Transient(v1alpha1.ReasonProviderNotFound, "reading %s: %v", what, apierrors.ReasonForError(err))
}

// hasNamespaceSelector reports whether a ClusterEmbedProvider restricts
// the namespaces it serves; an empty selector admits all.
func (p *Provider) hasNamespaceSelector() bool {
	sel := p.namespaceSelector
	return sel != nil && (len(sel.MatchLabels) > 0 || len(sel.MatchExpressions) > 0)
}

// readNamespace reads a Namespace uncached: the operator does not watch
// Namespaces.
func (i *Issuer) readNamespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	ns := &corev1.Namespace{}
	if err := i.apiReader.Get(ctx, client.ObjectKey{Name: name}, ns); err != nil {
		return nil, provider.Transient(v1alpha1.ReasonNamespaceNotAllowed, "reading Namespace %s: %v", name, apierrors.ReasonForError(err))
	}
	return ns, nil
}

// checkNamespaceAllowed applies a ClusterEmbedProvider's namespaceSelector.
func checkNamespaceAllowed(p *Provider, ns *corev1.Namespace) error {
	selector, err := metav1.LabelSelectorAsSelector(p.namespaceSelector)
	if err != nil {
		return provider.Permanent(v1alpha1.ReasonProviderInvalid, "ClusterEmbedProvider %s has an invalid namespaceSelector: %v", p.Name, err)
	}
	if !selector.Matches(labels.Set(ns.Labels)) {
		return provider.Permanent(v1alpha1.ReasonNamespaceNotAllowed,
			"ClusterEmbedProvider %s does not admit namespace %s (namespaceSelector %s)", p.Name, ns.Name, selector)
	}
	return nil
}
