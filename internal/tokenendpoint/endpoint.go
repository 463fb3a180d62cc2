/*
Copyright 2026 The embed-token-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package tokenendpoint serves the token endpoint: workloads authenticated
// by a projected ServiceAccount token, and authorized to create
// embedtokentemplates/token, get a vendor token minted from an
// EmbedTokenTemplate with the parameters they send. Identical calls share a
// token held in memory only; concurrent identical calls make one vendor
// call.
package tokenendpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// PathPrefix is where the endpoint's routes start; a route is
// PathPrefix + NAMESPACE/embedtokentemplates/NAME/token.
const PathPrefix = "/apis/embedtokens.io/v1alpha1/namespaces/"

// DefaultTimeout bounds a call when Options leave Timeout zero.
const DefaultTimeout = 30 * time.Second

// Minter turns a template and a caller's parameters into a token: the
// issuance path the controller uses, adapted by the manager's wiring.
type Minter interface {
	// Prepare fills and checks the parameters and resolves and checks the
	// provider, without a vendor call. It fails with an *Error (400
	// InvalidParameters) or a *provider.Error (403 RequestDenied, or the
	// provider's condition reasons).
	Prepare(ctx context.Context, tmpl *v1alpha1.EmbedTokenTemplate, params map[string]string, caller Caller) (Prepared, error)
	// Mint makes the vendor call through the issuer's shared gates. It
	// fails with a *provider.Error, a *Throttled or the context's error.
	Mint(ctx context.Context, p Prepared) (provider.Token, error)
}

// Prepared is a call ready for the vendor: what the cache keys on, and the
// Minter's own state.
type Prepared struct {
	// CredentialsVersion changes when the provider's credentials do, so a
	// rotation misses the tokens issued with the old ones.
	CredentialsVersion string
	// SingleUse is set for vendors whose tokens cannot be shared; such
	// calls are never cached.
	SingleUse bool
	// Payload is the Minter's, passed back to Mint untouched.
	Payload any
}

// Options configure an Endpoint.
type Options struct {
	// Templates reads EmbedTokenTemplates, normally the manager's cache.
	Templates client.Reader
	// Minter issues the tokens.
	Minter Minter
	// Authenticator checks the bearer token; a TokenReviewer on Client
	// when nil.
	Authenticator Authenticator
	// Authorizer checks the caller's access; an AccessReviewer on Client
	// when nil.
	Authorizer Authorizer
	// Client creates TokenReviews and SubjectAccessReviews for the default
	// Authenticator and Authorizer.
	Client client.Client
	// AuthCacheSize bounds each of the default Authenticator's and
	// Authorizer's caches; DefaultAuthCacheSize when zero.
	AuthCacheSize int
	// CacheMaxEntries and CacheMaxBytes bound the token cache;
	// DefaultCacheMaxEntries and DefaultCacheMaxBytes when zero.
	CacheMaxEntries int
	CacheMaxBytes   int64
	// Timeout bounds each call, and each vendor call made for calls that
	// share it; DefaultTimeout when zero.
	Timeout time.Duration
	// LogParameterValues adds the parameters' values to the audit log line
	// of each token issued. They often name end users, so only a digest is
	// logged by default.
	LogParameterValues bool
	// Logger receives the audit log; the discarding logger when zero.
	Logger logr.Logger
	// MetricsRegisterer registers the endpoint's metrics; controller-
	// runtime's metrics.Registry, which the manager serves, when nil.
	MetricsRegisterer prometheus.Registerer
	// Clock is the endpoint's time: token freshness, rate limits and the
	// auth caches. The real clock when nil.
	Clock clock.PassiveClock
}

// Endpoint is the token endpoint's http.Handler.
type Endpoint struct {
	templates client.Reader
	minter    Minter
	authn     Authenticator
	authz     Authorizer
	clock     clock.PassiveClock
	timeout   time.Duration
	logValues bool
	log       logr.Logger
	cache     *tokenCache
	limiters  *rateLimiters
	flights   singleflight.Group
	metrics   *metrics
}

// New creates an Endpoint. Templates and Minter are required, and either
// Client or both Authenticator and Authorizer.
func New(opts Options) (*Endpoint, error) {
	if opts.Templates == nil || opts.Minter == nil {
		return nil, errors.New("token endpoint: Templates and Minter are required")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Authenticator == nil || opts.Authorizer == nil {
		if opts.Client == nil {
			return nil, errors.New("token endpoint: Client is required without an Authenticator and an Authorizer")
		}
		if opts.Authenticator == nil {
			opts.Authenticator = NewTokenReviewer(opts.Client, opts.Clock, opts.AuthCacheSize)
		}
		if opts.Authorizer == nil {
			opts.Authorizer = NewAccessReviewer(opts.Client, opts.Clock, opts.AuthCacheSize)
		}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MetricsRegisterer == nil {
		opts.MetricsRegisterer = ctrlmetrics.Registry
	}
	m, err := newMetrics(opts.MetricsRegisterer)
	if err != nil {
		return nil, err
	}
	return &Endpoint{
		templates: opts.Templates,
		minter:    opts.Minter,
		authn:     opts.Authenticator,
		authz:     opts.Authorizer,
		clock:     opts.Clock,
		timeout:   opts.Timeout,
		logValues: opts.LogParameterValues,
		log:       opts.Logger,
		cache:     newTokenCache(opts.CacheMaxEntries, opts.CacheMaxBytes, func(n int) { m.entries.Set(float64(n)) }),
		limiters:  newRateLimiters(),
		metrics:   m,
	}, nil
}

// Forget drops the tokens and the rate limit bucket of the template with
// UID uid: call it when the template changes or is deleted. Calls after a
// change miss the old tokens anyway (the generation is in the key); Forget
// frees their memory at once.
func (e *Endpoint) Forget(uid types.UID) {
	e.cache.forget(uid)
	e.limiters.forget(uid)
}

// TemplateEventHandler is the handler to add to the EmbedTokenTemplate
// informer, so a template's change of generation and its deletion drop its
// tokens, and its deletion its metric series.
func (e *Endpoint) TemplateEventHandler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*v1alpha1.EmbedTokenTemplate)
			n, ok2 := newObj.(*v1alpha1.EmbedTokenTemplate)
			if ok1 && ok2 && (o.Generation != n.Generation || o.UID != n.UID) {
				e.Forget(o.UID)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if t, ok := obj.(*v1alpha1.EmbedTokenTemplate); ok {
				e.Forget(t.UID)
				e.metrics.dropTemplate(t.Namespace, t.Name)
			}
		},
	}
}

// answer is what serve decided, for the response, the metrics and the log.
type answer struct {
	tmpl   *v1alpha1.EmbedTokenTemplate
	token  provider.Token
	cached bool
	err    *Error
}

// ServeHTTP implements http.Handler.
func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := e.clock.Now()
	ctx, cancel := context.WithTimeout(r.Context(), e.timeout)
	defer cancel()
	a := e.serve(ctx, w, r)
	var ns, name string
	if a.tmpl != nil {
		ns, name = a.tmpl.Namespace, a.tmpl.Name
	}
	if a.err != nil {
		writeError(w, a.err)
		e.metrics.observe(ns, name, a.err.Status, a.err.Reason, resultError, e.clock.Since(start))
		return
	}
	writeJSON(w, http.StatusOK, TokenResponse{
		Token:       a.token.Value,
		ExpiresAt:   a.token.ExpiresAt.UTC().Format(time.RFC3339),
		TokenDigest: a.token.Digest(),
		Cached:      a.cached,
	})
	result := resultIssued
	if a.cached {
		result = resultCached
		e.metrics.cacheHits.Inc()
	}
	e.metrics.observe(ns, name, http.StatusOK, reasonOK, result, e.clock.Since(start))
}

// serve runs a call's steps in order: who calls and whether they may are
// checked before the body is read or the template looked up, so callers
// without access learn nothing of the templates.
func (e *Endpoint) serve(ctx context.Context, w http.ResponseWriter, r *http.Request) answer {
	namespace, name, ok := parsePath(r.URL.Path)
	if !ok {
		return answer{err: &Error{Status: http.StatusNotFound, Reason: ReasonNotFound,
			Message: "the route is POST " + PathPrefix + "NAMESPACE/embedtokentemplates/NAME/token"}}
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return answer{err: &Error{Status: http.StatusMethodNotAllowed, Reason: ReasonMethodNotAllowed, Message: "use POST"}}
	}
	caller, err := e.authn.Authenticate(ctx, bearerToken(r))
	if err != nil {
		return answer{err: toError(ctx, err)}
	}
	if err := e.authz.Authorize(ctx, caller, namespace, name); err != nil {
		return answer{err: toError(ctx, err)}
	}
	body, err := DecodeBody(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		return answer{err: toError(ctx, err)}
	}
	minValidFor, _ := parseMinValidFor(body.MinValidFor) // checked by DecodeBody
	tmpl := &v1alpha1.EmbedTokenTemplate{}
	if err := e.templates.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, tmpl); err != nil {
		if apierrors.IsNotFound(err) {
			return answer{err: &Error{Status: http.StatusNotFound, Reason: ReasonNotFound,
				Message: fmt.Sprintf("embedtokentemplate %s/%s not found", namespace, name)}}
		}
		return answer{err: &Error{Status: http.StatusServiceUnavailable, Reason: ReasonServiceUnavailable,
			Message: "the template could not be read; try again"}}
	}
	a := answer{tmpl: tmpl}
	if !ready(tmpl) {
		a.err = &Error{Status: http.StatusConflict, Reason: ReasonTemplateNotReady, Message: fmt.Sprintf(
			"embedtokentemplate %s/%s is not Ready for its generation %d; see its status", namespace, name, tmpl.Generation)}
		return a
	}
	if wait := e.limiters.reserve(tmpl, e.clock.Now()); wait > 0 {
		a.err = &Error{Status: http.StatusTooManyRequests, Reason: ReasonRateLimited,
			Message: "the template's rateLimit is exhausted", RetryAfter: wait}
		return a
	}
	p, err := e.minter.Prepare(ctx, tmpl, body.Parameters, caller)
	if err != nil {
		a.err = toError(ctx, err)
		return a
	}
	if tmpl.Spec.Cache == v1alpha1.TemplateCacheNone || p.SingleUse {
		a.token, err = e.mint(ctx, p)
	} else {
		a.token, a.cached, err = e.shared(ctx, tmpl, body.Parameters, p, minValidFor)
	}
	if err != nil {
		a.err = toError(ctx, err)
		return a
	}
	e.audit(caller, tmpl, body.Parameters, a.token, a.cached)
	return a
}

// mint makes one vendor call.
func (e *Endpoint) mint(ctx context.Context, p Prepared) (provider.Token, error) {
	e.metrics.vendorCalls.Inc()
	return e.minter.Mint(ctx, p)
}

// shared serves a token identical calls share: the cached one if it is
// valid for minValidFor, or one vendor call made for every identical call
// waiting at the time. The vendor call outlives a caller that gives up, so
// the others still get the token, but not the endpoint's timeout.
func (e *Endpoint) shared(ctx context.Context, tmpl *v1alpha1.EmbedTokenTemplate, params map[string]string,
	p Prepared, minValidFor time.Duration) (provider.Token, bool, error) {
	key := cacheKey(tmpl.UID, tmpl.Generation, p.CredentialsVersion, params)
	if tok, ok := e.cache.get(key, e.clock.Now(), minValidFor); ok {
		return tok, true, nil
	}
	type minted struct {
		token  provider.Token
		cached bool
	}
	m, started, err := share(ctx, &e.flights, key, e.timeout, func(fctx context.Context) (minted, error) {
		// A flight that ended after this call's lookup may have cached it.
		if tok, ok := e.cache.get(key, e.clock.Now(), minValidFor); ok {
			return minted{token: tok, cached: true}, nil
		}
		tok, err := e.mint(fctx, p)
		if err != nil {
			return minted{}, err
		}
		e.cache.put(key, tmpl.UID, tmpl.Generation, p.CredentialsVersion, tok)
		return minted{token: tok}, nil
	})
	if err != nil {
		return provider.Token{}, false, err
	}
	return m.token, m.cached || !started, nil
}

// audit logs one line per token handed out, never the token.
func (e *Endpoint) audit(c Caller, tmpl *v1alpha1.EmbedTokenTemplate, params map[string]string, tok provider.Token, cached bool) {
	kv := []any{"user", c.Username, "pod", c.PodName, "embedTokenTemplate", klog.KObj(tmpl),
		"parametersDigest", parametersDigest(params), "tokenDigest", tok.Digest(), "cached", cached}
	if e.logValues {
		kv = append(kv, "parameters", params)
	}
	e.log.Info("Token issued", kv...)
}

// ready reports whether the template's Ready condition is True for its
// current generation.
func ready(t *v1alpha1.EmbedTokenTemplate) bool {
	c := meta.FindStatusCondition(t.Status.Conditions, v1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && t.Status.ObservedGeneration == t.Generation &&
		(c.ObservedGeneration == 0 || c.ObservedGeneration == t.Generation)
}

// parsePath reads the namespace and template name of a route.
func parsePath(path string) (namespace, name string, ok bool) {
	rest, ok := strings.CutPrefix(path, PathPrefix)
	if !ok {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 4 || parts[1] != "embedtokentemplates" || parts[3] != "token" {
		return "", "", false
	}
	if len(validation.IsDNS1123Label(parts[0])) > 0 || len(validation.IsDNS1123Subdomain(parts[2])) > 0 {
		return "", "", false
	}
	return parts[0], parts[2], true
}

// bearerToken is the Authorization header's bearer token, or "".
func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// errorBody is the JSON body of an error answer.
type errorBody struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, e *Error) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(e.RetryAfter.Seconds())), 10))
	}
	writeJSON(w, e.Status, errorBody{Reason: e.Reason, Message: e.Message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
