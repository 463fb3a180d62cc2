package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

// config is one benchmark run's parameters.
type config struct {
	N, Unrelated       int
	QPS                float64
	Burst, Concurrency int
	Steady, Profile    time.Duration
	// APIProfile is how long kube-apiserver and etcd are CPU-profiled from
	// the start of issuing (0: not at all).
	APIProfile      time.Duration
	OutDir          string
	SkipFloor       bool
	ManagerMemLimit string
	ManagerGOGC     string
	// Precreate creates the N requests before the manager starts, untimed,
	// and times manager start → all Ready instead of apply → all Ready.
	Precreate bool
}

// phase is what one phase cost.
type phase struct {
	Duration    time.Duration
	VendorCalls int
	Issued      int
	Requests    harness.RequestCounts `json:"-"`
	// Seconds is the API server's time serving each verb and resource.
	Seconds harness.RequestCounts `json:"-"`
	Writes  float64
	// WritesByKey is Requests' write verbs, rendered for results.json.
	WritesByKey map[string]float64
	// RequestsByKey is every verb's count, benchmark client's included.
	RequestsByKey map[string]float64
	CPU           time.Duration
}

// results are everything the table and docs/benchmarks.md report.
type results struct {
	Machine            string
	IdleRSS, ReadyRSS  uint64
	PeakRSS, SteadyRSS uint64
	// IssuePeakRSS is VmHWM when all are Ready, before the wave.
	IssuePeakRSS        uint64
	SteadyRSSAnon       uint64
	Issue, Wave, Steady phase
	// Floor and FloorWithApply use the manager's QPS and burst; the
	// Unthrottled ones no client-side rate limit.
	Floor, FloorWithApply                       time.Duration
	FloorUnthrottled, FloorWithApplyUnthrottled time.Duration
	// ManagerStartup is, with Precreate, how long the manager took from
	// process start until its workers ran (part of Issue).
	ManagerStartup                        time.Duration
	APIServerProfilePath, EtcdProfilePath string
	ManagerCPU                            time.Duration
	UnrelatedCreate                       time.Duration
	ProfilePath, ManagerLog               string
	// Scrape is how long one scrape of the metrics endpoint took, and
	// ScrapedRequests how many embedtoken_ready series it returned.
	Scrape          time.Duration
	ScrapedRequests int
	metricsAddr     string
	pprofAddr       string
	// HeapProfilePath is the manager's heap after a GC at the end of the
	// steady state.
	HeapProfilePath string
}

const (
	benchNS, unrelatedNS = "bench", "unrelated"
	// Long-lived tokens: nothing renews by itself during the run, so the
	// steady state and the refresh wave are measured cleanly.
	benchLifetime = 4 * time.Hour
	// clientWorkers is how many goroutines the benchmark's own (unlimited)
	// client uses to apply objects.
	clientWorkers = 16
)

// outDir returns the directory for the run's files: dir, created if
// missing, or a new temporary directory when dir is empty.
func outDir(dir string) (string, error) {
	if dir == "" {
		return os.MkdirTemp("", "embedtoken-bench-")
	}
	return dir, os.MkdirAll(dir, 0o750)
}

// run measures; cfg.OutDir must exist (outDir).
func run(ctx context.Context, cfg config) (res results, err error) {
	res.Machine = machine()
	root, err := harness.RepoRoot()
	if err != nil {
		return res, err
	}
	work, err := os.MkdirTemp("", "embedtoken-bench-work-")
	if err != nil {
		return res, err
	}
	defer func() {
		if err := os.RemoveAll(work); err != nil {
			fmt.Fprintln(os.Stderr, "bench: leaving the work directory behind:", err)
		}
	}()
	step("building the manager")
	bin, err := harness.BuildManager(root, work)
	if err != nil {
		return res, err
	}
	step("starting kube-apiserver and etcd")
	cp, err := harness.StartControlPlane(work, root, nil, "enable-pprof=true")
	if err != nil {
		return res, err
	}
	defer cp.Stop() //nolint:errcheck // best effort on the way out
	sim := vendorsim.New(vendorsim.Options{})
	if err := sim.Start(); err != nil {
		return res, err
	}
	defer sim.Close()
	fx := harness.QrveyFixture{Namespace: benchNS, Provider: "qrvey", SimURL: sim.URL()}
	if err := fx.Apply(ctx, cp.Client); err != nil {
		return res, err
	}
	if err := serveEveryKind(ctx, cp.Client); err != nil {
		return res, err
	}
	if cfg.Unrelated > 0 {
		step(fmt.Sprintf("creating %d unrelated Secrets", cfg.Unrelated))
		start := time.Now()
		if err := createUnrelated(ctx, cp.Client, cfg.Unrelated); err != nil {
			return res, err
		}
		res.UnrelatedCreate = time.Since(start)
	}

	watch, err := newWatcher(ctx, cp)
	if err != nil {
		return res, err
	}
	m, profileDone, err := issue(ctx, cfg, cp, sim, watch, fx, bin, &res)
	if m != nil {
		defer m.Kill() //nolint:errcheck // already dead on the normal path
	}
	if err != nil {
		return res, err
	}
	if st, err := harness.ReadProcStats(m.PID()); err == nil {
		res.ReadyRSS, res.IssuePeakRSS = st.RSS, st.PeakRSS
	}

	step(fmt.Sprintf("watching the steady state for %s", cfg.Steady))
	res.Steady, err = measure(ctx, cp, sim, func() int { return m.PID() }, func() error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(cfg.Steady):
			return nil
		}
	})
	if err != nil {
		return res, err
	}
	if st, err := harness.ReadProcStats(m.PID()); err == nil {
		res.SteadyRSS, res.SteadyRSSAnon = st.RSS, st.RSSAnon
	}
	res.HeapProfilePath = filepath.Join(cfg.OutDir, "manager-heap.pprof")
	saveProfile(res.HeapProfilePath, func() (io.ReadCloser, error) {
		return httpGet(ctx, "http://"+res.pprofAddr+"/debug/pprof/heap?gc=1")
	})
	step("scraping the manager's metrics once")
	if res.Scrape, res.ScrapedRequests, err = scrape(ctx, res.metricsAddr); err != nil {
		return res, err
	}

	step("refresh wave: annotating every request and waiting until every Secret answered")
	res.Wave, err = measure(ctx, cp, sim, func() int { return m.PID() }, func() error {
		if err := harness.CreateParallel(ctx, cfg.N, clientWorkers, func(ctx context.Context, i int) error {
			patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"wave-1"}}}`, v1alpha1.RefreshAnnotation)
			etr := &v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: benchNS, Name: requestName(i)}}
			return cp.Client.Patch(ctx, etr, client.RawPatch(types.MergePatchType, patch))
		}); err != nil {
			return err
		}
		return watch.waitFor(ctx, func() bool { return watch.refreshedCount("wave-1") == cfg.N })
	})
	if err != nil {
		return res, err
	}
	<-profileDone
	st, err := harness.ReadProcStats(m.PID())
	if err != nil {
		return res, err
	}
	res.PeakRSS, res.ManagerCPU = st.PeakRSS, st.CPU
	if err := m.Kill(); err != nil {
		return res, err
	}
	if !cfg.SkipFloor {
		if err := floors(ctx, cp, cfg, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// serveEveryKind lists each of the operator's kinds once, untimed. The API
// server builds a custom resource's storage and watch cache on the first
// request for it and answers that request, and any watch in the few
// milliseconds after it, with 429 and "Retry-After: 1"; client-go waits the
// full second. In a cluster the operator already runs in, an earlier manager
// has made those first requests; the fixture here touches only some kinds,
// so without this the manager's startup would carry a second the cluster it
// models never charges.
func serveEveryKind(ctx context.Context, c client.Client) error {
	for _, list := range []client.ObjectList{
		&v1alpha1.EmbedTokenRequestList{}, &v1alpha1.EmbedProviderList{}, &v1alpha1.ClusterEmbedProviderList{},
	} {
		if err := c.List(ctx, list); err != nil {
			return fmt.Errorf("listing %T: %w", list, err)
		}
	}
	return nil
}

func requestName(i int) string { return fmt.Sprintf("etr-%06d", i) }

func step(msg string) { fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), msg) }

// machine describes where the numbers come from.
func machine() string {
	load, _ := os.ReadFile("/proc/loadavg")
	return fmt.Sprintf("%d CPUs (GOMAXPROCS), %s/%s, load average at start %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, string(trimNL(load)))
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// createUnrelated fills the cluster with Secrets the operator must ignore,
// each about the size of a typical TLS Secret.
func createUnrelated(ctx context.Context, c client.Client, n int) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: unrelatedNS}}); err != nil {
		return err
	}
	payload := make([]byte, 2048)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	return harness.CreateParallel(ctx, n, clientWorkers, func(ctx context.Context, i int) error {
		return c.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: unrelatedNS, Name: fmt.Sprintf("unrelated-%06d", i),
				Labels: map[string]string{"app": "someone-else"}},
			Data: map[string][]byte{"tls.crt": payload},
		})
	})
}
