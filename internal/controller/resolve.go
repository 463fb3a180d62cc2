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
)

// resolvedProvider is a provider object that this request may use, with the
// implementation for its vendor.
type resolvedProvider struct {
	name              string
	uid               types.UID
	generation        int64
	spec              *v1alpha1.EmbedProviderSpec
	vendor            string
	impl              provider.Provider
	creds             credentialReader
	namespaceSelector *metav1.LabelSelector
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
	p := &resolvedProvider{name: obj.GetName(), uid: obj.GetUID(), generation: obj.GetGeneration(), spec: spec,
		vendor: spec.Vendor(), creds: creds, namespaceSelector: selector}
	if spec.ReissueOnCredentialChange == nil || *spec.ReissueOnCredentialChange {
		p.credentialsVersion = status.CredentialsVersion
	}
	return p
}

// checkProvider checks that the request may use the provider: the namespace
// is admitted, the vendors match, and this build implements the vendor.
func (r *EmbedTokenRequestReconciler) checkProvider(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, p *resolvedProvider) error {
	if p.namespaceSelector != nil {
		if err := r.checkNamespaceAllowed(ctx, p, etr.Namespace); err != nil {
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
	p.impl = impl
	return nil
}

// describe names the provider for status messages, e.g.
// "ClusterEmbedProvider shared-qrvey".
func (p *resolvedProvider) describe() string {
	if p.creds.clusterScoped {
		return "ClusterEmbedProvider " + p.name
	}
	return "EmbedProvider " + p.name
}

func providerGetError(err error, what string) error {
	if apierrors.IsNotFound(err) {
		return provider.Permanent(v1alpha1.ReasonProviderNotFound, "%s not found", what)
	}
	return provider.Transient(v1alpha1.ReasonProviderNotFound, "reading %s: %v", what, apierrors.ReasonForError(err))
}

// checkNamespaceAllowed applies a ClusterEmbedProvider's namespaceSelector.
func (r *EmbedTokenRequestReconciler) checkNamespaceAllowed(ctx context.Context, p *resolvedProvider, namespace string) error {
	sel := p.namespaceSelector
	if len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
		return nil
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return provider.Permanent(v1alpha1.ReasonProviderInvalid, "ClusterEmbedProvider %s has an invalid namespaceSelector: %v", p.name, err)
	}
	ns := &corev1.Namespace{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		return provider.Transient(v1alpha1.ReasonNamespaceNotAllowed, "reading Namespace %s: %v", namespace, apierrors.ReasonForError(err))
	}
	if !selector.Matches(labels.Set(ns.Labels)) {
		return provider.Permanent(v1alpha1.ReasonNamespaceNotAllowed,
			"ClusterEmbedProvider %s does not admit namespace %s (namespaceSelector %s)", p.name, namespace, selector)
	}
	return nil
}

// ensureToken asks the vendor for a token within the call's timeout; admit
// has already let the call through the provider's rate limit and call cap.
func (r *EmbedTokenRequestReconciler) ensureToken(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, p *resolvedProvider, o *outcome) (provider.Token, error) {
	httpClient, err := r.clients.get(ctx, p)
	if err != nil {
		return provider.Token{}, err
	}
	callCtx, cancel := context.WithTimeout(ctx, httpClient.Timeout+time.Second)
	defer cancel()
	start := time.Now()
	tok, err := p.impl.Issue(callCtx, provider.Request{
		Config:      p.spec,
		Params:      &etr.Spec.VendorParams,
		Lifetime:    etr.RequestedLifetime(),
		Credentials: p.creds,
		HTTPClient:  httpClient,
		Now:         r.Clock.Now(),
	})
	r.Metrics.ObserveIssue(p.vendor, time.Since(start), err)
	if err != nil {
		return provider.Token{}, err
	}
	if !tok.ExpiresAt.After(o.now) {
		return provider.Token{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "the vendor issued a token that expires at %s, which is not in the future", tok.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return r.capExpiry(ctx, etr, tok, o.now), nil
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

func (h *httpClients) get(ctx context.Context, p *resolvedProvider) (*http.Client, error) {
	var caPEM []byte
	if ref := p.spec.CABundleSecretRef; ref != nil {
		var err error
		if caPEM, err = p.creds.Read(ctx, *ref); err != nil {
			return nil, err
		}
	}
	timeout := vendorTimeout(p.spec.Timeout, h.maxTimeout)
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
