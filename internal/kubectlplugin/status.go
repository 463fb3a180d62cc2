package kubectlplugin

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// States of a request in the status table, worst first.
const (
	StateExpired  = "EXPIRED"
	StateNoToken  = "NO TOKEN"
	StateFailing  = "REFRESH FAILING"
	StateExpiring = "EXPIRING SOON"
	StateFresh    = "FRESH"
	StateSuspend  = "SUSPENDED"
)

// Row is one line of the status table.
type Row struct {
	Namespace, Name, Provider, Ready, Reason string
	ExpiresIn, RenewsIn                      string
	State                                    string
}

func (o *options) statusCommand() *cobra.Command {
	var within time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List EmbedTokenRequests with time to expiry; flag tokens expired, failing or expiring soon",
		Long: "List EmbedTokenRequests with time to expiry and to the next renewal.\n\n" +
			"STATE is EXPIRED (the Secret holds an expired token), NO TOKEN, REFRESH FAILING (the token is valid\n" +
			"but refreshing it fails), EXPIRING SOON (inside its renewal margin or --expiring-within), SUSPENDED\n" +
			"or FRESH.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ns, err := o.client()
			if err != nil {
				return err
			}
			var list v1alpha1.EmbedTokenRequestList
			var opts []client.ListOption
			if !o.allNamespaces {
				opts = append(opts, client.InNamespace(ns))
			}
			if err := c.List(cmd.Context(), &list, opts...); err != nil {
				return fmt.Errorf("listing EmbedTokenRequests: %w", err)
			}
			if len(list.Items) == 0 {
				_, err := fmt.Fprintln(o.streams.ErrOut, "No EmbedTokenRequests found")
				return err
			}
			return PrintStatus(o.streams.Out, StatusRows(list.Items, o.now(), within), o.allNamespaces)
		},
	}
	cmd.Flags().BoolVarP(&o.allNamespaces, "all-namespaces", "A", false, "List requests in every namespace")
	cmd.Flags().DurationVar(&within, "expiring-within", 0,
		"Also flag tokens that expire within this duration (tokens inside their renewal margin are always flagged)")
	return cmd
}

// StatusRows turns requests into table rows, sorted by namespace and name.
func StatusRows(items []v1alpha1.EmbedTokenRequest, now time.Time, within time.Duration) []Row {
	rows := make([]Row, 0, len(items))
	for i := range items {
		etr := &items[i]
		r := Row{Namespace: etr.Namespace, Name: etr.Name, Provider: etr.Spec.ProviderRef.Name,
			Ready: "Unknown", ExpiresIn: "-", RenewsIn: "-", State: State(etr, now, within)}
		if c := meta.FindStatusCondition(etr.Status.Conditions, v1alpha1.ConditionReady); c != nil {
			r.Ready, r.Reason = string(c.Status), c.Reason
		}
		if etr.Status.ExpiresAt != nil {
			r.ExpiresIn = Until(etr.Status.ExpiresAt.Time, now)
		}
		if etr.Status.RenewAt != nil {
			r.RenewsIn = Until(etr.Status.RenewAt.Time, now)
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Namespace != rows[j].Namespace {
			return rows[i].Namespace < rows[j].Namespace
		}
		return rows[i].Name < rows[j].Name
	})
	return rows
}

// State classifies a request for the STATE column. A token is expiring soon
// once it is inside its renewal margin (the renewal time has passed, or a
// refresh already failed) or expires within the given window.
func State(etr *v1alpha1.EmbedTokenRequest, now time.Time, within time.Duration) string {
	st := etr.Status
	switch {
	case st.ExpiresAt == nil:
		return StateNoToken
	case !now.Before(st.ExpiresAt.Time):
		return StateExpired
	case etr.Spec.Suspend:
		return StateSuspend
	case st.FailedAttempts > 0:
		return StateFailing
	case st.RenewAt != nil && !now.Before(st.RenewAt.Time), within > 0 && st.ExpiresAt.Sub(now) <= within:
		return StateExpiring
	}
	return StateFresh
}

// Until formats the time from now to t like kubectl's ages: "59m", "2d3h";
// a past time as "5m ago".
func Until(t, now time.Time) string {
	if d := t.Sub(now); d >= 0 {
		return duration.HumanDuration(d)
	}
	return duration.HumanDuration(now.Sub(t)) + " ago"
}

// PrintStatus writes rows as a kubectl-style table.
func PrintStatus(w io.Writer, rows []Row, allNamespaces bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	header := "NAME\tPROVIDER\tREADY\tREASON\tEXPIRES IN\tRENEWS IN\tSTATE"
	if allNamespaces {
		header = "NAMESPACE\t" + header
	}
	p := &printer{w: tw}
	p.printf("%s\n", header)
	for _, r := range rows {
		if allNamespaces {
			p.printf("%s\t", r.Namespace)
		}
		p.printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Provider, r.Ready, orDash(r.Reason), r.ExpiresIn, r.RenewsIn, r.State)
	}
	if p.err != nil {
		return p.err
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
