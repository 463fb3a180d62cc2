package kubectlplugin

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

func (o *options) refreshCommand() *cobra.Command {
	var waitFor time.Duration
	cmd := &cobra.Command{
		Use:   "refresh NAME",
		Short: "Force a new token now by setting the embedtokens.io/refresh annotation",
		Long: "Set the embedtokens.io/refresh annotation of the request to the current time (RFC 3339); the\n" +
			"operator issues exactly one new token and records the value in status.lastHandledRefresh.\n" +
			"Within a minute of the last token (the manager's --min-refresh-interval) the token is issued\n" +
			"when that minute has passed; status.renewAt says when.\n" +
			"If the request is managed by GitOps, change the annotation in Git instead, or the next sync reverts it.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := o.client()
			if err != nil {
				return err
			}
			value := o.now().UTC().Format(time.RFC3339Nano)
			key := types.NamespacedName{Namespace: ns, Name: args[0]}
			if err := Refresh(cmd.Context(), c, key, value); err != nil {
				return err
			}
			if _, err := fmt.Fprintf(o.streams.Out, "embedtokenrequest/%s refresh requested (%s=%s)\n", key.Name, v1alpha1.RefreshAnnotation, value); err != nil {
				return err
			}
			if waitFor <= 0 {
				return nil
			}
			if err := WaitRefreshed(cmd.Context(), c, key, value, waitFor); err != nil {
				return err
			}
			_, err = fmt.Fprintf(o.streams.Out, "embedtokenrequest/%s refreshed\n", key.Name)
			return err
		},
	}
	cmd.Flags().DurationVar(&waitFor, "wait", 0, "Wait up to this long for the operator to handle the refresh (e.g. 1m)")
	return cmd
}

// Refresh sets the refresh annotation with a merge patch that touches only
// that key, so no other field changes owner.
func Refresh(ctx context.Context, c client.Client, key types.NamespacedName, value string) error {
	etr := &v1alpha1.EmbedTokenRequest{}
	if err := c.Get(ctx, key, etr); err != nil {
		return fmt.Errorf("reading EmbedTokenRequest %s: %w", key, err)
	}
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, v1alpha1.RefreshAnnotation, value)
	if err := c.Patch(ctx, etr, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("annotating EmbedTokenRequest %s: %w", key, err)
	}
	return nil
}

// WaitRefreshed waits until the operator reports value as handled.
func WaitRefreshed(ctx context.Context, c client.Client, key types.NamespacedName, value string, timeout time.Duration) error {
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		etr := &v1alpha1.EmbedTokenRequest{}
		if err := c.Get(ctx, key, etr); err != nil {
			return false, err
		}
		return etr.Status.LastHandledRefresh == value, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for EmbedTokenRequest %s to refresh: %w", key, err)
	}
	return nil
}
