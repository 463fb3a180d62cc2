package controller

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
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
)

// resolvedProvider is a provider object that this request may use, with the
// implementation for its vendor.
type resolvedProvider struct {
	uid        types.UID
	generation int64
	spec       *v1alpha1.EmbedProviderSpec
	vendor     string
	impl       provider.Provider
	creds      credentialReader
}

// resolveProvider finds the referenced provider and checks that the request
// may use it: the namespace is admitted, the vendors match, and this build
// implements the vendor.
func (r *EmbedTokenRequestReconciler) resolveProvider(ctx context.Context, etr *v1alpha1.EmbedTokenRequest) (*resolvedProvider, error) {
	ref := etr.Spec.ProviderRef
	var res resolvedProvider
	switch etr.ProviderKind() {
	case "ClusterEmbedProvider":
		cp := &v1alpha1.ClusterEmbedProvider{}
		if err := r.Get(ctx, client.ObjectKey{Name: ref.Name}, cp); err != nil {
			return nil, providerGetError(err, "ClusterEmbedProvider "+ref.Name)
		}
		if err := r.checkNamespaceAllowed(ctx, cp, etr.Namespace); err != nil {
			return nil, err
		}
		res = resolvedProvider{uid: cp.UID, generation: cp.Generation, spec: &cp.Spec.EmbedProviderSpec,
			creds: credentialReader{reader: r.APIReader, clusterScoped: true}}
	default:
		p := &v1alpha1.EmbedProvider{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: etr.Namespace, Name: ref.Name}, p); err != nil {
			return nil, providerGetError(err, "EmbedProvider "+etr.Namespace+"/"+ref.Name)
		}
		res = resolvedProvider{uid: p.UID, generation: p.Generation, spec: &p.Spec,
			creds: credentialReader{reader: r.APIReader, namespace: p.Namespace}}
	}

	res.vendor = res.spec.Vendor()
	if want := etr.Spec.Vendor(); want != res.vendor {
		return nil, provider.Permanent(v1alpha1.ReasonVendorMismatch,
			"the request sets spec.%s but provider %s is a %s provider", want, ref.Name, res.vendor)
	}
	impl, ok := r.Providers[res.vendor]
	if !ok {
		return nil, provider.Permanent(v1alpha1.ReasonVendorNotSupported, "this operator build has no %s provider", res.vendor)
	}
	res.impl = impl
	return &res, nil
}

func providerGetError(err error, what string) error {
	if apierrors.IsNotFound(err) {
		return provider.Permanent(v1alpha1.ReasonProviderNotFound, "%s not found", what)
	}
	return provider.Transient(v1alpha1.ReasonProviderNotFound, "reading %s: %v", what, apierrors.ReasonForError(err))
}

// checkNamespaceAllowed applies a ClusterEmbedProvider's namespaceSelector.
func (r *EmbedTokenRequestReconciler) checkNamespaceAllowed(ctx context.Context, cp *v1alpha1.ClusterEmbedProvider, namespace string) error {
	sel := cp.Spec.NamespaceSelector
	if sel == nil || len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
		return nil
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return provider.Permanent(v1alpha1.ReasonProviderInvalid, "ClusterEmbedProvider %s has an invalid namespaceSelector: %v", cp.Name, err)
	}
	ns := &corev1.Namespace{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		return provider.Transient(v1alpha1.ReasonNamespaceNotAllowed, "reading Namespace %s: %v", namespace, apierrors.ReasonForError(err))
	}
	if !selector.Matches(labels.Set(ns.Labels)) {
		return provider.Permanent(v1alpha1.ReasonNamespaceNotAllowed,
			"ClusterEmbedProvider %s does not admit namespace %s (namespaceSelector %s)", cp.Name, namespace, selector)
	}
	return nil
}

// ensureToken asks the vendor for a token, within the provider's rate limit
// and timeout.
func (r *EmbedTokenRequestReconciler) ensureToken(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, p *resolvedProvider, o *outcome) (provider.Token, error) {
	httpClient, err := r.clients.get(ctx, p)
	if err != nil {
		return provider.Token{}, err
	}
	if err := r.clients.limiter(p).Wait(ctx); err != nil {
		return provider.Token{}, provider.Transient(v1alpha1.ReasonVendorUnavailable, "waiting for the provider's rate limit: %v", err)
	}
	callCtx, cancel := context.WithTimeout(ctx, httpClient.Timeout+time.Second)
	defer cancel()
	tok, err := p.impl.Issue(callCtx, provider.Request{
		Config:      p.spec,
		Params:      &etr.Spec.VendorParams,
		Lifetime:    etr.RequestedLifetime(),
		Credentials: p.creds,
		HTTPClient:  httpClient,
		Now:         r.Clock.Now(),
	})
	if err != nil {
		return provider.Token{}, err
	}
	if !tok.ExpiresAt.After(o.now) {
		return provider.Token{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "the vendor issued a token that expires at %s, which is not in the future", tok.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return tok, nil
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

func (h *httpClients) get(ctx context.Context, p *resolvedProvider) (*http.Client, error) {
	var caPEM []byte
	if ref := p.spec.CABundleSecretRef; ref != nil {
		var err error
		if caPEM, err = p.creds.Read(ctx, *ref); err != nil {
			return nil, err
		}
	}
	timeout := 10 * time.Second
	if p.spec.Timeout != nil && p.spec.Timeout.Duration > 0 {
		timeout = p.spec.Timeout.Duration
	}
	key := fmt.Sprintf("%d/%s/%x", p.generation, timeout, sha256.Sum256(caPEM))

	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.clients[p.uid]; ok && c.key == key {
		return c.client, nil
	}
	c, err := provider.NewHTTPClient(timeout, caPEM)
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
