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

package endpointbench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/controller"
	"github.com/embedtokens/embed-token-operator/internal/endpointserver"
	"github.com/embedtokens/embed-token-operator/internal/ondemand"
	"github.com/embedtokens/embed-token-operator/internal/provider/egress"
	"github.com/embedtokens/embed-token-operator/internal/provider/registry"
	"github.com/embedtokens/embed-token-operator/internal/servingcert"
	"github.com/embedtokens/embed-token-operator/internal/template"
	"github.com/embedtokens/embed-token-operator/internal/tokenendpoint"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/pkg/tokenclient"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

// The cluster objects every benchmark uses.
const (
	namespace      = "shop"
	providerName   = "qrvey"
	templateName   = "per-user"
	callerAccount  = "web"
	systemNS       = "embed-token-operator-system"
	certSecretName = "bench-token-endpoint-tls"
	// tokenLifetime is what the template asks the vendor for; the
	// endpoint's default minValidFor is a third of it.
	tokenLifetime = time.Hour
	// callers is the number of concurrent backends calling the endpoint,
	// each with its own ServiceAccount token and connections.
	callers = 64
	// workers is the manager's --max-concurrent-reconciles default, from
	// which the issuance path's call slots are derived.
	workers = 10
)

// world is what the benchmarks share: the API server, the simulator, the
// manager with the operator's controllers and issuance path, the serving
// certificate and the callers' ServiceAccount tokens.
type world struct {
	env     *envtest.Environment
	cfg     *rest.Config
	client  client.Client
	sim     *vendorsim.Server
	mgr     ctrl.Manager
	opts    controller.Options
	certs   *servingcert.Source
	bearers []string
	// metrics is the manager's registry, with the vendor call histogram.
	metrics   *prometheus.Registry
	stopMgr   context.CancelFunc
	mgrStoped chan struct{}
}

var (
	shared    *world
	setupOnce sync.Once
	setupErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.stopMgr()
		<-shared.mgrStoped
		shared.sim.Close()
		_ = shared.env.Stop()
	}
	os.Exit(code)
}

// setup starts the shared world once, for the first benchmark that needs it.
func setup(b *testing.B) *world {
	b.Helper()
	setupOnce.Do(func() { shared, setupErr = start() })
	if setupErr != nil {
		b.Fatalf("setting up (run through `make bench` so KUBEBUILDER_ASSETS is set): %v", setupErr)
	}
	return shared
}

func start() (*world, error) {
	ctrllog.SetLogger(logr.Discard())
	ctx := context.Background()
	w := &world{env: harness.Environment(filepath.Join("..", ".."))}
	var err error
	if w.cfg, err = w.env.Start(); err != nil {
		return nil, fmt.Errorf("starting envtest: %w", err)
	}
	// The manager's client budget, raised as test/bench raises it, so the
	// endpoint's TokenReviews and SubjectAccessReviews are not throttled
	// client-side during warm-up.
	w.cfg.QPS, w.cfg.Burst = 1000, 2000
	if w.client, err = client.New(w.cfg, client.Options{Scheme: harness.Scheme}); err != nil {
		return nil, fmt.Errorf("admin client: %w", err)
	}
	w.sim = vendorsim.New(vendorsim.Options{})
	if err := w.sim.Start(); err != nil {
		return nil, fmt.Errorf("starting the vendor simulator: %w", err)
	}
	if err := w.applyFixtures(ctx); err != nil {
		return nil, err
	}
	if err := w.startManager(); err != nil {
		return nil, err
	}
	if err := w.waitReady(ctx); err != nil {
		return nil, err
	}
	clientset, err := kubernetes.NewForConfig(w.cfg)
	if err != nil {
		return nil, fmt.Errorf("clientset: %w", err)
	}
	for range callers {
		tr, err := clientset.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, callerAccount, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{Audiences: []string{v1alpha1.TokenEndpointAudience}}}, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("TokenRequest: %w", err)
		}
		w.bearers = append(w.bearers, tr.Status.Token)
	}
	return w, nil
}

// applyFixtures creates the Qrvey provider on the simulator, a per-user
// template, the callers' ServiceAccount and the Role granting it tokens,
// and the namespace of the endpoint's TLS Secret.
func (w *world) applyFixtures(ctx context.Context) error {
	fx := harness.QrveyFixture{Namespace: namespace, Provider: providerName, SimURL: w.sim.URL()}
	if err := fx.Apply(ctx, w.client); err != nil {
		return err
	}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNS}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: callerAccount}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "embed-tokens"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group},
				Resources: []string{v1alpha1.TokenSubresource}, Verbs: []string{"create"}}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "embed-tokens"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "embed-tokens"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: callerAccount}}},
		&v1alpha1.EmbedTokenTemplate{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: templateName},
			Spec: v1alpha1.EmbedTokenTemplateSpec{
				ProviderRef:  v1alpha1.ProviderRef{Name: providerName},
				VendorParams: v1alpha1.VendorParams{Qrvey: &v1alpha1.QrveyParams{UserID: "set-per-call", AppID: "app-1"}},
				Lifetime:     &metav1.Duration{Duration: tokenLifetime},
				Parameters:   []v1alpha1.TemplateParameter{{Name: "user", Path: "qrvey.userID"}},
			},
		},
	}
	for _, o := range objs {
		if err := w.client.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// startManager runs the operator's controllers and issuance path as
// cmd/main.go wires them, and the certificate source of the endpoint's
// TLS Secret, which the operator's rotator writes first.
func (w *world) startManager() error {
	mgr, err := ctrl.NewManager(w.cfg, ctrl.Options{
		Scheme:                 harness.Scheme,
		Logger:                 logr.Discard(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  controller.CacheOptions(nil),
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	w.mgr = mgr
	w.metrics = prometheus.NewRegistry()
	w.opts = controller.Options{
		Providers:               registry.All(),
		MaxConcurrentReconciles: workers,
		AllowVendorCIDRs:        []egress.Allowed{{Prefix: netip.MustParsePrefix("127.0.0.1/32")}},
		MetricsRegisterer:       w.metrics,
		Templates:               template.NewCache(0),
	}
	if w.opts.Issuer, err = controller.NewIssuer(mgr, w.opts); err != nil {
		return fmt.Errorf("issuer: %w", err)
	}
	if err := controller.Setup(mgr, w.opts); err != nil {
		return fmt.Errorf("controllers: %w", err)
	}
	direct, err := client.New(w.cfg, client.Options{Scheme: harness.Scheme})
	if err != nil {
		return fmt.Errorf("direct client: %w", err)
	}
	rotator, err := servingcert.NewRotator(direct, servingcert.RotatorOptions{Namespace: systemNS, SecretName: certSecretName,
		DNSNames: servingcert.DNSNames("bench-token-endpoint", systemNS), IPs: servingcert.IPAddresses()})
	if err != nil {
		return fmt.Errorf("certificate rotator: %w", err)
	}
	if _, err := rotator.Ensure(context.Background()); err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	clientset, err := kubernetes.NewForConfig(w.cfg)
	if err != nil {
		return fmt.Errorf("clientset: %w", err)
	}
	w.certs = servingcert.NewSource(clientset, systemNS, certSecretName)
	if err := mgr.Add(w.certs); err != nil {
		return fmt.Errorf("certificate source: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.stopMgr, w.mgrStoped = cancel, make(chan struct{})
	go func() {
		defer close(w.mgrStoped)
		_ = mgr.Start(ctx)
	}()
	return w.certs.WaitForCertificate(ctx, time.Minute)
}

// waitReady waits until the template controller reports the template Ready.
func (w *world) waitReady(ctx context.Context) error {
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		t := &v1alpha1.EmbedTokenTemplate{}
		if err := w.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: templateName}, t); err != nil {
			return false, nil
		}
		for _, c := range t.Status.Conditions {
			if c.Type == v1alpha1.ConditionReady && c.Status == metav1.ConditionTrue && t.Status.ObservedGeneration == t.Generation {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("template %s/%s never became Ready: %w", namespace, templateName, err)
	}
	return nil
}

// newEndpoint builds a token endpoint over the manager's issuance path, as
// cmd/tokenendpoint.go does, with its own metrics registry and the
// manager's JSON audit log written to nowhere (its cost is part of each
// call). opts' zero fields are filled; callers may set the cache bounds,
// the clock, the Authenticator and Authorizer, and wrap the Minter.
func (w *world) newEndpoint(b *testing.B, opts tokenendpoint.Options, wrap func(tokenendpoint.Minter) tokenendpoint.Minter) *tokenendpoint.Endpoint {
	b.Helper()
	var m tokenendpoint.Minter = &ondemand.Minter{Issuer: w.opts.Issuer, Templates: w.opts.Templates,
		Providers: w.opts.Providers, APIReader: w.mgr.GetAPIReader()}
	if wrap != nil {
		m = wrap(m)
	}
	opts.Templates, opts.Minter, opts.Client = w.mgr.GetCache(), m, w.mgr.GetClient()
	opts.MetricsRegisterer = prometheus.NewRegistry()
	opts.Logger = zap.New(zap.WriteTo(io.Discard))
	ep, err := tokenendpoint.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	return ep
}

// served is an endpoint served over TLS by the manager's endpoint server.
type served struct {
	url string
	// throttled and unavailable count 429 and 503 answers: each is one
	// retry by a tokenclient caller.
	throttled, unavailable atomic.Int64
}

// serve serves h over TLS on a loopback port until the benchmark ends.
func (w *world) serve(b *testing.B, h http.Handler) *served {
	b.Helper()
	s := &served{}
	counting := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: rw, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		switch sw.code {
		case http.StatusTooManyRequests:
			s.throttled.Add(1)
		case http.StatusServiceUnavailable:
			s.unavailable.Add(1)
		}
	})
	srv := endpointserver.New("127.0.0.1:0", counting, w.certs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Start(ctx)
	}()
	b.Cleanup(func() { cancel(); <-done })
	addrCtx, stop := context.WithTimeout(ctx, time.Minute)
	defer stop()
	addr := srv.Addr(addrCtx)
	if addr == nil {
		b.Fatal("the endpoint server did not listen")
	}
	s.url = "https://" + addr.String()
	return s
}

// statusWriter records the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// callerClients returns one tokenclient per caller, each with its own
// ServiceAccount token and HTTP/1.1 keep-alive connections (at most
// conns), trusting only the CA the operator's rotator published.
func (w *world) callerClients(b *testing.B, url string, conns int) []*tokenclient.Client {
	b.Helper()
	out := make([]*tokenclient.Client, 0, len(w.bearers))
	for _, bearer := range w.bearers {
		c, err := tokenclient.New(tokenclient.Options{
			Endpoint:    url,
			TokenSource: func(context.Context) (string, error) { return bearer, nil },
			CAData:      w.certs.CABundle(),
			HTTPClient: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
				MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: time.Minute}},
			// A cold burst is answered 429 until a call slot frees: the
			// callers retry after Retry-After for as long as it takes.
			MaxAttempts:   1 << 20,
			MaxRetryAfter: time.Minute,
		})
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// userIDs returns n distinct user names starting with prefix.
func userIDs(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%06d", prefix, i)
	}
	return out
}

// fetchAll fetches every user's token through the callers (user i through
// caller i mod len(callers)) on at most parallel goroutines, all released
// at once, and returns each call's time from the release to its token,
// retries included, and the number of users who got none.
func fetchAll(ctx context.Context, clients []*tokenclient.Client, users []string, parallel int) ([]time.Duration, int) {
	lat := make([]time.Duration, len(users))
	var failed atomic.Int64
	var next atomic.Int64
	release := make(chan struct{})
	var wg sync.WaitGroup
	var start time.Time
	for range min(parallel, len(users)) {
		wg.Go(func() {
			<-release
			for {
				i := int(next.Add(1) - 1)
				if i >= len(users) {
					return
				}
				_, err := clients[i%len(clients)].Fetch(ctx, namespace, templateName, map[string]string{"user": users[i]})
				lat[i] = time.Since(start)
				if err != nil {
					failed.Add(1)
				}
			}
		})
	}
	start = time.Now()
	close(release)
	wg.Wait()
	return lat, int(failed.Load())
}

// percentile is the p-th percentile (0 < p <= 100) of d, in milliseconds.
func percentile(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := min(int(float64(len(s))*p/100), len(s)-1)
	return float64(s[i]) / float64(time.Millisecond)
}

// reviews are the TokenReviews and SubjectAccessReviews the API server
// has answered, from its apiserver_request_total.
func (w *world) reviews(b *testing.B) (tokenReviews, accessReviews float64) {
	b.Helper()
	counts, err := harness.ScrapeRequestCounts(context.Background(), w.cfg)
	if err != nil {
		b.Fatal(err)
	}
	for k, v := range counts {
		switch k.Resource {
		case "tokenreviews":
			tokenReviews += v
		case "subjectaccessreviews":
			accessReviews += v
		}
	}
	return tokenReviews, accessReviews
}

// vendorSeconds is the count and sum of the vendor calls' durations as the
// issuance path observed them (embedtoken_vendor_request_duration_seconds).
func (w *world) vendorSeconds(b *testing.B) (count uint64, sum float64) {
	b.Helper()
	families, err := w.metrics.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "embedtoken_vendor_request_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			count += m.GetHistogram().GetSampleCount()
			sum += m.GetHistogram().GetSampleSum()
		}
	}
	return count, sum
}
