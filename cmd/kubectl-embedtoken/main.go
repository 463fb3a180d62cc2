// Command kubectl-embedtoken is a kubectl plugin for EmbedTokenRequests and
// EmbedTokenTemplates. Put it on PATH and run
// `kubectl embedtoken status|refresh|inspect|token`.
package main

import (
	"context"
	"fmt"
	"os"

	"k8s.io/utils/clock"

	"github.com/embedtokens/embed-token-operator/internal/kubectlplugin"
)

func main() {
	cmd := kubectlplugin.NewCommand(kubectlplugin.Streams{Out: os.Stdout, ErrOut: os.Stderr}, clock.RealClock{})
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
