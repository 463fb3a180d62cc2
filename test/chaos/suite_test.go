// Package chaos kills and starves the operator the way a cluster does — SIGKILL
// mid-issue, an API server outage, a lost leader — with the manager running as
// a separate process against a real kube-apiserver, and checks that no Secret
// ever holds anything but a complete, valid token. Run with `make test-chaos`.
package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

var (
	cp         *harness.ControlPlane
	managerBin string
	workDir    string
)

func TestChaos(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Chaos Suite")
}

var _ = BeforeSuite(func() {
	workDir = GinkgoT().TempDir()
	By("building the manager binary and starting kube-apiserver and etcd")
	var err error
	managerBin, cp, err = harness.BuildManagerAndControlPlane(workDir)
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
})

// startManager runs the manager binary with the flags every spec needs plus
// extra, and kills it when the spec ends. Logs are kept per spec and printed
// on failure.
func startManager(name string, extra ...string) *harness.Manager {
	args := append([]string{"--metrics-bind-address=0", "--health-probe-bind-address=0", "--token-endpoint-bind-address=0", "--zap-log-level=debug",
		harness.AllowSimulator}, extra...)
	logPath := filepath.Join(workDir, name+".log")
	m, err := harness.StartManager(managerBin, cp.Kubeconfig, logPath, args...)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { _ = m.Kill() })
	return m
}

// dumpLogsOnFailure attaches the managers' logs to a failed spec's report.
func dumpLogsOnFailure(paths ...string) {
	DeferCleanup(func() {
		if !CurrentSpecReport().Failed() {
			return
		}
		for _, p := range paths {
			if data, err := os.ReadFile(p); err == nil {
				tail := data[max(0, len(data)-20000):]
				AddReportEntry("log "+filepath.Base(p), string(tail))
			}
		}
	})
}

// newSimAndNamespace starts a simulator and a namespace with a Qrvey
// provider pointing at it; the requests are deleted when the spec ends so the
// next spec's manager does not keep refreshing them.
func newSimAndNamespace(ctx context.Context, ns string) (*vendorsim.Server, harness.QrveyFixture) {
	sim := vendorsim.New(vendorsim.Options{})
	Expect(sim.Start()).To(Succeed())
	DeferCleanup(sim.Close)
	fx := harness.QrveyFixture{Namespace: ns, Provider: "qrvey", SimURL: sim.URL()}
	Expect(fx.Apply(ctx, cp.Client)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) {
		Expect(cp.Client.DeleteAllOf(ctx, &v1alpha1.EmbedTokenRequest{}, client.InNamespace(ns))).To(Succeed())
	})
	return sim, fx
}

// createRequests creates n requests with the lifetime and returns their names.
func createRequests(ctx context.Context, fx harness.QrveyFixture, n int, lifetime time.Duration) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("req-%03d", i)
		Expect(cp.Client.Create(ctx, fx.Request(names[i], lifetime))).To(Succeed())
	}
	return names
}

// validTokenCheck accepts only a token the simulator issued and still
// honours, stored with a consistent expiry.
func validTokenCheck(sim *vendorsim.Server) harness.TokenCheck {
	return func(s *corev1.Secret, token string) error {
		if token == "" {
			return fmt.Errorf("empty token")
		}
		if v := sim.Validate(token); v != vendorsim.ValidityValid {
			return fmt.Errorf("token is %s to the vendor", v)
		}
		if got, want := string(s.Data[v1alpha1.SecretExpiresAtKey]), s.Annotations[v1alpha1.ExpiresAtAnnotation]; got == "" || got != want {
			return fmt.Errorf("expiresAt %q does not match annotation %q", got, want)
		}
		return nil
	}
}

// readToken reads a request's Secret now; a token without a readable
// expiry is an error.
func readToken(ctx context.Context, ns, name string) (harness.Token, error) {
	tok, err := harness.GetToken(ctx, cp.Client, ns, name)
	if err == nil && tok.ExpiresAt.IsZero() {
		err = fmt.Errorf("secret %s has no readable expiry", name)
	}
	return tok, err
}

// expectAllReady waits until every request in ns is Ready.
func expectAllReady(ctx context.Context, ns string, n int, timeout time.Duration) {
	Eventually(func(g Gomega) {
		ready, total, err := harness.CountReady(ctx, cp.Client, ns)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(total).To(Equal(n))
		g.Expect(ready).To(Equal(n), "ready requests")
	}).WithContext(ctx).WithTimeout(timeout).WithPolling(200 * time.Millisecond).Should(Succeed())
}
