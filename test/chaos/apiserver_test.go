package chaos

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

var _ = Describe("API server stopped and restarted under the running manager", func() {
	const (
		requests = 10
		// 1m tokens (the shortest admission accepts) renew 27-30s after
		// issue, in the middle of the outage.
		lifetime = time.Minute
		// The API server is down from issue+18s to issue+38s (plus its own
		// shutdown and start-up time): shorter than the lifetime, so every
		// refresh is still possible after it.
		downFrom, downUntil = 18 * time.Second, 38 * time.Second
		// minOutage is how long the API server stays down at least after
		// its (possibly slow) shutdown.
		minOutage = 10 * time.Second
	)

	It("recovers without a restart and refreshes every token before it expires", func(ctx SpecContext) {
		sim, fx := newSimAndNamespace(ctx, "chaos-apiserver")
		m := startManager("apiserver")
		dumpLogsOnFailure(m.LogPath)
		names := createRequests(ctx, fx, requests, lifetime)
		expectAllReady(ctx, fx.Namespace, requests, time.Minute)

		first := map[string]harness.Token{}
		renewAt := map[string]time.Time{}
		var earliest time.Time
		for _, name := range names {
			tok, err := readToken(ctx, fx.Namespace, name)
			Expect(err).NotTo(HaveOccurred())
			first[name] = tok
			if issued := tok.ExpiresAt.Add(-lifetime); earliest.IsZero() || issued.Before(earliest) {
				earliest = issued
			}
			etr := &v1alpha1.EmbedTokenRequest{}
			Expect(cp.Client.Get(ctx, client.ObjectKey{Namespace: fx.Namespace, Name: name}, etr)).To(Succeed())
			Expect(etr.Status.RenewAt).NotTo(BeNil())
			renewAt[name] = etr.Status.RenewAt.Time
		}

		By("stopping kube-apiserver (etcd keeps running)")
		time.Sleep(time.Until(earliest.Add(downFrom)))
		stopping := time.Now()
		Expect(cp.StopAPIServer()).To(Succeed())
		time.Sleep(time.Until(later(earliest.Add(downUntil), time.Now().Add(minOutage))))
		By("starting kube-apiserver again")
		restarting := time.Now()
		Expect(cp.StartAPIServer()).To(Succeed())
		GinkgoWriter.Printf("API server stopping from %s, down from about %s to %s\n", stopping.Format(time.TimeOnly),
			restarting.Add(-minOutage).Format(time.TimeOnly), time.Now().Format(time.TimeOnly))
		due := 0
		for _, at := range renewAt {
			if at.After(stopping) && at.Before(restarting) {
				due++
			}
		}
		Expect(due).To(BeNumerically(">", requests/2), "most renewals fell due during the outage: %v", renewAt)

		By("every token is replaced by a new valid one before the old one expires")
		pending := map[string]bool{}
		for _, name := range names {
			pending[name] = true
		}
		for len(pending) > 0 {
			for name := range pending {
				tok, err := readToken(ctx, fx.Namespace, name)
				if err != nil || tok.Value == first[name].Value {
					Expect(time.Now()).To(BeTemporally("<", first[name].ExpiresAt), "%s still holds its first token at its expiry", name)
					continue
				}
				Expect(sim.Validate(tok.Value)).To(Equal(vendorsim.ValidityValid), "Secret %s", name)
				delete(pending, name)
			}
			time.Sleep(100 * time.Millisecond)
		}

		exited, err := m.Exited()
		Expect(exited).To(BeFalse(), "the manager survived the outage without a restart (exit: %v)", err)
		expectAllReady(ctx, fx.Namespace, requests, 30*time.Second)
		_, err = harness.ReadProcStats(m.PID())
		Expect(err).NotTo(HaveOccurred(), "the same manager process is still running")
	}, SpecTimeout(3*time.Minute))
})
