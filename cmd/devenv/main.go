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
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/embedtokens/embed-token-operator/internal/controller"
	"github.com/embedtokens/embed-token-operator/internal/provider/egress"
	"github.com/embedtokens/embed-token-operator/internal/provider/registry"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness"
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
	env := harness.Environment(".")
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("starting kube-apiserver and etcd: %w", err)
	}
	defer env.Stop() //nolint:errcheck // best effort on the way out
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := harness.WriteKubeconfig(env, "dev-admin", kubeconfig); err != nil {
		return err
	}

	sim := vendorsim.New(vendorsim.Options{QrveyAPIKey: demoKey})
	if err := sim.StartOn(simAddr); err != nil {
		return fmt.Errorf("starting the vendor simulator: %w", err)
	}
	defer sim.Close()

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: harness.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, Cache: controller.CacheOptions(nil)})
	if err != nil {
		return err
	}
	if err := controller.Setup(mgr, controller.Options{Providers: registry.All(), AllowVendorCIDRs: allowSimulator(simAddr)}); err != nil {
		return err
	}
	go func() { _ = mgr.Start(ctx) }()

	c, err := client.New(cfg, client.Options{Scheme: harness.Scheme})
	if err != nil {
		return err
	}
	if err := applyDemo(ctx, c, sim.URL(), lifetime); err != nil {
		return err
	}
	fmt.Printf(`
make dev started, all on 127.0.0.1 and all stopped by Ctrl-C:
  kube-apiserver and etcd  %s (state under %s)
  vendor simulator         %s (Qrvey API key %q)
  the operator             in this process, --allow-vendor-cidrs=%s

It applied namespace demo: EmbedProvider qrvey and EmbedTokenRequest
sales-dashboard (%s tokens). In another shell, watch the token refresh:

  export KUBECONFIG=%s
  kubectl get embedtokenrequest sales-dashboard -n demo -w

`, cfg.Host, dir, sim.URL(), demoKey, allowSimulator(simAddr)[0], lifetime, kubeconfig)
	watchToken(ctx, c)
	return nil
}

// allowSimulator is the --allow-vendor-cidrs the operator needs to reach
// the simulator through the egress guard, which refuses loopback: exactly
// the simulator's address and port (127.0.0.1 by default), or every port of
// the address when the port is chosen when it starts.
func allowSimulator(simAddr string) []egress.Allowed {
	host, portText, _ := net.SplitHostPort(simAddr)
	a, err := netip.ParseAddr(host)
	if err != nil {
		a = netip.MustParseAddr("127.0.0.1")
	}
	port, _ := strconv.ParseUint(portText, 10, 16)
	return []egress.Allowed{{Prefix: netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), Port: uint16(port)}}
}

// applyDemo creates what a platform team and an app team would apply.
func applyDemo(ctx context.Context, c client.Client, simURL string, lifetime time.Duration) error {
	demo := harness.QrveyFixture{Namespace: "demo", Provider: "qrvey", SimURL: simURL, APIKey: demoKey}
	if err := demo.Apply(ctx, c); err != nil {
		return err
	}
	etr := demo.Request("sales-dashboard", lifetime)
	etr.Spec.Qrvey.UserID, etr.Spec.Qrvey.AppID = "alice", "app-123"
	if err := c.Create(ctx, etr); err != nil {
		return fmt.Errorf("creating EmbedTokenRequest %s: %w", etr.Name, err)
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
		tok, err := harness.GetToken(ctx, c, "demo", "sales-dashboard")
		if err != nil {
			fmt.Println("waiting for Secret demo/sales-dashboard")
			continue
		}
		fmt.Printf("%s  token %s  expires in %s\n", time.Now().Format(time.TimeOnly),
			tok.Digest(), time.Until(tok.ExpiresAt).Round(time.Second))
	}
}
