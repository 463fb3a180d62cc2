package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
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
			credentialReader{reader: r.APIReader, clusterScoped: true}, cp.Spec.NamespaceSelector), nil
	}
	p := &v1alpha1.EmbedProvider{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: etr.Namespace, Name: ref.Name}, p); err != nil {
		return nil, providerGetError(err, "EmbedProvider "+etr.Namespace+"/"+ref.Name)
	}
	return newResolvedProvider(p, &p.Spec, &p.Status, credentialReader{reader: r.APIReader, namespace: p.Namespace}, nil), nil
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
	policy, policyErr := r.Policies.Get(p.policyKey(), p.uid, p.generation, p.spec.RequestValidations)
	var ns *corev1.Namespace
	if p.hasNamespaceSelector() || policy.UsesNamespace() && len(r.WatchNamespaces) == 0 {
		var err error
		if ns, err = r.readNamespace(ctx, etr.Namespace); err != nil {
			return err
		}
	}
	if p.hasNamespaceSelector() {
		if err := checkNamespaceAllowed(p, ns); err != nil {
			return err
		}
	}
	if want := etr.Spec.Vendor(); want != p.vendor {
		return provider.Permanent(v1alpha1.ReasonVendorMismatch,
			"the request sets spec.%s but provider %s is a %s provider", want, p.name, p.vendor)
	}
	impl, ok := r.Providers[p.vendor]
	if !ok {
		return provider.Permanent(v1alpha1.ReasonVendorNotSupported, "this operator build has no %s provider", p.vendor)
	}
	if policyErr != nil {
		return provider.Permanent(v1alpha1.ReasonProviderInvalid, "%s %s has invalid requestValidations: %v", p.kind, p.name, policyErr)
	}
	if err := r.checkRequestPolicy(ctx, etr, p, policy, ns); err != nil {
		return err
	}
	p.impl = impl
	return nil
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

// ensureToken asks the vendor for a token within the call's timeout; admit
// has already let the call through the provider's rate limit and call cap.
// Its errors hold no credential the vendor call read.
func (r *EmbedTokenRequestReconciler) ensureToken(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, p *resolvedProvider, o *outcome) (provider.Token, error) {
	httpClient, err := r.httpClient(ctx, p)
	if err != nil {
		return provider.Token{}, err
	}
	callCtx, cancel := context.WithTimeout(ctx, httpClient.Timeout+time.Second)
	defer cancel()
	start := time.Now()
	creds := provider.RecordCredentials(p.creds)
	tok, err := p.impl.Issue(callCtx, provider.Request{
		Config:      p.spec,
		Params:      &etr.Spec.VendorParams,
		Lifetime:    p.lifetime(etr),
		Credentials: creds,
		HTTPClient:  httpClient,
		Now:         r.Clock.Now(),
	})
	r.Metrics.ObserveIssue(p.vendor, time.Since(start), err)
	if err != nil {
		// The message goes to the conditions, an Event and the log: every
		// credential the call read is removed from it, in any encoding.
		return provider.Token{}, creds.Redact(err)
	}
	if !tok.ExpiresAt.After(o.now) {
		return provider.Token{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "the vendor issued a token that expires at %s, which is not in the future", tok.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return r.capExpiry(ctx, etr, tok, p.lifetime(etr), o.now), nil
}

// credentialReader reads credential Secrets uncached, only from namespaces
// the provider may read: its own for an EmbedProvider, the one named in each
// reference for a ClusterEmbedProvider.
type credentialReader struct {
	reader        client.Reader
	namespace     string
	clusterScoped bool
}

// Read implements provider.CredentialReader.
func (c credentialReader) Read(ctx context.Context, ref v1alpha1.SecretKeySelector) ([]byte, error) {
	ns, err := c.namespaceFor(ref)
	if err != nil {
		return nil, err
	}
	secret := &corev1.Secret{}
	if err := c.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, provider.Transient(v1alpha1.ReasonCredentialsNotFound, "credential Secret %s/%s not found", ns, ref.Name)
		}
		return nil, provider.Transient(v1alpha1.ReasonCredentialsNotFound, "reading credential Secret %s/%s: %v", ns, ref.Name, apierrors.ReasonForError(err))
	}
	v, ok := secret.Data[ref.Key]
	if !ok || len(v) == 0 {
		return nil, provider.Transient(v1alpha1.ReasonCredentialsNotFound, "credential Secret %s/%s has no key %q", ns, ref.Name, ref.Key)
	}
	return v, nil
}

// version fingerprints the resource versions of the Secrets behind refs,
// reading only their metadata, so a rotation is noticed without exposing or
// hashing the credentials themselves.
func (c credentialReader) version(ctx context.Context, refs []v1alpha1.SecretKeySelector) (string, error) {
	h := sha256.New()
	for _, ref := range refs {
		ns, err := c.namespaceFor(ref)
		if err != nil {
			return "", err
		}
		meta := &metav1.PartialObjectMetadata{}
		meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
		if err := c.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, meta); err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s/%s/%s@%s;", ns, ref.Name, meta.UID, meta.ResourceVersion)
	}
	return hex.EncodeToString(h.Sum(nil)[:8]), nil
}

func (c credentialReader) namespaceFor(ref v1alpha1.SecretKeySelector) (string, error) {
	switch {
	case c.clusterScoped && ref.Namespace == "":
		return "", provider.Permanent(v1alpha1.ReasonProviderInvalid, "secret reference %s of a ClusterEmbedProvider must set namespace", ref.Name)
	case c.clusterScoped:
		return ref.Namespace, nil
	case ref.Namespace != "" && ref.Namespace != c.namespace:
		return "", provider.Permanent(v1alpha1.ReasonProviderInvalid,
			"an EmbedProvider may only read Secrets in its own namespace %s, not %s", c.namespace, ref.Namespace)
	}
	return c.namespace, nil
}

// httpClients keeps one HTTP client and one rate limiter per provider, so
// connections are reused across requests and the limit is shared.
type httpClients struct {
	// maxTimeout caps every provider's spec.timeout (--max-vendor-timeout).
	maxTimeout time.Duration

	mu       sync.Mutex
	clients  map[types.UID]cachedClient
	limiters map[types.UID]cachedLimiter
}

type cachedClient struct {
	key    string
	client *http.Client
}

type cachedLimiter struct {
	limit   v1alpha1.RateLimit
	limiter *rate.Limiter
}

// httpClient returns the provider's HTTP client, whose connections the
// egress guard checks for the provider's kind. Every vendor call uses it.
func (r *EmbedTokenRequestReconciler) httpClient(ctx context.Context, p *resolvedProvider) (*http.Client, error) {
	return r.clients.get(ctx, p, egress.Guard{Policy: r.Egress, Scope: p.scope, Resolver: r.VendorResolver})
}

// get returns the provider's client, building a new one when anything it
// was built from changed. The guard's scope is part of the key: a UID is
// never both kinds, but the key should not depend on that.
func (h *httpClients) get(ctx context.Context, p *resolvedProvider, guard egress.Guard) (*http.Client, error) {
	var caPEM []byte
	if ref := p.spec.CABundleSecretRef; ref != nil {
		var err error
		if caPEM, err = p.creds.Read(ctx, *ref); err != nil {
			return nil, err
		}
	}
	timeout := vendorTimeout(p.spec.Timeout, h.maxTimeout)
	key := fmt.Sprintf("%s/%d/%s/%x", guard.Scope, p.generation, timeout, sha256.Sum256(caPEM))

	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.clients[p.uid]; ok && c.key == key {
		return c.client, nil
	}
	c, err := provider.NewHTTPClient(timeout, caPEM, guard)
	if err != nil {
		return nil, err
	}
	if h.clients == nil {
		h.clients = map[types.UID]cachedClient{}
	}
	h.clients[p.uid] = cachedClient{key: key, client: c}
	return c, nil
}

func (h *httpClients) limiter(p *resolvedProvider) *rate.Limiter {
	limit := v1alpha1.RateLimit{}
	if p.spec.RateLimit != nil {
		limit = *p.spec.RateLimit
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if l, ok := h.limiters[p.uid]; ok && l.limit == limit {
		return l.limiter
	}
	l := rate.NewLimiter(rate.Inf, 0)
	if limit.RequestsPerSecond > 0 {
		l = rate.NewLimiter(rate.Limit(limit.RequestsPerSecond), int(max(limit.Burst, 1)))
	}
	if h.limiters == nil {
		h.limiters = map[types.UID]cachedLimiter{}
	}
	h.limiters[p.uid] = cachedLimiter{limit: limit, limiter: l}
	return l
}
