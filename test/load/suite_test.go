// Package load runs the manager binary as a separate process, with the
// memory limit its Deployment gives it, against a real kube-apiserver, while
// one tenant does everything `edit` in its own namespace allows to exhaust
// it: a thousand requests whose vendor grants one-second tokens, storms of
// forced refreshes, vendors answering megabyte tokens and megabyte auth
// tokens. It checks that another namespace is still served on time and that
// the manager stays within its memory limit. Run with `make test-load`.
package load

import (
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/embedtokens/embed-token-operator/test/harness"
)

var (
	cp         *harness.ControlPlane
	managerBin string
	workDir    string
)

func TestLoad(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Load Suite")
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

// startManager runs the manager binary with the shipped defaults, the
// environment its Deployment's memory limit gives it, and extra flags; it
// is killed when the spec ends, and its log is attached to a failed spec.
func startManager(name string, env []string, extra ...string) *harness.Manager {
	args := append([]string{"--metrics-bind-address=0", "--health-probe-bind-address=0", "--token-endpoint-bind-address=0"}, extra...)
	logPath := filepath.Join(workDir, name+".log")
	m, err := harness.StartManagerWithEnv(managerBin, cp.Kubeconfig, logPath, env, args...)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { _ = m.Kill() })
	DeferCleanup(func() {
		if !CurrentSpecReport().Failed() {
			return
		}
		if data, err := os.ReadFile(logPath); err == nil {
			AddReportEntry("log "+name, string(data[max(0, len(data)-20000):]))
		}
	})
	return m
}
