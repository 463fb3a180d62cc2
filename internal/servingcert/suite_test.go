package servingcert_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/endpointserver"
	"github.com/embedtokens/embed-token-operator/internal/eventwriter"
	"github.com/embedtokens/embed-token-operator/internal/servingcert"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

// The suite runs the rotator, the Secret-watching source, the publisher and
// the HTTPS listener, wired as cmd/tokenendpoint.go wires them, against a
// real kube-apiserver and etcd.
const (
	operatorNamespace = "eto-system"
	serviceName       = "token-endpoint"
	secretName        = "token-endpoint-tls"
)

var (
	testEnv   *envtest.Environment
	cfg       *rest.Config
	k8sClient client.Client
	scheme    = runtime.NewScheme()
	certs     *servingcert.Source
	server    *endpointserver.Server
	stopMgr   context.CancelFunc
	mgrDone   chan struct{}
)

func TestServingCert(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Serving Certificate Suite")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))

	testEnv = harness.Environment(filepath.Join("..", ".."))
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred(), "start envtest; set KUBEBUILDER_ASSETS=$(bash hack/envtest-assets.sh)")
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	createNamespace(ctx, operatorNamespace)

	cacheOpts := cache.Options{ByObject: map[client.Object]cache.ByObject{}}
	obj, by := servingcert.CacheByObject()
	cacheOpts.ByObject[obj] = by
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0", Cache: cacheOpts,
	})
	Expect(err).NotTo(HaveOccurred())
	rotator, err := servingcert.NewRotator(newClient(), servingcert.RotatorOptions{
		Namespace: operatorNamespace, SecretName: secretName,
		DNSNames: servingcert.DNSNames(serviceName, operatorNamespace), IPs: servingcert.IPAddresses(),
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(mgr.Add(rotator)).To(Succeed())
	certs = servingcert.NewSource(kubernetes.NewForConfigOrDie(cfg), operatorNamespace, secretName)
	Expect(mgr.Add(certs)).To(Succeed())
	recorder, err := eventwriter.NewForConfig(cfg, mgr.GetHTTPClient(), scheme, "embed-token-operator", eventwriter.Options{})
	Expect(err).NotTo(HaveOccurred())
	Expect(mgr.Add(recorder)).To(Succeed())
	Expect(servingcert.SetupPublisher(mgr, certs, recorder)).To(Succeed())
	server = endpointserver.New("127.0.0.1:0", endpointserver.NotImplemented(), certs)
	server.Ready = func(ctx context.Context) error { return certs.WaitForCertificate(ctx, time.Minute) }
	Expect(mgr.Add(server)).To(Succeed())

	mgrCtx, cancel := context.WithCancel(context.Background())
	stopMgr, mgrDone = cancel, make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(mgrDone)
		Expect(mgr.Start(mgrCtx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	if stopMgr != nil {
		stopMgr()
		<-mgrDone
	}
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// newClient is a client of its own, as each replica has, reading straight
// from the API server.
func newClient() client.Client {
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	return c
}
