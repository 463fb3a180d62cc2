package main

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/embedtokens/embed-token-operator/test/harness"
)

const mib = 1 << 20

// notOperators tells writes the operator does not make: the benchmark
// client's to the requests themselves (creating, annotating them) and
// kube-apiserver's own identity Lease heartbeats (the manager runs without
// leader election here).
func notOperators(k harness.RequestKey) bool {
	return k.Resource == "embedtokenrequests" && k.Subresource == "" || k.Resource == "leases"
}

// ownWrites counts only the operator's writes.
func ownWrites(p phase) float64 {
	n := p.Writes
	for k, v := range p.Requests {
		if k.IsWrite() && notOperators(k) {
			n -= v
		}
	}
	return n
}

func perToken(v float64, tokens int) string {
	if tokens == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", v/float64(tokens))
}

func perMinute(v float64, p phase) string {
	return fmt.Sprintf("%.1f", v/p.Duration.Minutes())
}

// printTable renders the results as a Markdown table, ready for docs/benchmarks.md.
// It renders into memory and writes w once.
func printTable(w io.Writer, cfg config, r results) error {
	var out, rows bytes.Buffer
	row := func(k, v string) { fmt.Fprintf(&rows, "| %s\t %s\t\n", k, v) }
	fmt.Fprintf(&out, "\nN=%d unrelated Secrets=%d qps=%g burst=%d reconcilers=%d manager GOMEMLIMIT=%s GOGC=%s\nmachine: %s\n\n",
		cfg.N, cfg.Unrelated, cfg.QPS, cfg.Burst, cfg.Concurrency, cmp.Or(cfg.ManagerMemLimit, "unset"), cmp.Or(cfg.ManagerGOGC, "unset"), r.Machine)
	row("metric", "value")
	row("---", "---")
	issueRow := "apply N requests → all Ready"
	if cfg.Precreate {
		issueRow = fmt.Sprintf("N requests exist; manager start → all Ready (startup %s)", r.ManagerStartup.Round(1e7))
	}
	row(issueRow, r.Issue.Duration.Round(1e7).String())
	floorRows(row, cfg, r)
	row("vendor calls per issued token", perToken(float64(r.Issue.VendorCalls), r.Issue.Issued))
	row("API writes per issued token (operator's)", perToken(ownWrites(r.Issue), r.Issue.Issued))
	row("  of which", breakdown(r.Issue, r.Issue.Issued))
	row("API reads (GET) per issued token", perToken(gets(r.Issue), r.Issue.Issued))
	row("all API requests per issued token (benchmark client's too)", allRequests(r.Issue, r.Issue.Issued))
	row("API server time per request, mean (ms)", latencies(r.Issue))
	row("refresh wave (annotate all → all Secrets refreshed)", r.Wave.Duration.Round(1e7).String())
	row("wave: vendor calls per token", perToken(float64(r.Wave.VendorCalls), r.Wave.Issued))
	row("wave: API writes per token (operator's)", perToken(ownWrites(r.Wave), r.Wave.Issued))
	row("steady state: API writes per minute", perMinute(ownWrites(r.Steady), r.Steady))
	row("steady state: vendor calls per minute", perMinute(float64(r.Steady.VendorCalls), r.Steady))
	row("manager RSS idle / after issue / steady (MiB)", fmt.Sprintf("%.1f / %.1f / %.1f", float64(r.IdleRSS)/mib, float64(r.ReadyRSS)/mib, float64(r.SteadyRSS)/mib))
	row("manager peak RSS, VmHWM: until all Ready / whole run (MiB)", fmt.Sprintf("%.1f / %.1f", float64(r.IssuePeakRSS)/mib, float64(r.PeakRSS)/mib))
	row("manager steady RSS without the binary's pages, RssAnon (MiB)", fmt.Sprintf("%.1f", float64(r.SteadyRSSAnon)/mib))
	row("manager CPU: issue / steady / wave / total (s)", fmt.Sprintf("%.1f / %.1f / %.1f / %.1f",
		r.Issue.CPU.Seconds(), r.Steady.CPU.Seconds(), r.Wave.CPU.Seconds(), r.ManagerCPU.Seconds()))
	row("one metrics scrape: duration / per-request series", fmt.Sprintf("%s / %d", r.Scrape.Round(1e6), r.ScrapedRequests))
	if r.UnrelatedCreate > 0 {
		row("creating the unrelated Secrets took", r.UnrelatedCreate.Round(1e7).String())
	}
	tw := tabwriter.NewWriter(&out, 0, 0, 1, ' ', tabwriter.Debug)
	if _, err := tw.Write(rows.Bytes()); err != nil {
		return err
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range []string{r.ProfilePath, r.APIServerProfilePath, r.EtcdProfilePath} {
		if p != "" {
			fmt.Fprintf(&out, "\nCPU profile: %s (go tool pprof -top %s)", p, p)
		}
	}
	fmt.Fprintf(&out, "\nmanager log: %s\n", r.ManagerLog)
	_, err := w.Write(out.Bytes())
	return err
}

// breakdown lists the operator's writes per token by verb and resource.
func breakdown(p phase, tokens int) string {
	return perTokenList(p, tokens, func(k harness.RequestKey) bool { return k.IsWrite() && !notOperators(k) })
}

// perTokenList lists the request types keep selects, each with its count per
// token.
func perTokenList(p phase, tokens int, keep func(harness.RequestKey) bool) string {
	var parts []string
	for _, k := range p.Requests.Keys() {
		if keep(k) {
			parts = append(parts, k.String()+" "+perToken(p.Requests[k], tokens))
		}
	}
	return strings.Join(parts, ", ")
}

// gets counts single-object reads (GET), which only the operator makes: the
// benchmark reads through its informers (LIST and WATCH).
func gets(p phase) float64 {
	n := 0.0
	for k, v := range p.Requests {
		if k.Verb == "GET" {
			n += v
		}
	}
	return n
}

// floorRows prints each floor and the operator's time over it; the floor
// that is like-for-like with the run (requests created inside the window or
// not) comes first.
func floorRows(row func(k, v string), cfg config, r results) {
	if r.FloorUnthrottled == 0 {
		return
	}
	ratio := func(f time.Duration) string { return fmt.Sprintf("%.2f", r.Issue.Duration.Seconds()/f.Seconds()) }
	type floorRow struct {
		name string
		d    time.Duration
	}
	pre := []floorRow{
		{"floor, no rate limit: N Secret creates + N status patches", r.FloorUnthrottled},
		{"floor at the manager's QPS", r.Floor},
	}
	apply := []floorRow{
		{"floor with the apply, no rate limit: N request creates in the window too", r.FloorWithApplyUnthrottled},
		{"floor with the apply at the manager's QPS", r.FloorWithApply},
	}
	rows := append(apply, pre...)
	if cfg.Precreate {
		rows = append(pre, apply...)
	}
	for i, f := range rows {
		row(f.name, f.d.Round(1e7).String())
		label := "ratio operator / " + f.name[:strings.Index(f.name+":", ":")]
		if i == 0 {
			label = "**" + label + "** (like-for-like)"
		}
		row(label, ratio(f.d))
	}
}

// allRequests lists every request per token by verb and resource, the
// benchmark client's and the informers' included, leases left out.
func allRequests(p phase, tokens int) string {
	return perTokenList(p, tokens, func(k harness.RequestKey) bool {
		return k.Resource != "leases" && p.Requests[k] >= float64(tokens)/100
	})
}

// latencies lists the API server's mean time serving each request type that
// moved in p (WATCH and leases left out).
func latencies(p phase) string {
	s := ""
	for _, k := range p.Requests.Keys() {
		if k.Resource == "leases" || k.Verb == "WATCH" || p.Requests[k] < 10 {
			continue
		}
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("%s %.1f", k, 1000*p.Seconds[k]/p.Requests[k])
	}
	return s
}
