package controller

import (
	"context"
	"errors"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/egress"
	"github.com/embedtokens/embed-token-operator/internal/requestpolicy"
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
	// Providers maps a vendor name (v1alpha1.Vendor*) to its implementation.
	Providers map[string]provider.Provider
	// MaxConcurrentReconciles bounds parallel reconciles. Vendor calls are
	// bounded by each provider's rateLimit and by a share of these workers
	// per provider and per namespace (callCaps), so one provider or one
	// namespace cannot occupy them all.
	MaxConcurrentReconciles int
	// MaxVendorTimeout caps every provider's spec.timeout; unbounded when
	// zero.
	MaxVendorTimeout time.Duration
	// Metrics, when set, publishes each request's validity and every vendor
	// call.
	Metrics *Metrics
	// WatchNamespaces is set in namespaced mode (--watch-namespaces): the
	// operator may not read cluster-scoped objects, so ClusterEmbedProviders
	// are neither watched nor read.
	WatchNamespaces []string
	// Policies holds each provider's compiled requestValidations, shared
	// with the provider reconcilers; nil compiles them on every use.
	Policies *requestpolicy.Cache
	// Egress is the --allow-vendor-cidrs part of the egress guard every
	// vendor connection passes; the zero Policy applies the built-in rules
	// only.
	Egress egress.Policy
	// VendorResolver resolves vendor host names; the system resolver when
	// nil.
	VendorResolver *net.Resolver

	clients httpClients
	fair    *fairness
}

// +kubebuilder:rbac:groups=embedtokens.io,resources=embedtokenrequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=embedtokens.io,resources=embedtokenrequests/status,verbs=patch
// +kubebuilder:rbac:groups=embedtokens.io,resources=embedtokenrequests/finalizers,verbs=update
// +kubebuilder:rbac:groups=embedtokens.io,resources=embedproviders;clusterembedproviders,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile fetches the request, decides whether a token is needed, issues and
// stores it, and requeues for the next renewal. The status is computed and
// patched once, on the way out.
func (r *EmbedTokenRequestReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	etr := &v1alpha1.EmbedTokenRequest{}
	if err := r.Get(ctx, req.NamespacedName, etr); err != nil {
		r.fair.settle(req.NamespacedName)
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !etr.DeletionTimestamp.IsZero() {
		r.fair.settle(req.NamespacedName)
		return ctrl.Result{}, nil // the Secret goes with it through its owner reference
	}

	o := &outcome{now: r.Clock.Now()}
	before := etr.DeepCopy()
	err := r.reconcile(ctx, etr, o)
	switch {
	case o.deferral == nil:
		r.fair.settle(req.NamespacedName)
	case o.deferral.quiet:
		return ctrl.Result{RequeueAfter: o.deferral.after}, err
	}
	result := r.finish(etr, o)
	if patchErr := r.patchStatus(ctx, before, etr); patchErr != nil {
		err = errors.Join(err, patchErr)
	}
	return result, err
}

// reconcile runs the steps; each records what it learned in o.
func (r *EmbedTokenRequestReconciler) reconcile(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, o *outcome) error {
	secret, err := r.loadSecret(ctx, etr, o)
	if err != nil {
		return err
	}
	prov, provErr := r.getProvider(ctx, etr)
	o.decision = Decide(r.policyInput(etr, o, prov), o.now)
	o.lifetimeNote = prov.lifetimeNote(etr)

	switch {
	case etr.Spec.Suspend:
		o.suspended = true
		return nil
	case o.decision.Reason == RefreshNone:
		if o.stored.CredentialsVersion == "" && prov != nil {
			o.stored.CredentialsVersion = prov.credentialsVersion // record it, so a later rotation is noticed
		}
		if err := r.syncSecretMetadata(ctx, etr, secret, o); err != nil {
			return err
		}
		r.restartTargets(ctx, etr, o) // finishes restarts a crash or the coalescing window left pending
		return nil
	}

	// Configuration checks cost no vendor call, so they run on every event
	// (a provider created after its request heals at once); only the vendor
	// call waits out the backoff.
	if secret == nil {
		if err := r.checkSecretConflict(ctx, etr); err != nil {
			o.fail(err)
			return nil
		}
	}
	if provErr == nil {
		provErr = r.checkProvider(ctx, etr, prov)
	}
	if provErr != nil {
		o.fail(provErr)
		return nil
	}
	if o.decision.At.After(o.now) {
		o.waiting = true
		return nil
	}

	release, admitted := r.admit(ctx, etr, prov, o)
	if !admitted {
		return nil
	}
	log.FromContext(ctx).V(1).Info("Issuing token", "embedTokenRequest", klog.KObj(etr), "vendor", prov.vendor, "reason", o.decision.Reason,
		"lifetime", prov.lifetime(etr))
	o.vendor = prov.vendor
	tok, err := func() (provider.Token, error) {
		defer release()
		return r.ensureToken(ctx, etr, prov, o)
	}()
	if err != nil {
		o.fail(err)
		// The classified message is the one the conditions show: it never
		// holds a token or credential.
		log.FromContext(ctx).Info("Issuing token failed", "embedTokenRequest", klog.KObj(etr), "vendor", prov.vendor,
			"reason", o.err.Reason, "message", o.err.Message, "permanent", o.err.Permanent)
		return nil
	}
	if err := r.writeSecret(ctx, etr, secret, tok, prov, o); err != nil || o.issued == nil {
		return err
	}
	r.restartTargets(ctx, etr, o)
	return nil
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
	next := o.restartAt
	if etr.Status.RenewAt != nil && (next.IsZero() || etr.Status.RenewAt.Time.Before(next)) {
		next = etr.Status.RenewAt.Time
	}
	if next.IsZero() {
		return ctrl.Result{}
	}
	return ctrl.Result{RequeueAfter: max(next.Sub(o.now), minRetry)}
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
	r.waitForCache(ctx, etr)
	return nil
}

// recordEvents emits an Event when the request's state changes: a first
// token (or one for a changed spec), a refresh someone asked for (annotation,
// rotated credentials), Ready becoming TokenRefreshed (the first renewal, or
// the first success after a failure), or a new failure reason. A routine
// renewal while Ready is already TokenRefreshed emits nothing: the status,
// the Secret and the metrics show it, and N tokens renewing cost N Secret
// writes and N status writes, not N Events more.
func (r *EmbedTokenRequestReconciler) recordEvents(etr *v1alpha1.EmbedTokenRequest, prevReady string, o *outcome) {
	switch {
	case o.issued != nil && o.decision.Reason == RefreshNoToken || o.issued != nil && o.decision.Reason == RefreshInputsChanged:
		r.Recorder.Eventf(etr, nil, corev1.EventTypeNormal, v1alpha1.ReasonTokenIssued, "Issue", "Issued token %s valid until %s", o.issued.Digest(), o.issued.ExpiresAt.UTC().Format(time.RFC3339))
	case o.issued != nil:
		if o.decision.Reason == RefreshDue && prevReady == v1alpha1.ReasonTokenRefreshed {
			return
		}
		r.Recorder.Eventf(etr, nil, corev1.EventTypeNormal, v1alpha1.ReasonTokenRefreshed, "Refresh", "Refreshed token (%s) to %s valid until %s", o.decision.Reason, o.issued.Digest(), o.issued.ExpiresAt.UTC().Format(time.RFC3339))
	default:
		reason := readyReason(etr)
		if reason != prevReady && reason == v1alpha1.ReasonRolloutRestartFailed {
			r.Recorder.Eventf(etr, nil, corev1.EventTypeWarning, reason, "RolloutRestart", "%s", readyMessage(etr))
			return
		}
		if reason != prevReady && (o.err != nil || reason == v1alpha1.ReasonTokenExpired) {
			r.Recorder.Eventf(etr, nil, corev1.EventTypeWarning, reason, "Issue", "%s", readyMessage(etr))
		}
	}
}

// SetupWithManager watches requests (spec or annotation changes), the Secrets
// they own, and the providers they use.
func (r *EmbedTokenRequestReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := indexProviderRef(context.Background(), mgr); err != nil {
		return err
	}
	r.fair = newFairness(max(r.MaxConcurrentReconciles, 1))
	r.clients.maxTimeout = r.MaxVendorTimeout
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.EmbedTokenRequest{}, builder.WithPredicates(
			predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&corev1.Secret{}).
		WatchesRawSource(source.Channel(r.fair.wakeups, &handler.EnqueueRequestForObject{})).
		Watches(&v1alpha1.EmbedProvider{}, handler.EnqueueRequestsFromMapFunc(r.requestsForProvider),
			builder.WithPredicates(providerChanged))
	if len(r.WatchNamespaces) == 0 {
		b = b.Watches(&v1alpha1.ClusterEmbedProvider{}, handler.EnqueueRequestsFromMapFunc(r.requestsForProvider),
			builder.WithPredicates(providerChanged))
	}
	return b.WithOptions(controller.Options{MaxConcurrentReconciles: max(r.MaxConcurrentReconciles, 1)}).
		Named("embedtokenrequest").
		Complete(r)
}
