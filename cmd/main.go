// Command manager runs the embed-token-operator: it keeps vendor embed tokens
// fresh in Secrets for every EmbedTokenRequest in the cluster.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/controller"
	"github.com/embedtokens/embed-token-operator/internal/fairness"
	"github.com/embedtokens/embed-token-operator/internal/issuance"
	"github.com/embedtokens/embed-token-operator/internal/provider/registry"
	"github.com/embedtokens/embed-token-operator/internal/refresh"
	"github.com/embedtokens/embed-token-operator/internal/template"
)

func main() {
	var (
		metricsAddr, probeAddr           string
		secureMetrics, enableLeaderElect bool
		enableHTTP2                      bool
		qps                              float64
		burst, concurrency               int
		leaderElectionID                 string
		credentialCheck, vendorTimeout   time.Duration
		minRenew, minRefresh             time.Duration
		namespaceWriteShare              float64
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", "0", "The address the metrics endpoint binds to. "+
		"Use :8443 for HTTPS or :8080 for HTTP, or leave as 0 to disable the metrics service.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "The address the probe endpoint binds to.")
	flag.BoolVar(&enableLeaderElect, "leader-elect", false, "Enable leader election, so only one replica reconciles at a time.")
	flag.StringVar(&leaderElectionID, "leader-election-id", "embed-token-operator.embedtokens.io",
		"Name of the leader-election Lease; each shard (--watch-label-selector) needs its own.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true, "Serve metrics over HTTPS with authentication and authorization.")
	flag.BoolVar(&enableHTTP2, "enable-http2", false, "Enable HTTP/2 for the metrics server and the token endpoint (off by default: CVE-2023-44487).")
	flag.Float64Var(&qps, "kube-api-qps", 50, "Queries per second to the Kubernetes API server.")
	flag.IntVar(&burst, "kube-api-burst", 100, "Burst of queries to the Kubernetes API server.")
	flag.IntVar(&concurrency, "max-concurrent-reconciles", 10, "EmbedTokenRequests reconciled in parallel.")
	flag.DurationVar(&credentialCheck, "credential-check-interval", controller.DefaultCredentialCheckInterval,
		"How often providers' credential Secrets are checked for rotation.")
	flag.DurationVar(&vendorTimeout, "max-vendor-timeout", issuance.DefaultMaxVendorTimeout,
		"Upper bound on each vendor call, whatever a provider's spec.timeout says, so a vendor that never answers "+
			"holds a reconcile worker for at most this long.")
	flag.DurationVar(&minRenew, "min-renew-interval", refresh.DefaultMinRenewInterval,
		"Least time between issuing a request's token and renewing it, whatever lifetime the vendor granted, "+
			"so very short tokens cannot spend the API server's and the vendor's budget.")
	flag.DurationVar(&minRefresh, "min-refresh-interval", refresh.DefaultMinRefreshInterval,
		"Least time between a request's last token and one its embedtokens.io/refresh annotation forces; "+
			"a refresh asked for sooner is served when this has passed.")
	flag.Float64Var(&namespaceWriteShare, "namespace-write-share", fairness.DefaultNamespaceWriteShare,
		"Share (0-1] of --kube-api-qps and --kube-api-burst one namespace may spend issuing tokens, so a namespace "+
			"with many short-lived requests does not queue every other namespace's writes behind its own. "+
			"1 lets a single namespace use the whole client, as in a cluster with one tenant.")
	var watchNamespaces namespaceList
	flag.Var(&watchNamespaces, "watch-namespaces", "Comma-separated namespaces to watch (namespaced mode: needs Roles "+
		"there only, ClusterEmbedProviders are not served). Empty: the whole cluster.")
	var shard labelSelector
	flag.Var(&shard, "watch-label-selector", "Label selector of the EmbedTokenRequests (and their Secrets) this instance "+
		"serves, to split a cluster's requests across instances: '!embedtokens.io/shard' for the default shard, "+
		"'embedtokens.io/shard=b' for shard b. Empty: every request.")
	var allowVendorCIDRs cidrList
	flag.Var(&allowVendorCIDRs, "allow-vendor-cidrs", "Comma-separated addresses or CIDRs, each with the one port it opens, "+
		"that every provider's vendor calls may reach although the egress guard refuses them (loopback, link-local, "+
		"and private ranges for EmbedProviders), e.g. 127.0.0.1:8089 for a local simulator or 10.96.12.34:443 for one "+
		"in-cluster vendor Service; [fd00::1]:443 and 10.0.0.0/24:443 for IPv6 and ranges. An entry without a port "+
		"(10.0.0.0/24) opens every port. The operator's own metrics, health probe, pprof and token endpoint ports on "+
		"loopback and the "+
		"pod's addresses stay refused.")
	var endpoint tokenEndpointFlags
	endpoint.bind(flag.CommandLine)
	var rtFlags runtimeFlags
	rtFlags.bind(flag.CommandLine)
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	setupLog := ctrl.Log.WithName("setup")
	setMemoryLimit(setupLog)
	setGCPercent(setupLog)
	if vendorTimeout <= 0 {
		setupLog.Error(nil, "Invalid --max-vendor-timeout: it must be positive", "maxVendorTimeout", vendorTimeout)
		os.Exit(1)
	}
	if minRenew <= 0 || minRefresh <= 0 {
		setupLog.Error(nil, "Invalid --min-renew-interval or --min-refresh-interval: they must be positive",
			"minRenewInterval", minRenew, "minRefreshInterval", minRefresh)
		os.Exit(1)
	}
	if namespaceWriteShare <= 0 || namespaceWriteShare > 1 {
		setupLog.Error(nil, "Invalid --namespace-write-share: it must be in (0, 1]", "namespaceWriteShare", namespaceWriteShare)
		os.Exit(1)
	}
	if sel := shard.selector(); sel != nil {
		setupLog.Info("Serving only the EmbedTokenRequests this selector matches", "watchLabelSelector", sel.String())
	}
	if endpoint.enabled() {
		if err := endpoint.resolve(); err != nil {
			setupLog.Error(err, "Invalid token endpoint settings")
			os.Exit(1)
		}
		if sharesPort(endpoint.bindAddr, metricsAddr, probeAddr, rtFlags.pprofAddr) {
			setupLog.Error(nil, "The token endpoint's port is taken by the metrics, health probe or pprof address: "+
				"give --token-endpoint-bind-address a port of its own", "tokenEndpointBindAddress", endpoint.bindAddr)
			os.Exit(1)
		}
	}
	if len(allowVendorCIDRs) > 0 {
		setupLog.Info("Vendor calls may reach these ranges although the egress guard refuses them", "allowVendorCIDRs", allowVendorCIDRs.String())
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))

	var tlsOpts []func(*tls.Config)
	if !enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: metricsAddr, SecureServing: secureMetrics, TLSOpts: tlsOpts}
	if secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	restConfig := ctrl.GetConfigOrDie()
	restConfig.QPS, restConfig.Burst = float32(qps), burst
	mgrOpts := ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsOpts,
		HealthProbeBindAddress: probeAddr,
		LeaderElection:         enableLeaderElect,
		LeaderElectionID:       leaderElectionID,
		Cache:                  controller.CacheOptions(shard.selector(), watchNamespaces...),
	}
	if endpoint.enabled() {
		addCacheOptions(&mgrOpts.Cache)
	}
	rtFlags.apply(&mgrOpts)
	mgr, err := ctrl.NewManager(restConfig, mgrOpts)
	if err != nil {
		setupLog.Error(err, "Unable to create manager")
		os.Exit(1)
	}

	setupOpts := controller.Options{
		Providers: registry.All(), MaxConcurrentReconciles: concurrency, CredentialCheckInterval: credentialCheck,
		MaxVendorTimeout: vendorTimeout, WatchNamespaces: watchNamespaces, AllowVendorCIDRs: allowVendorCIDRs,
		OwnPorts: ownPorts(metricsAddr, probeAddr, rtFlags.pprofAddr, endpointAddr(endpoint)), WatchLabelSelector: shard.selector(),
		MinRenewInterval: minRenew, MinRefreshInterval: minRefresh, NamespaceWriteShare: namespaceWriteShare,
		// Compiled templates, shared by the template reconciler and the
		// token endpoint.
		Templates: template.NewCache(0),
	}
	// One issuance path, shared by the request reconciler and the token
	// endpoint, so their vendor calls count against the same caps.
	if setupOpts.Issuer, err = controller.NewIssuer(mgr, setupOpts); err != nil {
		setupLog.Error(err, "Unable to set up the issuance path")
		os.Exit(1)
	}
	if err := controller.Setup(mgr, setupOpts); err != nil {
		setupLog.Error(err, "Unable to set up controllers")
		os.Exit(1)
	}

	if endpoint.enabled() {
		handler, err := tokenHandler(context.Background(), mgr, endpoint, setupOpts)
		if err != nil {
			setupLog.Error(err, "Unable to set up the token endpoint")
			os.Exit(1)
		}
		if err := setupTokenEndpoint(mgr, endpoint, enableHTTP2, handler); err != nil {
			setupLog.Error(err, "Unable to set up the token endpoint")
			os.Exit(1)
		}
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		setupLog.Error(err, "Unable to set up health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		setupLog.Error(err, "Unable to set up ready check")
		os.Exit(1)
	}

	setupLog.Info("Starting manager")
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		setupLog.Error(err, "Problem running manager")
		os.Exit(1)
	}
}
