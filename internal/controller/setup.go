package controller

import (
	"cmp"
	"fmt"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/eventwriter"
	"github.com/embedtokens/embed-token-operator/internal/fairness"
	"github.com/embedtokens/embed-token-operator/internal/issuance"
	"github.com/embedtokens/embed-token-operator/internal/metrics"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/egress"
	"github.com/embedtokens/embed-token-operator/internal/refresh"
	"github.com/embedtokens/embed-token-operator/internal/requestrules"
	"github.com/embedtokens/embed-token-operator/internal/template"
)

// CacheOptions limits the manager's Secret cache to Secrets this operator
// writes. Credential Secrets are read directly, so thousands of unrelated
// Secrets in the cluster cost no memory. The reconciler reads and watches
// its Secrets as metadata only (their annotations record what it needs), so
// no token is held in memory; a typed Secret read through the manager's
// client would start a second, full informer, so Secret data is read
// through the API reader instead. Cached objects drop their
// managedFields, which the operator never reads and which are often the
// largest part of a small object's metadata, and share the strings they
// repeat (internStrings). A non-nil shard selector (the
// --watch-label-selector flag) limits EmbedTokenRequests and their Secrets
// to one shard's, so several instances split a cluster's requests. Given
// watchNamespaces (the --watch-namespaces flag), every watch and list is
// restricted to those namespaces, so the operator needs Roles there and no
// cluster-wide rights.
func CacheOptions(shard labels.Selector, watchNamespaces ...string) cache.Options {
	secrets := labels.SelectorFromSet(labels.Set{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue})
	opts := cache.Options{
		ByObject:         map[client.Object]cache.ByObject{},
		DefaultTransform: stripAndIntern(cache.TransformStripManagedFields()),
		// A read of a type no controller watches fails instead of quietly
		// starting a cluster-wide informer: Secrets read typed (a full
		// copy of every managed Secret beside the metadata cache), Pods,
		// Namespaces and workloads are read through the API reader.
		ReaderFailOnMissingInformer: true,
	}
	if shard != nil && !shard.Empty() {
		reqs, _ := shard.Requirements()
		secrets = secrets.Add(reqs...)
		opts.ByObject[&v1alpha1.EmbedTokenRequest{}] = cache.ByObject{Label: shard}
	}
	opts.ByObject[&corev1.Secret{}] = cache.ByObject{Label: secrets}
	if len(watchNamespaces) > 0 {
		opts.DefaultNamespaces = make(map[string]cache.Config, len(watchNamespaces))
		for _, ns := range watchNamespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return opts
}

// Options configures the controllers Setup registers.
type Options struct {
	// Providers maps a vendor name to its implementation.
	Providers map[string]provider.Provider
	// MaxConcurrentReconciles bounds parallel EmbedTokenRequest reconciles.
	MaxConcurrentReconciles int
	// MaxVendorTimeout caps each vendor call whatever a provider's
	// spec.timeout says; issuance.DefaultMaxVendorTimeout when zero.
	MaxVendorTimeout time.Duration
	// Clock defaults to the real clock.
	Clock clock.PassiveClock
	// Reconciled, when set, is called after every reconcile of an
	// EmbedTokenRequest that exists, with the request as that reconcile
	// read it. It is a test hook: a suite waits for the reconcile that
	// observed a change it made, instead of watching for a while that
	// nothing happens. It must not modify the request.
	Reconciled func(*v1alpha1.EmbedTokenRequest)
	// CredentialCheckInterval is how often providers' credential Secrets are
	// checked for rotation; DefaultCredentialCheckInterval when zero.
	CredentialCheckInterval time.Duration
	// MetricsRegisterer receives the operator's metrics; controller-runtime's
	// registry (served on the manager's metrics endpoint) when nil.
	MetricsRegisterer prometheus.Registerer
	// WatchNamespaces, when set, runs the operator in namespaced mode for
	// teams without cluster-wide rights: the manager's cache must be built
	// with CacheOptions(WatchLabelSelector, WatchNamespaces...),
	// ClusterEmbedProviders are not watched, and a request that references
	// one is reported, not served.
	WatchNamespaces []string
	// WatchLabelSelector (--watch-label-selector), when set, is the shard
	// this instance serves: the manager's cache must be built with
	// CacheOptions(WatchLabelSelector, ...). Requests outside it are left to
	// other instances; one relabelled into it adopts its Secret from the
	// shard it left.
	WatchLabelSelector labels.Selector
	// AllowVendorCIDRs (--allow-vendor-cidrs) are ranges, each with one
	// port or all, every provider's vendor calls may reach although the
	// egress guard would refuse them: a simulator on loopback, an in-cluster
	// vendor for EmbedProviders.
	AllowVendorCIDRs []egress.Allowed
	// OwnPorts are the ports the manager listens on (metrics, health
	// probes), which no vendor call may reach on loopback or on this pod's
	// addresses, whatever AllowVendorCIDRs allows.
	OwnPorts []uint16
	// VendorResolver resolves vendor host names; the system resolver when
	// nil. Tests serve names from memory through it.
	VendorResolver *net.Resolver
	// MinRenewInterval (--min-renew-interval) is the least time between
	// issuing a request's token and renewing it; refresh.DefaultMinRenewInterval
	// when zero.
	MinRenewInterval time.Duration
	// MinRefreshInterval (--min-refresh-interval) is the least time between
	// a request's last issue and one its refresh annotation forces;
	// refresh.DefaultMinRefreshInterval when zero.
	MinRefreshInterval time.Duration
	// NamespaceWriteShare (--namespace-write-share) is the share, in
	// (0, 1], of the manager's client rate limit (its rest.Config's QPS
	// and burst) one namespace may spend issuing tokens;
	// fairness.DefaultNamespaceWriteShare when zero.
	NamespaceWriteShare float64
	// Issuer, when set, is the issuance path the request reconciler
	// shares with the token endpoint; it must have been built by NewIssuer
	// for the same manager and options. Setup builds one when nil.
	Issuer *issuance.Issuer
	// Templates holds compiled EmbedTokenTemplates, for the template
	// reconciler and the token endpoint to share; a new one of
	// template.DefaultCacheSize when nil.
	Templates *template.Cache
}

// NewIssuer builds the issuance path for mgr as opts configure it: the
// one the request reconciler (Setup) and the token endpoint share, so
// their vendor calls count against the same caps and rate limits.
func NewIssuer(mgr ctrl.Manager, opts Options) (*issuance.Issuer, error) {
	reg := opts.MetricsRegisterer
	if reg == nil {
		reg = ctrlmetrics.Registry
	}
	m, err := metrics.NewMetrics(reg, mgr.GetCache())
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	// Only the typed client has the serviceaccounts/token subresource; it
	// shares the manager's HTTP client and rate limits.
	core, err := corev1client.NewForConfigAndClient(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return nil, fmt.Errorf("building the TokenRequest client: %w", err)
	}
	return issuance.New(issuance.Options{
		Client:           mgr.GetClient(),
		ServiceAccounts:  core,
		APIReader:        mgr.GetAPIReader(),
		Providers:        opts.Providers,
		RequestRules:     requestrules.NewCache(),
		Workers:          max(opts.MaxConcurrentReconciles, 1),
		MaxVendorTimeout: opts.MaxVendorTimeout,
		WatchNamespaces:  opts.WatchNamespaces,
		Egress:           egress.NewPolicy(opts.AllowVendorCIDRs...).WithOwnPorts(egress.LocalAddrs(), opts.OwnPorts...),
		VendorResolver:   opts.VendorResolver,
		Metrics:          m,
		Clock:            opts.Clock,
	}), nil
}

// Setup registers every controller of the operator with mgr, so the binary
// and the test suites run exactly the same wiring.
func Setup(mgr ctrl.Manager, opts Options) error {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.MetricsRegisterer == nil {
		opts.MetricsRegisterer = ctrlmetrics.Registry
	}
	m, err := metrics.NewMetrics(opts.MetricsRegisterer, mgr.GetCache())
	if err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	recorder, err := eventwriter.NewForConfig(mgr.GetConfig(), mgr.GetHTTPClient(), mgr.GetScheme(), "embed-token-operator",
		eventwriter.Options{Dropped: m.EventsDropped, Log: mgr.GetLogger().WithName("events")})
	if err != nil {
		return err
	}
	if err := mgr.Add(recorder); err != nil {
		return fmt.Errorf("adding the event writer: %w", err)
	}
	issuer := opts.Issuer
	if issuer == nil {
		if issuer, err = NewIssuer(mgr, opts); err != nil {
			return err
		}
	}
	requests := &EmbedTokenRequestReconciler{
		Client:                  mgr.GetClient(),
		APIReader:               mgr.GetAPIReader(),
		Recorder:                recorder,
		Clock:                   opts.Clock,
		Reconciled:              opts.Reconciled,
		Issuer:                  issuer,
		MaxConcurrentReconciles: opts.MaxConcurrentReconciles,
		Metrics:                 m,
		WatchNamespaces:         opts.WatchNamespaces,
		Sharded:                 opts.WatchLabelSelector != nil && !opts.WatchLabelSelector.Empty(),
		Refresh:                 refresh.Settings{MinRenewInterval: opts.MinRenewInterval, MinRefreshInterval: opts.MinRefreshInterval},
		NamespaceWrites: fairness.NamespaceWriteBudget(mgr.GetConfig().QPS, mgr.GetConfig().Burst,
			cmp.Or(opts.NamespaceWriteShare, fairness.DefaultNamespaceWriteShare)),
	}
	if err := requests.SetupWithManager(mgr); err != nil {
		return err
	}
	if opts.Templates == nil {
		opts.Templates = template.NewCache(0)
	}
	templates := &EmbedTokenTemplateReconciler{Client: mgr.GetClient(), Providers: issuerChecker{issuer},
		Templates: opts.Templates, WatchNamespaces: opts.WatchNamespaces}
	if err := templates.SetupWithManager(mgr); err != nil {
		return err
	}
	return SetupProviderReconcilers(mgr, opts.Providers, cmp.Or(opts.CredentialCheckInterval, DefaultCredentialCheckInterval),
		len(opts.WatchNamespaces) == 0, issuer.RequestRules(), issuer)
}
