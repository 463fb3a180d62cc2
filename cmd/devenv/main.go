// Command devenv runs the operator with no cluster at hand: a real
// kube-apiserver and etcd on 127.0.0.1 (the envtest assets), the vendor
// simulator, the operator, and a sample Qrvey provider and request. It prints
// a kubeconfig for kubectl and the token's digest and remaining lifetime as it
// is refreshed. Run it with `make dev`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/controller"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/registry"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

const demoKey = "dev-api-key"

func main() {
	dir := flag.String("dir", filepath.Join(os.TempDir(), "embed-token-operator-dev"), "Where to write the kubeconfig.")
	lifetime := flag.Duration("lifetime", 90*time.Second, "Lifetime of the demo token.")
	simAddr := flag.String("simulator-address", "127.0.0.1:8089", "Where the vendor simulator listens.")
	flag.Parse()
	ctrl.SetLogger(zap.New())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dir, *simAddr, *lifetime); err != nil {
		fmt.Fprintln(os.Stderr, "devenv:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir, simAddr string, lifetime time.Duration) error {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return errors.New("KUBEBUILDER_ASSETS is not set: run through `make dev`")
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))

	env := &envtest.Environment{CRDDirectoryPaths: []string{"config/crd/bases"}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("starting kube-apiserver and etcd: %w", err)
	}
	defer env.Stop() //nolint:errcheck // best effort on the way out
	kubeconfig, err := writeKubeconfig(env, dir)
	if err != nil {
		return err
	}

	sim := vendorsim.New(vendorsim.Options{QrveyAPIKey: demoKey})
	if err := sim.StartOn(simAddr); err != nil {
		return fmt.Errorf("starting the vendor simulator: %w", err)
	}
	defer sim.Close()

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}, Cache: controller.CacheOptions()})
	if err != nil {
		return err
	}
	if err := controller.Setup(mgr, controller.Options{Providers: registry.All()}); err != nil {
		return err
	}
	go func() { _ = mgr.Start(ctx) }()

	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	if err := applyDemo(ctx, c, sim.URL(), lifetime); err != nil {
		return err
	}
	fmt.Printf("\nThe operator is running against a local kube-apiserver.\n  export KUBECONFIG=%s\n  kubectl get etr,eprov -n demo\n\nPress Ctrl-C to stop.\n\n", kubeconfig)
	watchToken(ctx, c)
	return nil
}

func writeKubeconfig(env *envtest.Environment, dir string) (string, error) {
	user, err := env.AddUser(envtest.User{Name: "dev-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", fmt.Errorf("creating an admin user: %w", err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, data, 0o600)
}

// applyDemo creates what a platform team and an app team would apply.
func applyDemo(ctx context.Context, c client.Client, simURL string, lifetime time.Duration) error {
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "qrvey-credentials"},
			StringData: map[string]string{"apiKey": demoKey}},
		&v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "qrvey"},
			Spec: v1alpha1.EmbedProviderSpec{AllowInsecureHTTP: true, VendorConfig: v1alpha1.VendorConfig{Qrvey: &v1alpha1.QrveyProvider{
				URL: simURL, APIKeySecretRef: v1alpha1.SecretKeySelector{Name: "qrvey-credentials", Key: "apiKey"}}}}},
		&v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "sales-dashboard"},
			Spec: v1alpha1.EmbedTokenRequestSpec{
				ProviderRef:  v1alpha1.ProviderRef{Name: "qrvey"},
				VendorParams: v1alpha1.VendorParams{Qrvey: &v1alpha1.QrveyParams{UserID: "alice", AppID: "app-123"}},
				Lifetime:     &metav1.Duration{Duration: lifetime},
			}},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// watchToken prints what a pod mounting the Secret would read.
func watchToken(ctx context.Context, c client.Client) {
	tick := time.NewTicker(3 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "demo", Name: "sales-dashboard"}, s); err != nil {
			fmt.Println("waiting for Secret demo/sales-dashboard")
			continue
		}
		exp, _ := time.Parse(time.RFC3339, string(s.Data[v1alpha1.SecretExpiresAtKey]))
		fmt.Printf("%s  token %s  expires in %s\n", time.Now().Format(time.TimeOnly),
			provider.Digest(string(s.Data[v1alpha1.SecretTokenKey])), time.Until(exp).Round(time.Second))
	}
}
