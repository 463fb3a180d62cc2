package controller_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/issuance"
)

// The token endpoint calls vendors through the same Issuer as the
// reconciler: its calls must count against the same caps, so one
// namespace's on-demand traffic cannot starve another namespace's stored
// tokens. The bounds are the fairness spec's (watchRenewals).
var _ = Describe("Fair scheduling of on-demand calls", func() {
	It("keeps renewing another namespace's stored tokens while one namespace makes 200 uncached calls a second through Issuer.Call", slowSpec, func() {
		ctx := context.Background()
		platform, noisy, healthy := newFixture(ctx), newFixture(ctx), newFixture(ctx)

		By("a ClusterEmbedProvider whose vendor answers one call at a time, 50 ms each (20 calls a second)")
		vendor := newSlowVendor(platform.sim.URL(), 50*time.Millisecond)
		DeferCleanup(vendor.Close)
		platform.createCredentials(ctx)
		spec := platform.clusterSpec()
		spec.Qrvey.URL = vendor.URL
		cp := createClusterProvider(ctx, "slow-"+platform.ns, spec, nil)
		platform.grant(grantKey{url: vendor.URL}, 15*time.Second)
		shared := func(f *fixture, name string, lifetime time.Duration) *v1alpha1.EmbedTokenRequest {
			etr := f.request(name, lifetime)
			etr.Spec.ProviderRef = v1alpha1.ProviderRef{Kind: issuance.KindClusterEmbedProvider, Name: cp.Name}
			return etr
		}

		stopMgr()
		DeferCleanup(func() { stopMgr = startManager() })
		opts := defaultOptions()
		opts.MinRenewInterval = suiteMinInterval
		stop, issuer := startOperatorWithIssuer(cfg, logr.Logger{}, 0, opts)
		DeferCleanup(stop)
		DeferCleanup(func() { deleteFixtures(ctx, platform, noisy, healthy) })

		By("one namespace calling the endpoint's path 200 times a second, every call for another user")
		load := newEndpointLoad(issuer, shared(noisy, "template", time.Hour))
		Eventually(func() error {
			_, err := issuer.Resolve(ctx, noisy.ns, load.template.Spec.ProviderRef)
			return err
		}).Should(Succeed(), "the manager's cache holds the provider")
		loadCtx, stopLoad := context.WithCancel(ctx)
		DeferCleanup(stopLoad)
		go load.run(loadCtx, 200)
		Eventually(load.issued.Load).Should(BeNumerically(">=", 20), "the noisy namespace's calls are being served")

		By("20 requests in another namespace through the same provider, renewing 15 s tokens")
		created := time.Now()
		names := make([]string, 20)
		for i := range names {
			names[i] = fmt.Sprintf("healthy-%02d", i)
			Expect(k8sClient.Create(ctx, shared(healthy, names[i], time.Minute))).To(Succeed())
		}
		watchRenewals(ctx, healthy.ns, names, created)
		stopLoad()
		load.wait()

		By("the noisy namespace holding at most its share of the provider's calls, and failing only by being throttled")
		GinkgoWriter.Printf("Endpoint calls: %d issued, %d throttled, %d out of time, %d failed; most calls at the vendor at once: %d\n",
			load.issued.Load(), load.throttled.Load(), load.late.Load(), load.failed.Load(), vendor.maxInFlight())
		Expect(load.throttled.Load()).To(BeNumerically(">", 0), "the noisy namespace's excess calls are refused")
		Expect(load.failed.Load()).To(BeZero(), "first failure: %v", load.firstFailure())
		caps := issuer.Gates().Caps
		Expect(vendor.maxInFlight()).To(BeNumerically("<=", caps.Provider), "calls at the vendor at once")
	})
})

// slowVendor stands in front of a simulator and answers one call at a time,
// each after latency, as a vendor at capacity does: calls beyond its rate
// queue at the vendor and wait there until served or given up.
type slowVendor struct {
	*httptest.Server
	serving            chan struct{} // holds the call being served
	count              sync.Mutex
	inFlight, mostSeen int
}

func newSlowVendor(target string, latency time.Duration) *slowVendor {
	u, err := url.Parse(target)
	Expect(err).NotTo(HaveOccurred())
	proxy := httputil.NewSingleHostReverseProxy(u)
	v := &slowVendor{serving: make(chan struct{}, 1)}
	v.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.count.Lock()
		v.inFlight++
		v.mostSeen = max(v.mostSeen, v.inFlight)
		v.count.Unlock()
		defer func() {
			v.count.Lock()
			v.inFlight--
			v.count.Unlock()
		}()
		// With the body read, the server notices a caller that gives up
		// (the request's context ends) while its call is queued.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		select {
		case v.serving <- struct{}{}:
		case <-r.Context().Done():
			return // the caller gave up while queued
		}
		defer func() { <-v.serving }()
		time.Sleep(latency) // the vendor's work, one call at a time
		proxy.ServeHTTP(w, r)
	}))
	return v
}

// maxInFlight is the most calls the vendor has had at once, served or
// queued.
func (v *slowVendor) maxInFlight() int {
	v.count.Lock()
	defer v.count.Unlock()
	return v.mostSeen
}

// endpointLoad makes the token endpoint's calls through an Issuer: for each,
// it resolves the provider, checks the request filled in for a new user, and
// calls the vendor, waiting at most 2 s for its turn.
type endpointLoad struct {
	issuer   *issuance.Issuer
	template *v1alpha1.EmbedTokenRequest

	// late counts calls whose 2 s ran out after their turn came, as an
	// endpoint's caller's deadline may.
	issued, throttled, late, failed atomic.Int64
	calls                           sync.WaitGroup
	mu                              sync.Mutex
	failure                         error
}

func newEndpointLoad(issuer *issuance.Issuer, template *v1alpha1.EmbedTokenRequest) *endpointLoad {
	return &endpointLoad{issuer: issuer, template: template}
}

// run starts perSecond calls a second until ctx ends.
func (l *endpointLoad) run(ctx context.Context, perSecond int) {
	defer GinkgoRecover()
	tick := time.NewTicker(time.Second / time.Duration(perSecond))
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		l.calls.Add(1)
		go l.call(ctx, n)
	}
}

func (l *endpointLoad) call(loadCtx context.Context, n int) {
	defer l.calls.Done()
	ctx, cancel := context.WithTimeout(loadCtx, 2*time.Second)
	defer cancel()
	obj := l.template.DeepCopy()
	obj.Spec.Qrvey.UserID = fmt.Sprintf("user-%06d", n)
	err := func() error {
		p, err := l.issuer.Resolve(ctx, obj.Namespace, obj.Spec.ProviderRef)
		if err != nil {
			return err
		}
		if err := l.issuer.Check(ctx, p, obj); err != nil {
			return err
		}
		_, err = l.issuer.Call(ctx, p, issuance.Call{Namespace: obj.Namespace, Key: "template/" + obj.Namespace + "/" + obj.Name,
			LogKey: "embedTokenTemplate", Params: &obj.Spec.VendorParams, Lifetime: obj.RequestedLifetime()})
		return err
	}()
	var throttled *issuance.Throttled
	switch {
	case err == nil:
		l.issued.Add(1)
	case errors.As(err, &throttled):
		l.throttled.Add(1)
	case loadCtx.Err() != nil:
		// The load stopped while the call was made.
	case ctx.Err() != nil:
		l.late.Add(1)
	default:
		l.failed.Add(1)
		l.mu.Lock()
		if l.failure == nil {
			l.failure = err
		}
		l.mu.Unlock()
	}
}

// wait waits for the calls started to end.
func (l *endpointLoad) wait() { l.calls.Wait() }

func (l *endpointLoad) firstFailure() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failure
}
