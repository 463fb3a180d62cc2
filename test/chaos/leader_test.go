package chaos

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

var _ = Describe("Two manager replicas with leader election", func() {
	const (
		requests = 5
		// 1m tokens (the shortest admission accepts) renew 27-30s after
		// issue.
		lifetime      = time.Minute
		leaseDuration = 4 * time.Second
		retryPeriod   = time.Second
		// oneReconcile bounds the new leader's start-up (its caches are
		// already synced) and one reconcile on a loaded 2-core CI machine.
		oneReconcile = 3 * time.Second
		acquired     = "Successfully acquired lease"
	)
	leaderArgs := []string{"--leader-elect", "--leader-election-namespace=default",
		"--leader-elect-lease-duration=" + leaseDuration.String(), "--leader-elect-renew-deadline=3s",
		"--leader-elect-retry-period=" + retryPeriod.String()}

	It("fails over after the leader is SIGKILLed and refreshes within the lease duration plus one reconcile", func(ctx SpecContext) {
		sim, fx := newSimAndNamespace(ctx, "chaos-leader")
		leader := startManager("leader-a", leaderArgs...)
		Expect(leader.WaitLog(ctx, acquired)).To(Succeed())
		standby := startManager("leader-b", leaderArgs...)
		dumpLogsOnFailure(leader.LogPath, standby.LogPath)
		Expect(standby.WaitLog(ctx, "Attempting to acquire leader lease")).To(Succeed())

		names := createRequests(ctx, fx, requests, lifetime)
		expectAllReady(ctx, fx.Namespace, requests, time.Minute)
		first := map[string]harness.Token{}
		var earliestRenew time.Time
		for _, name := range names {
			tok, err := readToken(ctx, fx.Namespace, name)
			Expect(err).NotTo(HaveOccurred())
			first[name] = tok
			// The earliest renewal is half the lifetime less 10% of the
			// margin after issue.
			renew := tok.ExpiresAt.Add(-lifetime/2 - lifetime/20)
			if earliestRenew.IsZero() || renew.Before(earliestRenew) {
				earliestRenew = renew
			}
		}
		Expect(standby.LogContains(acquired)).To(BeFalse(), "the standby must not lead while the leader lives")

		By("killing the leader just before the first renewal is due")
		time.Sleep(time.Until(earliestRenew.Add(-2 * time.Second)))
		Expect(leader.Kill()).To(Succeed())
		killedAt := time.Now()

		By("the standby takes over and refreshes every token in time")
		pending := map[string]bool{}
		for _, name := range names {
			pending[name] = true
		}
		for len(pending) > 0 {
			for name := range pending {
				tok, err := readToken(ctx, fx.Namespace, name)
				Expect(err).NotTo(HaveOccurred())
				if tok.Value == first[name].Value {
					renewDue := first[name].ExpiresAt.Add(-lifetime / 2)
					deadline := later(renewDue, killedAt).Add(leaseDuration + retryPeriod + oneReconcile)
					Expect(time.Now()).To(BeTemporally("<", deadline), "%s was not refreshed within lease duration + one reconcile", name)
					continue
				}
				Expect(sim.Validate(tok.Value)).To(Equal(vendorsim.ValidityValid), "Secret %s", name)
				delete(pending, name)
			}
			time.Sleep(50 * time.Millisecond)
		}
		GinkgoWriter.Printf("all %d tokens refreshed %s after the leader was killed\n", requests, time.Since(killedAt).Round(time.Millisecond))
		Expect(standby.WaitLog(ctx, acquired)).To(Succeed())
	}, SpecTimeout(2*time.Minute))
})

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
