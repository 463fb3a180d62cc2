// Package kubectlplugin implements kubectl-embedtoken, the kubectl plugin for
// EmbedTokenRequests: a status table with time to expiry, a forced refresh,
// a look at a token's non-secret JWT header and claims, and a token from an
// EmbedTokenTemplate through the operator's token endpoint.
package kubectlplugin

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// Streams are where a command reads and writes, so tests can capture them.
type Streams struct {
	Out, ErrOut io.Writer
}

// options are the flags every subcommand shares, as kubectl names them.
type options struct {
	streams       Streams
	clock         clock.PassiveClock
	kubeconfig    clientcmd.ClientConfig
	allNamespaces bool
}

// NewCommand returns the kubectl-embedtoken root command.
func NewCommand(streams Streams, clk clock.PassiveClock) *cobra.Command {
	o := &options{streams: streams, clock: clk}
	root := &cobra.Command{
		Use:           "kubectl-embedtoken",
		Short:         "Inspect and refresh EmbedTokenRequests, and get tokens from EmbedTokenTemplates (embedtokens.io)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	overrides := &clientcmd.ConfigOverrides{}
	root.PersistentFlags().StringVar(&rules.ExplicitPath, "kubeconfig", "", "Path to the kubeconfig file")
	// kubectl's own connection flags: --context, -n/--namespace, --server, --token, ...
	clientcmd.BindOverrideFlags(overrides, root.PersistentFlags(), clientcmd.RecommendedConfigOverrideFlags(""))
	o.kubeconfig = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	root.AddCommand(o.statusCommand(), o.refreshCommand(), o.inspectCommand(), o.tokenCommand())
	return root
}

// client builds a client for the kubeconfig flags and returns it with the
// namespace to use.
func (o *options) client() (client.Client, string, error) {
	cfg, err := o.kubeconfig.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("loading kubeconfig: %w", err)
	}
	ns, _, err := o.kubeconfig.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("reading the namespace: %w", err)
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, "", fmt.Errorf("creating a client: %w", err)
	}
	return c, ns, nil
}

// now is the plugin's clock, injectable for tests.
func (o *options) now() time.Time { return o.clock.Now() }

// printer writes formatted text to w and keeps the first write error, so a
// command prints line by line and reports a failed write (a closed pipe, a
// full disk) once, at the end.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}
