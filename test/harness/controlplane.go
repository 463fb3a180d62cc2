// Package harness is the one home of the scaffolding the test suites share,
// out of the shipped binaries (only tests and cmd/devenv import it): the
// envtest environment every suite starts, the Qrvey fixture, the reading of a
// token Secret, and, for the chaos tests and the benchmark, the operator run
// the way a cluster runs it: a real kube-apiserver and etcd (the envtest
// assets), the manager binary as a separate process that can be killed and
// restarted, the vendor simulator, and readings of what each of them did
// (process memory and CPU, the API server's request counters). Vendor unit
// tests have their own helpers in harness/providertest.
package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// Scheme knows the core types, CustomResourceDefinitions and the operator's API.
var Scheme = newScheme()

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s)) // static registrations, cannot fail
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

// ControlPlane is a kube-apiserver and etcd on 127.0.0.1 with the operator's
// CRDs installed. The API server keeps its port and certificates across
// StopAPIServer/StartAPIServer, so running clients reconnect by themselves.
type ControlPlane struct {
	// Config is an admin (system:masters) client configuration.
	Config *rest.Config
	// Client is an uncached admin client.
	Client client.Client
	// Kubeconfig is the path of a kubeconfig file for Config's identity.
	Kubeconfig string

	env *envtest.Environment
}

// StartControlPlane starts the API server and etcd from KUBEBUILDER_ASSETS,
// keeping certificates and the kubeconfig under dir. repoRoot locates
// config/crd/bases. extraArgs are added to kube-apiserver's flags and
// etcdArgs (name=value pairs without the dashes, e.g. "enable-pprof=true")
// to etcd's.
func StartControlPlane(dir, repoRoot string, extraArgs map[string]string, etcdArgs ...string) (*ControlPlane, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, errors.New("KUBEBUILDER_ASSETS is not set: run with KUBEBUILDER_ASSETS=$(bash hack/envtest-assets.sh)")
	}
	certDir := filepath.Join(dir, "apiserver")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", certDir, err)
	}
	// A fixed CertDir makes envtest keep the serving certificate on restart.
	// kube-apiserver may take longer than this to drain its connections on
	// SIGTERM; it is then SIGKILLed, an outage just as real.
	api := &envtest.APIServer{CertDir: certDir, StopTimeout: apiServerStopTimeout}
	for k, v := range extraArgs {
		api.Configure().Set(k, v)
	}
	env := Environment(repoRoot)
	env.ControlPlane.APIServer = api
	if len(etcdArgs) > 0 {
		etcd := &envtest.Etcd{}
		for _, a := range etcdArgs {
			k, v, _ := strings.Cut(a, "=")
			etcd.Configure().Set(k, v)
		}
		env.ControlPlane.Etcd = etcd
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd: %w", err)
	}
	cp := &ControlPlane{Config: cfg, env: env}
	if err := cp.init(dir); err != nil {
		_ = env.Stop()
		return nil, err
	}
	return cp, nil
}

func (cp *ControlPlane) init(dir string) error {
	cp.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := WriteKubeconfig(cp.env, "harness-admin", cp.Kubeconfig); err != nil {
		return err
	}
	cp.Config = rest.CopyConfig(cp.Config)
	cp.Config.QPS, cp.Config.Burst = -1, 0 // the harness itself must never be the bottleneck
	var err error
	cp.Client, err = client.New(cp.Config, client.Options{Scheme: Scheme})
	if err != nil {
		return fmt.Errorf("creating the admin client: %w", err)
	}
	return nil
}

// EtcdURL is etcd's client address (plain HTTP on 127.0.0.1), where a
// control plane started with "enable-pprof=true" serves /debug/pprof.
func (cp *ControlPlane) EtcdURL() string {
	if cp.env.ControlPlane.Etcd == nil || cp.env.ControlPlane.Etcd.URL == nil {
		return ""
	}
	return cp.env.ControlPlane.Etcd.URL.String()
}

// apiServerStopTimeout bounds kube-apiserver's graceful shutdown.
const apiServerStopTimeout = 5 * time.Second

// StopAPIServer stops kube-apiserver (SIGTERM, then SIGKILL after
// apiServerStopTimeout) and leaves etcd running.
func (cp *ControlPlane) StopAPIServer() error {
	if err := cp.env.ControlPlane.APIServer.Stop(); err != nil && !killedAfterTimeout(err) {
		return fmt.Errorf("stopping kube-apiserver: %w", err)
	}
	return nil
}

// killedAfterTimeout recognises envtest's error for a process it had to
// SIGKILL because it did not stop in time: the process is gone all the same.
func killedAfterTimeout(err error) bool {
	return strings.Contains(err.Error(), "timeout waiting for process") && !strings.Contains(err.Error(), "unable to kill")
}

// StartAPIServer starts kube-apiserver again on the same port with the same
// certificates, and waits until it is healthy.
func (cp *ControlPlane) StartAPIServer() error {
	if err := cp.env.ControlPlane.APIServer.Start(); err != nil {
		return fmt.Errorf("restarting kube-apiserver: %w", err)
	}
	return nil
}

// Stop stops the API server and etcd.
func (cp *ControlPlane) Stop() error {
	if err := cp.env.Stop(); err != nil && !killedAfterTimeout(err) {
		return fmt.Errorf("stopping the control plane: %w", err)
	}
	return nil
}
