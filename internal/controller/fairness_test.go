package controller_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/controller"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/qrvey"
)

// productionWorkers is cmd/main.go's default --max-concurrent-reconciles.
const productionWorkers = 10

// One namespace's slow or rate-limited provider must not stall the renewals
// of every other namespace. The suite's manager is stopped meanwhile and one
// with the binary's defaults (10 workers, --max-vendor-timeout 30s) runs
// instead, so the numbers are the ones a default installation has.
var _ = Describe("Fair scheduling across providers", func() {
	It("keeps renewing a healthy namespace's tokens while a dead and a rate-limited provider have hundreds of requests", slowestSpec, func() {
		ctx := context.Background()
		dead, limited, healthy := newFixture(ctx), newFixtureWithProvider(ctx), newFixtureWithProvider(ctx)

		By("a provider whose endpoint accepts connections and never answers, with a 5m spec timeout")
		blackhole := newBlackhole()
		DeferCleanup(blackhole.close)
		dead.createCredentials(ctx)
		spec := dead.providerSpec()
		spec.Qrvey.URL = "http://" + blackhole.addr()
		spec.Timeout = &metav1.Duration{Duration: 5 * time.Minute}
		Expect(k8sClient.Create(ctx, &v1alpha1.EmbedProvider{
			ObjectMeta: metav1.ObjectMeta{Namespace: dead.ns, Name: "qrvey"}, Spec: spec})).To(Succeed())

		By("a provider limited to one request per second")
		p := get(ctx, &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: limited.ns, Name: "qrvey"}}).(*v1alpha1.EmbedProvider)
		p.Spec.RateLimit = &v1alpha1.RateLimit{RequestsPerSecond: 1, Burst: 1}
		Expect(k8sClient.Update(ctx, p)).To(Succeed())

		stopMgr()
		DeferCleanup(func() { stopMgr = startManager() })
		// Three renewals of 15 s tokens a minute need renewals sooner than
		// the default interval of 30 s.
		opts := defaultOptions()
		opts.MinRenewInterval = suiteMinInterval
		DeferCleanup(startOperator(cfg, logr.Logger{}, 0, opts))
		DeferCleanup(func() { deleteFixtures(ctx, dead, limited, healthy) })

		for i := range 200 {
			Expect(k8sClient.Create(ctx, limited.request(fmt.Sprintf("limited-%03d", i), time.Hour))).To(Succeed())
			if i < 50 {
				Expect(k8sClient.Create(ctx, dead.request(fmt.Sprintf("dead-%02d", i), time.Hour))).To(Succeed())
			}
		}
		Eventually(blackhole.accepted).Should(BeNumerically(">=", 2), "vendor calls hang on the dead provider")
		Eventually(limited.sim.CallCount).Should(BeNumerically(">=", 2), "the limited provider is being called")
		// Calls began while the 250 requests were being created; the rate
		// is checked from here, against the count seen here.
		limitedSince, limitedBase := time.Now(), limited.sim.CallCount()
		By("20 requests in another namespace whose vendor grants 15 s tokens")
		healthy.grantOnly(15 * time.Second)
		created := time.Now()
		names := make([]string, 20)
		for i := range names {
			names[i] = fmt.Sprintf("healthy-%02d", i)
			Expect(k8sClient.Create(ctx, healthy.request(names[i], time.Minute))).To(Succeed())
		}
		watchRenewals(ctx, healthy.ns, names, created)

		By("the dead provider holding at most 5 of the 10 workers, the limited one keeping to its rate")
		Expect(blackhole.maxOpen()).To(BeNumerically("<=", 5))
		Expect(limited.sim.CallCount()).To(BeNumerically("<=", limitedBase+int(time.Since(limitedSince).Seconds())+1))

		By("the others waiting without a failure")
		const slotWait, rateWait = "waiting for a free vendor call slot of EmbedProvider qrvey", "waiting for the rate limit of EmbedProvider qrvey"
		deadWaiting, limitedWaiting := waiting(ctx, dead.ns, slotWait), waiting(ctx, limited.ns, rateWait)
		Expect(deadWaiting).To(HaveLen(45), "50 requests, 5 calls in flight")
		Expect(len(limitedWaiting)).To(BeNumerically(">=", 100))

		By("--max-vendor-timeout (30s by default), not the provider's 5m, ending the hung calls")
		Eventually(func(g Gomega) {
			var list v1alpha1.EmbedTokenRequestList
			g.Expect(k8sClient.List(ctx, &list, client.InNamespace(dead.ns))).To(Succeed())
			failed := 0
			for _, etr := range list.Items {
				if readyReasonOf(&etr) == v1alpha1.ReasonVendorUnavailable {
					failed++
				}
			}
			g.Expect(failed).To(BeNumerically(">=", 2))
		}, 40*time.Second, time.Second).Should(Succeed())
		Expect(time.Since(blackhole.firstAccepted())).To(BeNumerically(">=", 29*time.Second))

		By("no status write while they keep waiting")
		stillDead, stillLimited := waiting(ctx, dead.ns, slotWait), waiting(ctx, limited.ns, rateWait)
		Expect(len(stillDead)).To(BeNumerically(">=", 40))
		Expect(len(stillLimited)).To(BeNumerically(">=", 80))
		for name, rv := range stillDead {
			Expect(deadWaiting).To(HaveKeyWithValue(name, rv))
		}
		for name, rv := range stillLimited {
			Expect(limitedWaiting).To(HaveKeyWithValue(name, rv))
		}
	})
})

// A ClusterEmbedProvider's rate limit is the platform's vendor quota: one
// namespace's backlog must not hold back another namespace's first token.
var _ = Describe("Fair shares of a shared provider's rate limit", func() {
	It("gives another namespace's first token within seconds while one namespace has 80 requests waiting", slowestSpec, func() {
		ctx := context.Background()
		platform, alice, bob := newFixture(ctx), newFixture(ctx), newFixture(ctx)
		platform.createCredentials(ctx)
		spec := platform.clusterSpec()
		spec.RateLimit = &v1alpha1.RateLimit{RequestsPerSecond: 2}
		cp := createClusterProvider(ctx, "quota-"+platform.ns, spec, nil)
		DeferCleanup(func() { deleteFixtures(ctx, platform, alice, bob) })
		shared := func(f *fixture, name string) *v1alpha1.EmbedTokenRequest {
			etr := f.request(name, time.Hour)
			etr.Spec.ProviderRef = v1alpha1.ProviderRef{Kind: "ClusterEmbedProvider", Name: cp.Name}
			return etr
		}

		By("alice creating 80 requests")
		start := time.Now()
		for i := range 80 {
			Expect(k8sClient.Create(ctx, shared(alice, fmt.Sprintf("a-%02d", i)))).To(Succeed())
		}
		Eventually(func() int { return len(waiting(ctx, alice.ns, "waiting for ")) }).Should(BeNumerically(">=", 60),
			"alice's requests wait for the rate limit")

		By("bob creating one")
		created := time.Now()
		etr := shared(bob, "b")
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		Eventually(secretOf(ctx, etr), time.Minute, 50*time.Millisecond).Should(Not(BeNil()))
		took := time.Since(created)
		GinkgoWriter.Printf("Bob's first token took %s beside alice's backlog\n", took)
		Expect(took).To(BeNumerically("<=", 5*time.Second), "bob's first token waits for alice's backlog")

		By("alice's waiting requests saying they wait for their namespace's turn")
		Expect(len(waiting(ctx, alice.ns, "waiting for its namespace's turn under the rate limit of ClusterEmbedProvider "+cp.Name))).
			To(BeNumerically(">=", 40))

		By("every one of alice's requests still getting its token, within the rate limit")
		Eventually(func(g Gomega) []corev1.Secret { return managedSecrets(ctx, g, alice.ns) }, 2*time.Minute, time.Second).Should(HaveLen(80))
		Expect(platform.sim.CallCount()).To(BeNumerically("<=", 2*time.Since(start).Seconds()+1))
	})
})

func readyReasonOf(etr *v1alpha1.EmbedTokenRequest) string {
	if c := meta.FindStatusCondition(etr.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

// waiting maps the namespace's requests whose vendor call waits (message)
// to their resourceVersions. They must be Issuing, with no failure counted.
func waiting(ctx context.Context, ns, message string) map[string]string {
	var list v1alpha1.EmbedTokenRequestList
	Expect(k8sClient.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
	out := map[string]string{}
	for _, etr := range list.Items {
		c := meta.FindStatusCondition(etr.Status.Conditions, v1alpha1.ConditionReconciling)
		if c == nil || !strings.HasPrefix(c.Message, "Issuing a token: "+message) {
			continue
		}
		Expect(*c).To(haveReason(metav1.ConditionTrue, v1alpha1.ReasonIssuing))
		Expect(etr.Status.FailedAttempts).To(BeZero())
		Expect(meta.FindStatusCondition(etr.Status.Conditions, v1alpha1.ConditionStalled)).To(BeNil())
		out[etr.Name] = etr.ResourceVersion
	}
	return out
}

// watchRenewals polls the namespace's Secrets every 100 ms until each named
// one has held four tokens (the first and three renewals). It fails at once
// when an observed token has expired, when a first token takes longer than
// 15 s, or when the renewals take longer than a minute.
func watchRenewals(ctx context.Context, ns string, names []string, created time.Time) {
	const firstTokenWithin = 15 * time.Second
	tokens := map[string]map[string]bool{}
	var first time.Duration
	for len(tokens) < len(names) || !allAtLeast(tokens, 4) {
		var list corev1.SecretList
		Expect(k8sClient.List(ctx, &list, client.InNamespace(ns),
			client.MatchingLabels{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue})).To(Succeed())
		observed := time.Now()
		for _, s := range list.Items {
			expiresAt, err := time.Parse(time.RFC3339, string(s.Data[v1alpha1.SecretExpiresAtKey]))
			Expect(err).NotTo(HaveOccurred())
			Expect(expiresAt).To(BeTemporally(">", observed), "Secret %s holds an expired token", s.Name)
			if tokens[s.Name] == nil {
				tokens[s.Name] = map[string]bool{}
			}
			tokens[s.Name][provider.Digest(string(s.Data[v1alpha1.SecretTokenKey]))] = true
		}
		if observed.Sub(created) > firstTokenWithin {
			Expect(tokens).To(HaveLen(len(names)), "every request has its first token within %s", firstTokenWithin)
		}
		Expect(observed.Sub(created)).To(BeNumerically("<", time.Minute), "three renewals each: %v", tokenCounts(tokens))
		if first == 0 && len(tokens) == len(names) {
			first = observed.Sub(created)
		}
		time.Sleep(100 * time.Millisecond)
	}
	GinkgoWriter.Printf("All first tokens within %s, three renewals each within %s\n", first, time.Since(created))
}

func allAtLeast(tokens map[string]map[string]bool, n int) bool {
	for _, seen := range tokens {
		if len(seen) < n {
			return false
		}
	}
	return true
}

func tokenCounts(tokens map[string]map[string]bool) map[string]int {
	counts := map[string]int{}
	for name, seen := range tokens {
		counts[name] = len(seen)
	}
	return counts
}

// defaultOptions are the options of a manager with cmd/main.go's defaults,
// serving Qrvey through the suite's provider (grantOnly). The suite's
// manager must be stopped while it runs.
func defaultOptions() controller.Options {
	return controller.Options{
		Providers:               map[string]provider.Provider{v1alpha1.VendorQrvey: grantingQrvey{qrvey.New()}},
		MaxConcurrentReconciles: productionWorkers,
		MetricsRegisterer:       prometheus.NewRegistry(),
		AllowVendorCIDRs:        allowVendorCIDRs,
		Reconciled:              barriers.observe,
	}
}

// deleteFixtures removes the fixtures' requests, Secrets and namespaces, so
// later specs' managers do not reconcile hundreds of leftovers.
func deleteFixtures(ctx context.Context, fixtures ...*fixture) {
	for _, f := range fixtures {
		Expect(k8sClient.DeleteAllOf(ctx, &v1alpha1.EmbedTokenRequest{}, client.InNamespace(f.ns))).To(Succeed())
		Expect(k8sClient.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace(f.ns))).To(Succeed())
		Expect(k8sClient.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}})).To(Succeed())
	}
}

// blackhole is a vendor endpoint that accepts TCP connections and never
// answers, as a hung vendor or a firewall that drops replies does.
type blackhole struct {
	ln             net.Listener
	mu             sync.Mutex
	conns          []net.Conn
	first          time.Time
	open, mostOpen int
}

func newBlackhole() *blackhole {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	b := &blackhole{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			if len(b.conns) == 0 {
				b.first = time.Now()
			}
			b.conns = append(b.conns, c)
			b.open++
			b.mostOpen = max(b.mostOpen, b.open)
			b.mu.Unlock()
			go b.drain(c)
		}
	}()
	return b
}

// drain reads the request and waits for the client to give up.
func (b *blackhole) drain(c net.Conn) {
	_, _ = io.Copy(io.Discard, c)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.open--
}

// firstAccepted is when the first connection was accepted.
func (b *blackhole) firstAccepted() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.first
}

// maxOpen is the most connections that were open at once.
func (b *blackhole) maxOpen() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mostOpen
}

func (b *blackhole) addr() string { return b.ln.Addr().String() }

// accepted is how many connections the endpoint has accepted.
func (b *blackhole) accepted() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

func (b *blackhole) close() {
	_ = b.ln.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		_ = c.Close()
	}
}
