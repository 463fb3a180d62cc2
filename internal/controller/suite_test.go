package controller_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/controller"
	"github.com/embedtokens/embed-token-operator/internal/issuance"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/egress"
	"github.com/embedtokens/embed-token-operator/internal/provider/egress/egresstest"
	"github.com/embedtokens/embed-token-operator/internal/provider/qrvey"
	"github.com/embedtokens/embed-token-operator/internal/provider/registry"
	"github.com/embedtokens/embed-token-operator/internal/template"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

// The suite runs the real manager against a real kube-apiserver and etcd
// (built by hack/envtest-assets.sh; `make test` sets KUBEBUILDER_ASSETS).
// `make test` runs it on several Ginkgo processes (`go tool ginkgo -p`):
// BeforeSuite runs in each, so each has its own API server, manager and
// vendor simulators, and specs of one process never see another's. A
// process runs its specs one after another, so a spec may stop or replace
// its process's manager without Serial: no other spec sees that manager
// meanwhile. The budgets specs measure under load (first tokens, renewals
// beside a flood) hold with the other processes busy, with room to spare;
// the longest specs are given slowestSpec or slowSpec, so Ginkgo starts
// them first and the short ones fill the processes around them.
var (
	testEnv   *envtest.Environment
	cfg       *rest.Config
	k8sClient client.Client
	scheme    = runtime.NewScheme()
	stopMgr   context.CancelFunc
	// testDNS serves the vendor host names specs make up; the managers
	// resolve vendor hosts through it (and /etc/hosts) only.
	testDNS = egresstest.NewDNS()
)

// slowSpec marks the specs that take ten seconds or more (token lifetimes,
// backoffs and loads that run in real time), slowestSpec those that take
// half a minute or more: Ginkgo hands out the slowest first, then the slow
// ones, so none of them starts last and holds up the end of the suite.
var (
	slowSpec    = SpecPriority(1)
	slowestSpec = SpecPriority(2)
)

// allowVendorCIDRs is the managers' --allow-vendor-cidrs: the simulators
// listen on 127.0.0.1, and nothing else the egress guard refuses is allowed,
// so other loopback addresses (127.0.0.2) stand for what must stay out of
// reach.
var allowVendorCIDRs = []egress.Allowed{{Prefix: netip.MustParsePrefix("127.0.0.1/32")}}

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controller Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)

	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))

	testEnv = harness.Environment(filepath.Join("..", ".."))
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred(), "start envtest; run through `make test` so KUBEBUILDER_ASSETS is set")

	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	stopMgr = startManager()
})

var _ = AfterSuite(func() {
	if stopMgr != nil {
		stopMgr()
	}
	Expect(testEnv.Stop()).To(Succeed())
})

// startManager runs the operator's manager, wired exactly as cmd/main.go
// wires it, and returns a function that stops it and waits until it has.
func startManager() context.CancelFunc {
	return startManagerWithLogger(logr.Logger{})
}

// startManagerWithLogger is startManager with the manager's own logger (the
// suite's when zero), so a spec can capture everything the operator logs.
// operatorOptions are the suite manager's options with a metrics registry
// of their own, for an operator a spec starts beside or instead of it.
func operatorOptions() controller.Options {
	return controller.Options{
		Providers:               suiteProviders(),
		MaxConcurrentReconciles: 4,
		MetricsRegisterer:       prometheus.NewRegistry(),
		AllowVendorCIDRs:        allowVendorCIDRs,
		VendorResolver:          testDNS.Resolver(),
		MinRenewInterval:        suiteMinInterval,
		MinRefreshInterval:      suiteMinInterval,
		Reconciled:              barriers.observe,
	}
}

// suiteMinInterval is the suite managers' --min-renew-interval and
// --min-refresh-interval: specs watch renewals of tokens the vendor grants
// for a few seconds, and force refreshes one after another. Specs about
// the defaults start a manager with them.
const suiteMinInterval = time.Second

func startManagerWithLogger(logger logr.Logger) context.CancelFunc {
	return startOperator(cfg, logger, 0, controller.Options{
		Providers:               suiteProviders(),
		MaxConcurrentReconciles: 4,
		CredentialCheckInterval: time.Second,
		AllowVendorCIDRs:        allowVendorCIDRs,
		VendorResolver:          testDNS.Resolver(),
		MinRenewInterval:        suiteMinInterval,
		MinRefreshInterval:      suiteMinInterval,
		Reconciled:              barriers.observe,
	})
}

// suiteProviders are every vendor's provider, the Qrvey one granting the
// lifetimes set by fixture.grantOnly.
func suiteProviders() map[string]provider.Provider {
	providers := registry.All()
	providers[v1alpha1.VendorQrvey] = grantingQrvey{qrvey.New()}
	return providers
}

// vendorGrants maps a simulated Qrvey's URL and a user ("" for all) to
// the longest lifetime it grants them (fixture.grantOnly).
var vendorGrants sync.Map

// grantKey is a key of vendorGrants.
type grantKey struct{ url, user string }

// grantingQrvey is the Qrvey provider of a vendor that may grant less than
// asked, as vendors do: Qrvey tokens are opaque and live as long as asked,
// so the suite shortens the expiry the provider reports for the simulators
// in vendorGrants, the way a vendor reporting a shorter expiry would.
type grantingQrvey struct{ *qrvey.Provider }

func (p grantingQrvey) Issue(ctx context.Context, req provider.Request) (provider.Token, error) {
	tok, err := p.Provider.Issue(ctx, req)
	if err != nil || req.Config.Qrvey == nil {
		return tok, err
	}
	granted, ok := vendorGrants.Load(grantKey{url: req.Config.Qrvey.URL, user: req.Params.Qrvey.UserID})
	if !ok {
		granted, ok = vendorGrants.Load(grantKey{url: req.Config.Qrvey.URL})
	}
	if ok && tok.ExpiresAt.Sub(tok.IssuedAt) > granted.(time.Duration) {
		tok.ExpiresAt = tok.IssuedAt.Add(granted.(time.Duration))
	}
	return tok, nil
}

// startOperator runs a manager on restCfg, wired as cmd/main.go wires it
// with opts (its cache watching opts.WatchNamespaces), and returns a
// function that stops it. A zero logger is the suite's, a zero syncTimeout
// controller-runtime's default.
func startOperator(restCfg *rest.Config, logger logr.Logger, syncTimeout time.Duration, opts controller.Options) context.CancelFunc {
	stop, _ := startOperatorWithIssuer(restCfg, logger, syncTimeout, opts)
	return stop
}

// startOperatorWithIssuer is startOperator, also returning the Issuer the
// manager's reconciler shares, as cmd/main.go shares it with the token
// endpoint.
func startOperatorWithIssuer(restCfg *rest.Config, logger logr.Logger, syncTimeout time.Duration,
	opts controller.Options) (context.CancelFunc, *issuance.Issuer) {
	mgr, opts := newOperator(restCfg, logger, syncTimeout, opts)
	return runManager(mgr), opts.Issuer
}

// newOperator builds, without starting it, a manager wired as startOperator
// wires it, and returns it with opts completed by what its controllers
// share with the token endpoint: the Issuer and the compiled templates.
func newOperator(restCfg *rest.Config, logger logr.Logger, syncTimeout time.Duration,
	opts controller.Options) (ctrl.Manager, controller.Options) {
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:     scheme,
		Logger:     logger,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      controller.CacheOptions(opts.WatchLabelSelector, opts.WatchNamespaces...),
		Controller: config.Controller{SkipNameValidation: ptr.To(true), CacheSyncTimeout: syncTimeout},
	})
	Expect(err).NotTo(HaveOccurred())
	opts.Issuer, err = controller.NewIssuer(mgr, opts)
	Expect(err).NotTo(HaveOccurred())
	if opts.Templates == nil {
		opts.Templates = template.NewCache(0)
	}
	Expect(controller.Setup(mgr, opts)).To(Succeed())
	return mgr, opts
}

// runManager starts mgr and returns a function that stops it and waits,
// for up to a minute, until it has.
func runManager(mgr ctrl.Manager) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	return func() {
		cancel()
		Eventually(done, time.Minute).Should(BeClosed(), "the manager stops")
	}
}
