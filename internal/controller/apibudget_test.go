package controller_test

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/fairness"
	"github.com/embedtokens/embed-token-operator/internal/refresh"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

// One namespace's requests must not spend the API budget every namespace
// shares: renewals wait for a minimum interval whatever the vendor grants,
// forced refreshes for a minute, and a namespace issues within its share of
// the manager's client rate limit.
var _ = Describe("API budget", func() {
	ctx := context.Background()

	It("renews a token the vendor granted for 1 s no sooner than 30 s after it was issued, and says why", func() {
		f := newFixtureWithProvider(ctx)
		f.grantOnly(time.Second)
		replaceWithDefaultIntervals()

		etr := f.request("one-second", time.Minute)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		waitForToken(ctx, etr, "")
		cur := get(ctx, etr).(*v1alpha1.EmbedTokenRequest)
		issued := cur.Status.IssuedAt.Time
		Expect(cur.Status.ExpiresAt.Time).To(Equal(issued.Add(time.Second)), "the vendor granted 1 s")
		Expect(cur.Status.RenewAt.Time).To(Equal(issued.Add(refresh.DefaultMinRenewInterval)))
		Expect(readyMessageOf(cur)).To(ContainSubstring("the vendor granted 1s, less than the minimum renewal interval of 30s"))

		By("a reconcile after the token expired issuing nothing before then")
		Eventually(func() time.Time { return time.Now() }).Should(BeTemporally(">", issued.Add(2*time.Second)))
		patchObject(ctx, etr, func(etr *v1alpha1.EmbedTokenRequest) { etr.Annotations = map[string]string{"touch": "1"} })
		Eventually(readyCondition(ctx, etr)).Should(And(haveReason(metav1.ConditionFalse, v1alpha1.ReasonTokenExpired),
			HaveField("Message", ContainSubstring("it renews at "+issued.Add(30*time.Second).UTC().Format(time.RFC3339)))))
		Expect(f.callsFor("one-second")()).To(Equal(1))
	})

	It("serves a refresh asked for within a minute of the last issue a minute after that issue", func() {
		f := newFixtureWithProvider(ctx)
		replaceWithDefaultIntervals()

		etr := f.request("forced", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		waitForToken(ctx, etr, "")
		issued := get(ctx, etr).(*v1alpha1.EmbedTokenRequest).Status.IssuedAt.Time

		patchObject(ctx, etr, func(etr *v1alpha1.EmbedTokenRequest) {
			etr.Annotations = map[string]string{v1alpha1.RefreshAnnotation: "storm-1"}
		})
		Eventually(func(g Gomega) {
			cur := get(ctx, etr.DeepCopy()).(*v1alpha1.EmbedTokenRequest)
			g.Expect(cur.Status.RenewAt.Time).To(Equal(issued.Add(refresh.DefaultMinRefreshInterval)), "the refresh is scheduled, not refused")
			g.Expect(cur.Status.LastHandledRefresh).To(BeEmpty())
			g.Expect(readyMessageOf(cur)).To(ContainSubstring("it renews at " + issued.Add(time.Minute).UTC().Format(time.RFC3339)))
		}).Should(Succeed())
		Expect(f.callsFor("forced")()).To(Equal(1))
	})

	// The manager's clock moves to each expiry of the 1 s token, and a
	// barrier has the manager renew it then.
	It("folds a request's repeated Events into one Event with a series count", func() {
		clk := replaceWithClockedManager()
		f := newFixtureWithProvider(ctx)
		f.grantOnly(time.Second)
		etr := f.request("repeats", time.Minute)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		waitForToken(ctx, etr, "")
		for renewal := range 7 {
			clk.SetTime(get(ctx, etr.DeepCopy()).(*v1alpha1.EmbedTokenRequest).Status.RenewAt.Add(time.Second))
			settle(ctx, etr)
			Expect(f.callsFor("repeats")()).To(Equal(renewal+2), "the 1 s token renews after each expiry")
		}

		Eventually(func(g Gomega) {
			var list eventsv1.EventList
			g.Expect(k8sClient.List(ctx, &list, client.InNamespace(f.ns))).To(Succeed())
			var refreshed []eventsv1.Event
			for _, e := range list.Items {
				if e.Regarding.Name == etr.Name && e.Reason == v1alpha1.ReasonTokenRefreshed {
					refreshed = append(refreshed, e)
				}
			}
			g.Expect(refreshed).To(HaveLen(1), "one Event for every renewal after an expiry")
			g.Expect(refreshed[0].Series).NotTo(BeNil())
			g.Expect(refreshed[0].Series.Count).To(BeNumerically(">=", 2))
		}).Should(Succeed())
	})
})

// replaceWithDefaultIntervals runs, until the spec ends, a manager with
// the default --min-renew-interval and --min-refresh-interval in place of
// the suite's.
func replaceWithDefaultIntervals() {
	stopMgr()
	DeferCleanup(func() { stopMgr = startManager() })
	opts := operatorOptions()
	opts.MinRenewInterval, opts.MinRefreshInterval = 0, 0
	DeferCleanup(startOperator(cfg, logr.Logger{}, 0, opts))
}

// floodRequests is how many requests the flooding namespace holds.
const floodRequests = 1000

var _ = Describe("Fair share of the API budget", func() {
	It("gives a quiet namespace its first token within 15 s beside a namespace with 1,000 requests of 1 s tokens, which issues within its share", slowestSpec, func() {
		ctx := context.Background()
		flood, quiet := newFixtureWithProvider(ctx), newFixtureWithProvider(ctx)
		flood.grantOnly(time.Second)
		stopMgr()
		DeferCleanup(func() { stopMgr = startManager() })
		DeferCleanup(func() { deleteFixtures(ctx, flood, quiet) })

		By("a manager with cmd/main.go's defaults, its client at --kube-api-qps=50 --kube-api-burst=100")
		const qps, burst = 50, 100
		restCfg := rest.CopyConfig(cfg)
		restCfg.QPS, restCfg.Burst = qps, burst
		DeferCleanup(startOperator(restCfg, logr.Logger{}, 0, defaultOptions()))

		By(fmt.Sprintf("%d requests in one namespace whose vendor grants 1 s tokens", floodRequests))
		Expect(harness.CreateParallel(ctx, floodRequests, 16, func(ctx context.Context, i int) error {
			return k8sClient.Create(ctx, flood.request(fmt.Sprintf("flood-%04d", i), time.Minute))
		})).To(Succeed())
		Eventually(flood.sim.CallCount, time.Minute).Should(BeNumerically(">=", 200), "the flood is being issued")

		By("a request in a quiet namespace")
		created := time.Now()
		etr := quiet.request("first", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		waitForToken(ctx, etr, "")
		firstToken := time.Since(created)
		GinkgoWriter.Printf("The quiet namespace's first token took %s\n", firstToken)

		By("the flooding namespace having issued at most half the client's rate, after half its burst")
		Eventually(flood.sim.CallCount, 2*time.Minute).Should(BeNumerically(">=", floodRequests))
		calls := flood.sim.Calls()
		start, end := calls[0].Time, calls[len(calls)-1].Time
		share := fairness.NamespaceWriteBudget(qps, burst, fairness.DefaultNamespaceWriteShare)
		// A second more than the calls took: a call is timed when the
		// vendor sees it, a little after its turn under the budget.
		allowed := share.QPS*(end.Sub(start).Seconds()+1) + float64(share.Burst)
		GinkgoWriter.Printf("The flood issued %d tokens in %s; its share allows %.0f\n", len(calls), end.Sub(start), allowed)
		Expect(float64(len(calls))).To(BeNumerically("<=", allowed))
		Expect(firstToken).To(BeNumerically("<", 15*time.Second), "the quiet namespace's first token")
	})
})
