package chaos

import (
	"math/rand/v2"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

var _ = Describe("Manager SIGKILLed while issuing", func() {
	const (
		kills    = 20
		requests = 120
		// A 1m lifetime (the shortest admission accepts) renews every
		// ~30s, so 120 requests keep the operator issuing about four
		// tokens a second: every kill lands while tokens are being issued.
		lifetime = time.Minute
	)

	It("keeps a complete, issued, valid token in every Secret and wastes at most one vendor call per kill", func(ctx SpecContext) {
		sim, fx := newSimAndNamespace(ctx, "chaos-kill")
		observer, err := harness.ObserveTokens(ctx, cp.Config, fx.Namespace, validTokenCheck(sim))
		Expect(err).NotTo(HaveOccurred())

		m := startManager("kill")
		dumpLogsOnFailure(m.LogPath)
		names := createRequests(ctx, fx, requests, lifetime)
		expectAllReady(ctx, fx.Namespace, requests, time.Minute)

		for i := range kills {
			By("waiting for the operator to issue, then killing it at a random point")
			issued := sim.IssuedCount()
			Eventually(sim.IssuedCount).WithContext(ctx).WithTimeout(30*time.Second).WithPolling(20*time.Millisecond).
				Should(BeNumerically(">", issued), "kill %d: the restarted operator issues again", i)
			time.Sleep(time.Duration(rand.Int64N(int64(3 * time.Second))))
			Expect(m.Kill()).To(Succeed())
			m = startManager("kill")
		}

		By("every request becomes Ready with a valid token after the last restart")
		expectAllReady(ctx, fx.Namespace, requests, time.Minute)
		for _, name := range names {
			tok, err := readToken(ctx, fx.Namespace, name)
			Expect(err).NotTo(HaveOccurred())
			Expect(sim.Validate(tok.Value)).To(Equal(vendorsim.ValidityValid), "Secret %s", name)
		}
		Expect(m.Kill()).To(Succeed())

		By("comparing tokens the vendor issued with tokens ever written")
		Eventually(func(g Gomega) {
			for _, name := range names {
				tok, err := readToken(ctx, fx.Namespace, name)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(observer.Seen(tok.Value)).To(BeTrue(), "the observer has caught up with %s", name)
			}
		}).WithContext(ctx).WithTimeout(10 * time.Second).Should(Succeed())
		issued, written := sim.IssuedCount(), observer.Distinct()
		GinkgoWriter.Printf("kills=%d vendor calls=%d issued=%d written=%d secret versions=%d\n",
			kills, sim.CallCount(), issued, written, observer.Events())
		Expect(observer.Violations()).To(BeEmpty(), "every Secret version held a complete, issued, valid token")
		Expect(written).To(BeNumerically(">", 2*requests), "tokens were refreshed during the kill loop")
		Expect(issued-written).To(BeNumerically("<=", kills), "vendor issues exceed written tokens by at most the number of kills")
		// Each kill waits for the restarted manager to sync its caches and issue
		// (at most 30 s each, above); the spec's own bound leaves room for a
		// loaded machine, where a restart takes up to about 20 s.
	}, SpecTimeout(10*time.Minute))
})
