package issuance

import (
	"cmp"
	"net"
	"sync/atomic"
	"time"

	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/internal/credentials"
	"github.com/embedtokens/embed-token-operator/internal/fairness"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/egress"
	"github.com/embedtokens/embed-token-operator/internal/requestrules"
)

// DefaultMaxVendorTimeout bounds each vendor call whatever a provider's
// spec.timeout says (--max-vendor-timeout), so a vendor that never answers
// holds a worker for at most this long.
const DefaultMaxVendorTimeout = 30 * time.Second

// Observer records each vendor call: its vendor, how long it took and its
// error (nil on success). The operator's Prometheus metrics implement it.
type Observer interface {
	ObserveIssue(vendor string, took time.Duration, err error)
}

// Options configures an Issuer.
type Options struct {
	// Client reads providers from the manager's cache.
	Client client.Reader
	// APIReader reads uncached: credential Secrets and Namespaces, which
	// the manager does not cache.
	APIReader client.Reader
	// Providers maps a vendor name (v1alpha1.Vendor*) to its implementation.
	Providers map[string]provider.Provider
	// RequestRules holds each provider's compiled requestValidations, shared
	// with the provider reconcilers; nil compiles them on every use.
	RequestRules *requestrules.Cache
	// Workers is the number of reconcile workers
	// (--max-concurrent-reconciles); the call caps are shares of it.
	Workers int
	// MaxVendorTimeout caps every provider's spec.timeout;
	// DefaultMaxVendorTimeout when zero.
	MaxVendorTimeout time.Duration
	// WatchNamespaces is set in namespaced mode (--watch-namespaces):
	// ClusterEmbedProviders are then neither read nor served.
	WatchNamespaces []string
	// Egress is the --allow-vendor-cidrs part of the egress guard every
	// vendor connection passes; the zero Policy applies the built-in rules
	// only.
	Egress egress.Policy
	// VendorResolver resolves vendor host names; the system resolver when
	// nil.
	VendorResolver *net.Resolver
	// ServiceAccounts requests the ServiceAccount tokens of providers that
	// sign in with a clientAssertion (create on serviceaccounts/token);
	// when nil such providers fail with ProviderInvalid.
	ServiceAccounts corev1client.ServiceAccountsGetter
	// Metrics, when set, records every vendor call.
	Metrics Observer
	// Clock is the real clock when nil.
	Clock clock.PassiveClock
}

// Issuer is the one path by which the operator gets a token from a vendor,
// built once per manager and shared by the EmbedTokenRequest reconciler and
// the token endpoint: provider resolution and checks, credentials, the
// lifetime cap, fair scheduling, the vendor call and redaction. See the
// package documentation.
type Issuer struct {
	client, apiReader client.Reader
	providers         map[string]provider.Provider
	requestRules      *requestrules.Cache
	watchNamespaces   []string
	egress            egress.Policy
	resolver          *net.Resolver
	metrics           Observer
	clock             clock.PassiveClock

	clients   *httpClients
	credCache *credentials.Cache
	saTokens  *credentials.ServiceAccountTokens
	gates     *fairness.Gates
	// waiters numbers the endpoint's blocking calls, which wait in the
	// same queues as the reconciler's requests.
	waiters atomic.Uint64
	// onWait, when set (by tests), is told each time a blocking call goes
	// to wait, and why.
	onWait func(fairness.WaitReason)
}

// New returns an Issuer configured by opts.
func New(opts Options) *Issuer {
	clk := opts.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Issuer{
		client: opts.Client, apiReader: opts.APIReader, providers: opts.Providers, requestRules: opts.RequestRules,
		watchNamespaces: opts.WatchNamespaces, egress: opts.Egress, resolver: opts.VendorResolver, metrics: opts.Metrics, clock: clk,
		clients:   newHTTPClients(cmp.Or(opts.MaxVendorTimeout, DefaultMaxVendorTimeout), clk),
		credCache: credentials.NewCache(),
		saTokens:  credentials.NewServiceAccountTokens(opts.ServiceAccounts, clk),
		gates:     fairness.NewGates(max(opts.Workers, 1), nil),
	}
}

// Gates are the fairness gates every vendor call passes: the reconciler
// points their wake-ups at its queue, and settles a request's place in them
// when it no longer waits.
func (i *Issuer) Gates() *fairness.Gates { return i.gates }

// RequestRules is the compiled-rules cache the Issuer checks requests with,
// shared with the provider reconcilers.
func (i *Issuer) RequestRules() *requestrules.Cache { return i.requestRules }
