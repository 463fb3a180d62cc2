// Command bench measures the operator at scale: the manager binary as a
// separate process against a real kube-apiserver and etcd (the envtest
// assets) and the vendor simulator. It applies N EmbedTokenRequests, waits
// until all are Ready, and reports time, vendor calls and API writes per
// token, the manager's memory and CPU, a full refresh wave, the steady state
// between refreshes, and floors: a plain client doing only the unavoidable
// writes, with no client rate limit and at the manager's client QPS. Run it with `make bench N=1000`; docs/benchmarks.md
// has the results and how to read them.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

func main() {
	var cfg config
	flag.IntVar(&cfg.N, "n", 1000, "Number of EmbedTokenRequests.")
	flag.IntVar(&cfg.Unrelated, "unrelated", 0, "Unrelated Secrets (not managed by the operator) created before the run.")
	flag.Float64Var(&cfg.QPS, "qps", 50, "The manager's --kube-api-qps, also the floor client's QPS.")
	flag.IntVar(&cfg.Burst, "burst", 100, "The manager's --kube-api-burst, also the floor client's burst.")
	flag.IntVar(&cfg.Concurrency, "concurrency", 10, "The manager's --max-concurrent-reconciles, also the floor's workers.")
	flag.DurationVar(&cfg.Steady, "steady", time.Minute, "How long to watch the steady state between refreshes.")
	flag.DurationVar(&cfg.Profile, "cpu-profile", 0, "Capture a CPU profile of the manager for this long from the start of issuing (0: none).")
	flag.DurationVar(&cfg.APIProfile, "api-profile", 0, "Capture CPU profiles of kube-apiserver and etcd for this long from the start of issuing (0: none).")
	flag.StringVar(&cfg.ManagerGOGC, "manager-gogc", "", "GOGC for the manager alone (e.g. 50); empty: the manager's own default.")
	flag.BoolVar(&cfg.Precreate, "precreate", false, "Create the N requests before the manager starts (untimed) and time manager start → all Ready.")
	flag.StringVar(&cfg.OutDir, "out", "", "Directory for results.json, the CPU profile and the manager log (default: a temp dir).")
	flag.BoolVar(&cfg.SkipFloor, "skip-floor", false, "Skip the floor measurement.")
	flag.StringVar(&cfg.ManagerMemLimit, "manager-gomemlimit", "", "GOMEMLIMIT for the manager alone, as a container memory limit sets it (e.g. 135MiB); empty: the Go default.")
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.Level(zapcore.ErrorLevel))) // quiet: errors only

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if cfg.OutDir, err = outDir(cfg.OutDir); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	res, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	data, _ := json.MarshalIndent(struct {
		Config  config
		Results results
	}{cfg, res}, "", "  ")
	path := filepath.Join(cfg.OutDir, "results.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if err := printTable(os.Stdout, cfg, res); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	fmt.Println("results:", path)
}
