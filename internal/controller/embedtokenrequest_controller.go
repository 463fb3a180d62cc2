package controller

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/fairness"
	"github.com/embedtokens/embed-token-operator/internal/issuance"
	"github.com/embedtokens/embed-token-operator/internal/metrics"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/refresh"
	"github.com/embedtokens/embed-token-operator/internal/rollout"
	"github.com/embedtokens/embed-token-operator/internal/tokenstore"
)

// EmbedTokenRequestReconciler keeps a valid token in each request's Secret:
// it calls the vendor when a refresh decision says so and otherwise does nothing but
// requeue for the renewal time.
type EmbedTokenRequestReconciler struct {
	// Client reads through the manager's cache (which holds only managed
	// Secrets) and writes to the API server.
	client.Client
	// APIReader reads uncached: credential Secrets, Namespaces and foreign
	// Secrets, none of which the manager should cache cluster-wide.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	// Reconciled, when set, is called after each reconcile of a request
	// that exists with the request as it was read (Options.Reconciled).
	Reconciled func(*v1alpha1.EmbedTokenRequest)
	// Issuer makes every vendor call: provider resolution and checks,
	// credentials, fair scheduling, the call itself and redaction. It is
	// shared with the token endpoint, whose calls count against the same
	// caps; the caps are shares of the Issuer's workers, which should be
	// MaxConcurrentReconciles.
	Issuer *issuance.Issuer
	// MaxConcurrentReconciles bounds parallel reconciles.
	MaxConcurrentReconciles int
	// Refresh holds the manager's floors under renewals
	// (--min-renew-interval), so a vendor granting very short tokens cannot
	// make one request spend the API budget, and under forced refreshes
	// (--min-refresh-interval).
	Refresh refresh.Settings
	// NamespaceWrites bounds how many tokens one namespace may issue, and
	// so write, per second: its share of the manager's client rate limit
	// (namespaceBudget). Unbounded when zero.
	NamespaceWrites fairness.WriteBudget
	// Metrics, when set, publishes each request's validity and every vendor
	// call.
	Metrics *metrics.Metrics
	// WatchNamespaces is set in namespaced mode (--watch-namespaces): the
	// operator may not read cluster-scoped objects, so ClusterEmbedProviders
	// are not watched.
	WatchNamespaces []string
	// Sharded is set when --watch-label-selector limits this instance to one
	// shard: its cache then misses the Secret of a request moved in from
	// another shard, which is looked up uncached and adopted.
	Sharded bool

	fair    *requestGates
	store   *tokenstore.Store
	rollout *rollout.Rollout
	steps   []step
}

// +kubebuilder:rbac:groups=embedtokens.io,resources=embedtokenrequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=embedtokens.io,resources=embedtokenrequests/status,verbs=patch
// +kubebuilder:rbac:groups=embedtokens.io,resources=embedtokenrequests/finalizers,verbs=update
// +kubebuilder:rbac:groups=embedtokens.io,resources=embedproviders;clusterembedproviders,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get
// +kubebuilder:rbac:groups="",resources=serviceaccounts/token,verbs=create
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile fetches the request and runs its steps (doc.go lists them) on
// one scope; the status is computed from the scope and patched once, on the
// way out.
func (r *EmbedTokenRequestReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	etr, err := r.fetch(ctx, req.NamespacedName)
	if etr == nil {
		r.fair.settle(req.NamespacedName)
		if err == nil {
			r.store.Forget(req.NamespacedName)
			r.rollout.Forget(req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	if r.store.CacheBehind(ctx, etr) {
		return ctrl.Result{RequeueAfter: tokenstore.CacheSyncRetry}, nil
	}
	s := newScope(etr, r.Clock.Now())
	err = run(ctx, s, r.steps)
	res, err := r.report(ctx, s, err)
	if r.Reconciled != nil {
		r.Reconciled(s.before)
	}
	return res, err
}

// fetch reads the request; it returns nil when the request is gone or being
// deleted (its Secret goes with it through its owner reference).
func (r *EmbedTokenRequestReconciler) fetch(ctx context.Context, key types.NamespacedName) (*v1alpha1.EmbedTokenRequest, error) {
	etr := &v1alpha1.EmbedTokenRequest{}
	if err := r.Get(ctx, key, etr); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	if !etr.DeletionTimestamp.IsZero() {
		return nil, nil
	}
	return etr, nil
}

// stepsInOrder is the reconcile, step by step (doc.go describes each).
func (r *EmbedTokenRequestReconciler) stepsInOrder() []step {
	return []step{
		r.loadSecret,
		r.resolveProvider,
		r.decide,
		r.repairSecret,
		r.checkIssuable,
		r.callVendor,
		r.storeToken,
		r.rolloutToken,
	}
}

// resolveProvider finds the request's provider and derives what every later
// step needs from it: the lifetime to ask for, the inputs' hash and the
// refresh input. A provider that cannot be used is only recorded here:
// checkIssuable reports it, once a token is due.
func (r *EmbedTokenRequestReconciler) resolveProvider(ctx context.Context, s *scope) (stepResult, error) {
	p, err := r.Issuer.Resolve(ctx, s.request.Namespace, s.request.Spec.ProviderRef)
	s.providerErr = err
	s.useProvider(p, r.Refresh)
	return proceed, nil
}

// decide asks refresh.Decide whether a token is due now; a suspended
// request ends here.
func (r *EmbedTokenRequestReconciler) decide(_ context.Context, s *scope) (stepResult, error) {
	s.decision = refresh.Decide(s.input, s.now)
	if s.request.Spec.Suspend {
		s.suspended = true
		return stop, nil
	}
	return proceed, nil
}

// checkIssuable runs the configuration checks of a due token and then the
// backoff, recording why a token may not be issued yet. The checks cost no
// vendor call, so they run on every event (a provider created after its
// request heals at once); only the vendor call waits out the backoff.
func (r *EmbedTokenRequestReconciler) checkIssuable(ctx context.Context, s *scope) (stepResult, error) {
	if !s.renewing() {
		return proceed, nil
	}
	if s.secret.Meta == nil && !s.secret.Absent {
		if err := r.checkSecretConflict(ctx, s); err != nil {
			s.fail(err)
			return stop, nil
		}
	}
	err := s.providerErr
	if err == nil {
		err = r.Issuer.Check(ctx, s.provider, s.request)
	}
	if err == nil && s.provider.SingleUse() {
		err = provider.Permanent(v1alpha1.ReasonInvalidRequest, "%s issues single-use %s tokens, which cannot be stored in a "+
			"Secret for pods to reuse: use an EmbedTokenTemplate and the token endpoint instead", s.provider.Describe(), s.provider.Vendor())
	}
	if err != nil {
		s.fail(err)
		return stop, nil
	}
	if s.decision.At.After(s.now) {
		s.waiting = true
		return stop, nil
	}
	return proceed, nil
}

// rolloutToken makes workloads use the current token: it restarts the
// rolloutRestartTargets and pushes the token into the pods spec.propagation
// selects, each once per token, and finishes what a crash or the coalescing
// window left pending.
func (r *EmbedTokenRequestReconciler) rolloutToken(ctx context.Context, s *scope) (stepResult, error) {
	digest := s.currentDigest()
	restart := r.rollout.Restart(ctx, s.request, digest)
	if restart.Done {
		s.restartedFor = digest
	}
	push := r.rollout.Propagate(ctx, s.request, digest)
	if push.Done {
		s.propagatedFor = digest
	}
	s.restartErr, s.propagateErr = restart.Err, push.Err
	for _, after := range []time.Duration{restart.RetryAfter, push.RetryAfter} {
		if after > 0 {
			s.retryAt(s.now.Add(after))
		}
	}
	return proceed, nil
}

// report ends the reconcile: unless the vendor call still waits, the request
// gives up its place in the fairness queues; then the status is computed
// from o and patched once. A quiet deferral writes nothing.
func (r *EmbedTokenRequestReconciler) report(ctx context.Context, s *scope, err error) (ctrl.Result, error) {
	switch {
	case s.deferral == nil:
		r.fair.settle(s.key)
	case s.deferral.quiet:
		return ctrl.Result{RequeueAfter: s.deferral.after}, err
	}
	result := r.finish(s)
	if patchErr := r.patchStatus(ctx, s.before, s.request); patchErr != nil {
		err = errors.Join(err, patchErr)
	}
	return result, err
}

// finish computes the status from the scope, records events for state
// changes and returns when to look again.
func (r *EmbedTokenRequestReconciler) finish(s *scope) ctrl.Result {
	etr := s.request
	prevReady := readyReason(etr)
	setStatus(etr, s)
	r.recordEvents(etr, prevReady, s)
	if s.deferral != nil {
		return ctrl.Result{RequeueAfter: s.deferral.after}
	}
	next := s.followUpAt
	if etr.Status.RenewAt != nil && (next.IsZero() || etr.Status.RenewAt.Time.Before(next)) {
		next = etr.Status.RenewAt.Time
	}
	if next.IsZero() {
		return ctrl.Result{}
	}
	return ctrl.Result{RequeueAfter: max(next.Sub(s.latest()), refresh.MinRetry)}
}

// patchStatus writes the status only if it changed, so a request whose token
// is fresh costs no API writes however often it is reconciled.
func (r *EmbedTokenRequestReconciler) patchStatus(ctx context.Context, before, etr *v1alpha1.EmbedTokenRequest) error {
	if equality.Semantic.DeepEqual(before.Status, etr.Status) {
		return nil
	}
	if err := r.Status().Patch(ctx, etr, client.MergeFrom(before)); err != nil {
		return client.IgnoreNotFound(err)
	}
	r.store.WroteRequest(etr)
	return nil
}

// SetupWithManager watches requests (spec or annotation changes), the Secrets
// they own, and the providers they use.
func (r *EmbedTokenRequestReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := indexProviderRef(context.Background(), mgr); err != nil {
		return err
	}
	r.fair = newRequestGates(r.Issuer.Gates(), r.NamespaceWrites)
	r.store = tokenstore.New(r.Client, r.APIReader, r.Sharded)
	r.rollout = rollout.New(r.Client, r.APIReader, r.Clock)
	r.steps = r.stepsInOrder()
	r.Metrics.ObserveMemory(r.store.Held(), r.Issuer)
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.EmbedTokenRequest{}, builder.WithPredicates(
			predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, shardLabelChanged))).
		Owns(&corev1.Secret{}, builder.OnlyMetadata).
		WatchesRawSource(source.Channel(r.fair.wakeups, &handler.EnqueueRequestForObject{})).
		Watches(&v1alpha1.EmbedProvider{}, handler.EnqueueRequestsFromMapFunc(r.requestsForProvider),
			builder.WithPredicates(providerChanged))
	if len(r.WatchNamespaces) == 0 {
		b = b.Watches(&v1alpha1.ClusterEmbedProvider{}, handler.EnqueueRequestsFromMapFunc(r.requestsForProvider),
			builder.WithPredicates(providerChanged))
	}
	return b.WithOptions(controller.Options{
		MaxConcurrentReconciles: max(r.MaxConcurrentReconciles, 1),
		RateLimiter:             newErrorRetries(r.storedExpiry, r.Clock),
	}).
		Named("embedtokenrequest").
		Complete(r)
}
