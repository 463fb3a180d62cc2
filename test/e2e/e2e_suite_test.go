//go:build e2e

// Package e2e proves on a real single-node cluster (hack/local-cluster: a
// kubelet, containerd, the garbage collector and RBAC enforcement, none of
// which envtest has) that workloads always read an unexpired token. It
// expects the cluster up and the operator deployed from config/local: run it
// with `make test-e2e`, which does both.
package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/test/harness"
)

// env is where the suite finds the local cluster; every value can be
// overridden by the environment variable hack/local-cluster reads too.
type env struct {
	stateDir    string
	kubectl     string
	kubeconfig  string
	auditLog    string
	simURL      string
	qrveyAPIKey string
}

const (
	operatorNamespace = "embed-token-operator-system"
	operatorSA        = "embed-token-operator-controller-manager"
	operatorLeaseName = "embed-token-operator.embedtokens.io"
	workloadImage     = "local/tokenreader:dev"
	operatorPodLabel  = "control-plane"
	operatorPodLabelV = "controller-manager"
	tokenMountPath    = "/var/run/embed-token"
	readInterval      = 2 * time.Second
	// kubeletPropagation is how late a mounted Secret's new content may
	// reach a running pod: the kubelet re-syncs each pod every
	// syncFrequency (1m) with up to 50% jitter (pod_workers.go), so up to
	// 90 s. Measured here: 1-88 s (docs/benchmarks.md, Tokens in pods).
	kubeletPropagation = 90 * time.Second
	// mountedLifetime is the shortest lifetime whose default renewal margin
	// (2m) outruns kubeletPropagation; a 3m token's margin is only 90 s.
	mountedLifetime = 4 * time.Minute
)

var (
	cfg env
	k8s client.WithWatch
	// ns is the suite's own namespace, deleted at the end.
	ns string
	// qrvey is the Qrvey provider in ns and its requests.
	qrvey harness.QrveyFixture
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "e2e suite (local single-node cluster)")
}

func loadEnv() env {
	state := os.Getenv("LOCAL_CLUSTER_DIR")
	if state == "" {
		state = "/tmp/embed-token-operator-cluster"
	}
	sim := os.Getenv("VENDORSIM_ADDR")
	if sim == "" {
		sim = "127.0.0.1:8089"
	}
	key := os.Getenv("VENDORSIM_QRVEY_API_KEY")
	if key == "" {
		key = "local-cluster-qrvey-key"
	}
	return env{
		stateDir:    state,
		kubectl:     filepath.Join(state, "bin", "kubectl"),
		kubeconfig:  filepath.Join(state, "kubeconfig"),
		auditLog:    filepath.Join(state, "logs", "audit.log"),
		simURL:      "http://" + sim,
		qrveyAPIKey: key,
	}
}

var _ = BeforeSuite(func(ctx SpecContext) {
	SetDefaultEventuallyPollingInterval(time.Second)
	cfg = loadEnv()
	restCfg, err := clientcmd.BuildConfigFromFlags("", cfg.kubeconfig)
	Expect(err).NotTo(HaveOccurred(), "no local cluster: run `make test-e2e` or `hack/local-cluster up`")
	k8s, err = client.NewWithWatch(restCfg, client.Options{Scheme: harness.Scheme})
	Expect(err).NotTo(HaveOccurred())

	By("checking the operator is deployed and ready")
	Eventually(func(g Gomega) {
		d := &appsv1.Deployment{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: operatorSA}, d)).To(Succeed())
		g.Expect(d.Status.ReadyReplicas).To(BeEquivalentTo(1))
		// The simulator listens on loopback, which the egress guard
		// refuses unless config/local allows exactly its address.
		g.Expect(d.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--allow-vendor-cidrs=127.0.0.1/32"))
	}).WithContext(ctx).WithTimeout(2 * time.Minute).Should(Succeed())

	ns = "e2e-" + randSuffix()
	By("creating namespace " + ns + " with a Qrvey provider pointing at the simulator")
	qrvey = harness.QrveyFixture{Namespace: ns, Provider: "qrvey", SimURL: cfg.simURL, APIKey: cfg.qrveyAPIKey, UserPrefix: ns + "-"}
	Expect(qrvey.Apply(ctx, k8s)).To(Succeed())
}, NodeTimeout(5*time.Minute))

var _ = AfterSuite(func(ctx SpecContext) {
	if ns == "" || os.Getenv("E2E_KEEP_NAMESPACE") != "" {
		return
	}
	_ = k8s.Delete(ctx, &corev1.Namespace{ObjectMeta: objectMeta("", ns)})
}, NodeTimeout(time.Minute))

// Dump what helps to debug a failure: the operator's log tail.
var _ = ReportAfterEach(func(r SpecReport) {
	if r.Failed() {
		AddReportEntry("operator log tail", operatorLogTail(100))
	}
})
