package controller

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	"github.com/embedtokens/embed-token-operator/internal/issuance"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// EmbedTokenRequestReconciler keeps a valid token in each request's Secret:
// it calls the vendor when the policy says so and otherwise does nothing but
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
	// MinRenewInterval is the least time between issuing a token and
	// renewing it (--min-renew-interval), so a vendor granting very short
	// tokens cannot make one request spend the API budget;
	// DefaultMinRenewInterval when zero.
	MinRenewInterval time.Duration
	// MinRefreshInterval is the least time between the last issue and one
	// the refresh annotation forces (--min-refresh-interval);
	// DefaultMinRefreshInterval when zero.
	MinRefreshInterval time.Duration
	// NamespaceWrites bounds how many tokens one namespace may issue, and
	// so write, per second: its share of the manager's client rate limit
	// (namespaceBudget). Unbounded when zero.
	NamespaceWrites WriteBudget
	// Metrics, when set, publishes each request's validity and every vendor
	// call.
	Metrics *Metrics
	// WatchNamespaces is set in namespaced mode (--watch-namespaces): the
	// operator may not read cluster-scoped objects, so ClusterEmbedProviders
	// are not watched.
	WatchNamespaces []string
	// Sharded is set when --watch-label-selector limits this instance to one
	// shard: its cache then misses the Secret of a request moved in from
	// another shard, which is looked up uncached and adopted.
	Sharded bool

	fair   *requestGates
	expect *writeExpectations
	held   *heldTokens
}

// +kubebuilder:rbac:groups=embedtokens.io,resources=embedtokenrequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=embedtokens.io,resources=embedtokenrequests/status,verbs=patch
// +kubebuilder:rbac:groups=embedtokens.io,resources=embedtokenrequests/finalizers,verbs=update
// +kubebuilder:rbac:groups=embedtokens.io,resources=embedproviders;clusterembedproviders,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get
// +kubebuilder:rbac:groups="",resources=serviceaccounts/token,verbs=create
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile fetches the request, decides whether a token is needed, issues and
// stores it, and requeues for the next renewal. The status is computed and
// patched once, on the way out.
func (r *EmbedTokenRequestReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	etr, err := r.fetch(ctx, req.NamespacedName)
	if etr == nil {
		r.fair.settle(req.NamespacedName)
		if err == nil {
			r.expect.forget(req.NamespacedName)
			r.held.forget(req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	if r.cacheBehind(ctx, etr) {
		return ctrl.Result{RequeueAfter: cacheSyncRetry}, nil
	}
	o := &outcome{now: r.Clock.Now()}
	before := etr.DeepCopy()
	err = r.reconcile(ctx, etr, o)
	res, err := r.report(ctx, before, etr, o, err)
	if r.Reconciled != nil {
		r.Reconciled(before)
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

// reconcile runs the steps; each records what it learned in o.
func (r *EmbedTokenRequestReconciler) reconcile(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, o *outcome) error {
	secret, err := r.loadSecret(ctx, etr, o)
	if err != nil {
		return err
	}
	prov, provErr := r.Issuer.Resolve(ctx, etr.Namespace, etr.Spec.ProviderRef)
	in := r.policyInput(etr, o, prov)
	o.decision = Decide(in, o.now)
	o.lifetimeNote = lifetimeNote(prov, etr, o.stored)
	o.minRenewInterval = in.Renew.MinInterval

	switch {
	case etr.Spec.Suspend:
		o.suspended = true
		return nil
	case o.decision.Reason == RefreshNone:
		return r.keep(ctx, etr, secret, prov, o)
	case !r.mayIssue(ctx, etr, secret, prov, provErr, o):
		return nil
	}
	tok, ok := r.takeHeld(ctx, etr, prov, in, o)
	if !ok {
		if tok, ok = r.issue(ctx, etr, prov, o); !ok {
			return nil
		}
	}
	return r.store(ctx, etr, secret, tok, prov, o)
}

// keep serves a request whose stored token is good: it repairs the Secret's
// metadata and finishes restarts a crash or the coalescing window left
// pending.
func (r *EmbedTokenRequestReconciler) keep(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, secret *metav1.PartialObjectMetadata,
	prov *issuance.Provider, o *outcome) error {
	if o.stored.CredentialsVersion == "" && prov != nil {
		o.stored.CredentialsVersion = prov.RotationVersion() // record it, so a later rotation is noticed
	}
	if err := r.syncSecretMetadata(ctx, etr, secret, o); err != nil {
		return err
	}
	r.restartTargets(ctx, etr, o)
	r.propagate(ctx, etr, o)
	return nil
}

// mayIssue runs the configuration checks and then the backoff, recording in
// o why a token may not be issued yet. The checks cost no vendor call, so
// they run on every event (a provider created after its request heals at
// once); only the vendor call waits out the backoff.
func (r *EmbedTokenRequestReconciler) mayIssue(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, secret *metav1.PartialObjectMetadata,
	prov *issuance.Provider, provErr error, o *outcome) bool {
	if secret == nil && !o.secretAbsent {
		if err := r.checkSecretConflict(ctx, etr, o); err != nil {
			o.fail(err)
			return false
		}
	}
	if provErr == nil {
		provErr = r.Issuer.Check(ctx, prov, etr)
	}
	if provErr == nil && prov.SingleUse() {
		provErr = provider.Permanent(v1alpha1.ReasonInvalidRequest, "%s issues single-use %s tokens, which cannot be stored in a "+
			"Secret for pods to reuse: use an EmbedTokenTemplate and the token endpoint instead", prov.Describe(), prov.Vendor())
	}
	if provErr != nil {
		o.fail(provErr)
		return false
	}
	if o.decision.At.After(o.now) {
		o.waiting = true
		return false
	}
	return true
}

// store writes a newly issued token, then revokes the token it replaced and
// restarts the workloads that read it.
func (r *EmbedTokenRequestReconciler) store(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, secret *metav1.PartialObjectMetadata,
	tok provider.Token, prov *issuance.Provider, o *outcome) error {
	o.replaced = r.replacedToken(ctx, etr, secret, prov)
	if err := r.writeSecret(ctx, etr, secret, tok, prov, o); err != nil || o.issued == nil {
		return err
	}
	o.lifetimeNote = lifetimeNote(prov, etr, o.stored)
	if replaced := o.replaced; replaced != "" && replaced != tok.Value {
		r.revoke(ctx, etr, prov, replaced, "replaced")
	}
	r.restartTargets(ctx, etr, o)
	r.propagate(ctx, etr, o)
	return nil
}

// report ends the reconcile: unless the vendor call still waits, the request
// gives up its place in the fairness queues; then the status is computed
// from o and patched once. A quiet deferral writes nothing.
func (r *EmbedTokenRequestReconciler) report(ctx context.Context, before, etr *v1alpha1.EmbedTokenRequest, o *outcome, err error) (ctrl.Result, error) {
	switch {
	case o.deferral == nil:
		r.fair.settle(client.ObjectKeyFromObject(etr))
	case o.deferral.quiet:
		return ctrl.Result{RequeueAfter: o.deferral.after}, err
	}
	result := r.finish(etr, o)
	if patchErr := r.patchStatus(ctx, before, etr); patchErr != nil {
		err = errors.Join(err, patchErr)
	}
	return result, err
}

// finish computes the status from the outcome, records events for state
// changes and returns when to look again.
func (r *EmbedTokenRequestReconciler) finish(etr *v1alpha1.EmbedTokenRequest, o *outcome) ctrl.Result {
	prevReady := readyReason(etr)
	setStatus(etr, o)
	r.recordEvents(etr, prevReady, o)
	if o.deferral != nil {
		return ctrl.Result{RequeueAfter: o.deferral.after}
	}
	next := o.followUpAt
	if etr.Status.RenewAt != nil && (next.IsZero() || etr.Status.RenewAt.Time.Before(next)) {
		next = etr.Status.RenewAt.Time
	}
	if next.IsZero() {
		return ctrl.Result{}
	}
	return ctrl.Result{RequeueAfter: max(next.Sub(o.latest()), minRetry)}
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
	r.expect.wroteRequest(client.ObjectKeyFromObject(etr), etr.ResourceVersion)
	return nil
}

// SetupWithManager watches requests (spec or annotation changes), the Secrets
// they own, and the providers they use.
func (r *EmbedTokenRequestReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := indexProviderRef(context.Background(), mgr); err != nil {
		return err
	}
	r.fair = newRequestGates(r.Issuer.Gates(), r.NamespaceWrites)
	r.expect = newWriteExpectations()
	r.held = newHeldTokens(MaxHeldTokenBytes, MaxHeldTokenBytesPerNamespace)
	r.Metrics.observeMemory(r.held, r.Issuer)
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
