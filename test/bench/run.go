package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
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
	OutDir             string
	SkipFloor          bool
	ManagerMemLimit    string
}

// phase is what one phase cost.
type phase struct {
	Duration    time.Duration
	VendorCalls int
	Issued      int
	Requests    harness.RequestCounts `json:"-"`
	Writes      float64
	// WritesByKey is Requests' write verbs, rendered for results.json.
	WritesByKey map[string]float64
	CPU         time.Duration
}

// results are everything the table and docs/benchmarks.md report.
type results struct {
	Machine                 string
	IdleRSS, ReadyRSS       uint64
	PeakRSS, SteadyRSS      uint64
	SteadyRSSAnon           uint64
	Issue, Wave, Steady     phase
	Floor, FloorWithApply   time.Duration
	ManagerCPU              time.Duration
	UnrelatedCreate         time.Duration
	ProfilePath, ManagerLog string
	// Scrape is how long one scrape of the metrics endpoint took, and
	// ScrapedRequests how many embedtoken_ready series it returned.
	Scrape          time.Duration
	ScrapedRequests int
	metricsAddr     string
}

const (
	benchNS, floorNS, floorApplyNS, unrelatedNS = "bench", "floor", "floor-apply", "unrelated"
	// Long-lived tokens: nothing renews by itself during the run, so the
	// steady state and the refresh wave are measured cleanly.
	benchLifetime = 4 * time.Hour
	// clientWorkers is how many goroutines the benchmark's own (unlimited)
	// client uses to apply objects.
	clientWorkers = 16
)

func run(ctx context.Context, cfg config) (res results, err error) {
	if cfg.OutDir == "" {
		if cfg.OutDir, err = os.MkdirTemp("", "embedtoken-bench-"); err != nil {
			return res, err
		}
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return res, err
	}
	res.Machine = machine()
	root, err := harness.RepoRoot()
	if err != nil {
		return res, err
	}
	work, err := os.MkdirTemp("", "embedtoken-bench-work-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(work)
	step("building the manager")
	bin, err := harness.BuildManager(root, work)
	if err != nil {
		return res, err
	}
	step("starting kube-apiserver and etcd")
	cp, err := harness.StartControlPlane(work, root, nil)
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
	m, pprofAddr, err := startManager(ctx, cfg, bin, cp.Kubeconfig, &res)
	if err != nil {
		return res, err
	}
	defer m.Kill() //nolint:errcheck // already dead on the normal path
	if st, err := harness.ReadProcStats(m.PID()); err == nil {
		res.IdleRSS = st.RSS
	}

	step(fmt.Sprintf("applying %d EmbedTokenRequests and waiting until all are Ready", cfg.N))
	profileDone := captureProfile(ctx, cfg, pprofAddr, &res)
	res.Issue, err = measure(ctx, cp, sim, m, func() error {
		if err := harness.CreateParallel(ctx, cfg.N, clientWorkers, func(ctx context.Context, i int) error {
			return cp.Client.Create(ctx, fx.Request(requestName(i), benchLifetime))
		}); err != nil {
			return err
		}
		return watch.waitFor(ctx, func() bool { return watch.readyCount() == cfg.N })
	})
	if err != nil {
		return res, err
	}
	if st, err := harness.ReadProcStats(m.PID()); err == nil {
		res.ReadyRSS = st.RSS
	}

	step(fmt.Sprintf("watching the steady state for %s", cfg.Steady))
	res.Steady, err = measure(ctx, cp, sim, m, func() error {
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
	step("scraping the manager's metrics once")
	if res.Scrape, res.ScrapedRequests, err = scrape(ctx, res.metricsAddr); err != nil {
		return res, err
	}

	step("refresh wave: annotating every request and waiting until every Secret answered")
	res.Wave, err = measure(ctx, cp, sim, m, func() error {
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
		step("floor: a plain client creating N Secrets and N status updates at the same QPS")
		if res.Floor, err = floor(ctx, cp, cfg); err != nil {
			return res, err
		}
		step("floor with the apply: the same, with the N requests created inside the timed window")
		if res.FloorWithApply, err = floorWithApply(ctx, cp, cfg); err != nil {
			return res, err
		}
	}
	return res, nil
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

// measure runs f and returns what it cost: API requests, vendor calls and
// manager CPU.
func measure(ctx context.Context, cp *harness.ControlPlane, sim *vendorsim.Server, m *harness.Manager, f func() error) (phase, error) {
	var p phase
	before, err := harness.ScrapeRequestCounts(ctx, cp.Config)
	if err != nil {
		return p, err
	}
	calls, issued := sim.CallCount(), sim.IssuedCount()
	st0, err := harness.ReadProcStats(m.PID())
	if err != nil {
		return p, err
	}
	start := time.Now()
	if err := f(); err != nil {
		return p, err
	}
	p.Duration = time.Since(start)
	after, err := harness.ScrapeRequestCounts(ctx, cp.Config)
	if err != nil {
		return p, err
	}
	st1, err := harness.ReadProcStats(m.PID())
	if err != nil {
		return p, err
	}
	p.Requests = after.Sub(before)
	p.Writes = p.Requests.Writes("")
	p.WritesByKey = map[string]float64{}
	for _, k := range p.Requests.Keys() {
		if k.IsWrite() {
			p.WritesByKey[k.String()] = p.Requests[k]
		}
	}
	p.VendorCalls, p.Issued = sim.CallCount()-calls, sim.IssuedCount()-issued
	p.CPU = st1.CPU - st0.CPU
	return p, nil
}

// startManager runs the manager with the benchmark's client settings and a
// pprof endpoint, and waits until its controllers run.
func startManager(ctx context.Context, cfg config, bin, kubeconfig string, res *results) (*harness.Manager, string, error) {
	pprofAddr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	if res.metricsAddr, err = freeAddr(); err != nil {
		return nil, "", err
	}
	res.ManagerLog = filepath.Join(cfg.OutDir, "manager.log")
	_ = os.Remove(res.ManagerLog)
	var env []string
	if cfg.ManagerMemLimit != "" {
		env = append(env, "GOMEMLIMIT="+cfg.ManagerMemLimit)
	}
	m, err := harness.StartManagerWithEnv(bin, kubeconfig, res.ManagerLog, env,
		"--metrics-bind-address="+res.metricsAddr, "--metrics-secure=false", "--health-probe-bind-address=0", "--pprof-bind-address="+pprofAddr,
		fmt.Sprintf("--kube-api-qps=%g", cfg.QPS), fmt.Sprintf("--kube-api-burst=%d", cfg.Burst),
		fmt.Sprintf("--max-concurrent-reconciles=%d", cfg.Concurrency),
		harness.AllowSimulator)
	if err != nil {
		return nil, "", err
	}
	wait, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := m.WaitLog(wait, "Starting workers"); err != nil {
		_ = m.Kill()
		return nil, "", err
	}
	return m, pprofAddr, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// captureProfile fetches a CPU profile of cfg.Profile from the manager's
// pprof endpoint in the background; the channel closes when it is saved.
func captureProfile(ctx context.Context, cfg config, addr string, res *results) <-chan struct{} {
	done := make(chan struct{})
	if cfg.Profile <= 0 {
		close(done)
		return done
	}
	res.ProfilePath = filepath.Join(cfg.OutDir, "manager-cpu.pprof")
	go func() {
		defer close(done)
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(cfg.Profile.Seconds()))
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: CPU profile:", err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(res.ProfilePath)
		if err == nil {
			_, err = io.Copy(f, resp.Body)
			err = errors.Join(err, f.Close())
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: CPU profile:", err)
		}
	}()
	return done
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

// watcher follows the benchmark's requests and Secrets through an informer
// cache in the benchmark process.
type watcher struct{ cache cache.Cache }

func newWatcher(ctx context.Context, cp *harness.ControlPlane) (*watcher, error) {
	c, err := cache.New(cp.Config, cache.Options{
		Scheme:            harness.Scheme,
		DefaultNamespaces: map[string]cache.Config{benchNS: {}},
		ByObject: map[client.Object]cache.ByObject{&corev1.Secret{}: {
			Label: labels.SelectorFromSet(labels.Set{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue})}},
	})
	if err != nil {
		return nil, err
	}
	go func() { _ = c.Start(ctx) }()
	// Register both informers before anything is created.
	if _, err := c.GetInformer(ctx, &v1alpha1.EmbedTokenRequest{}); err != nil {
		return nil, err
	}
	if _, err := c.GetInformer(ctx, &corev1.Secret{}); err != nil {
		return nil, err
	}
	if !c.WaitForCacheSync(ctx) {
		return nil, errors.New("benchmark cache did not sync")
	}
	return &watcher{cache: c}, nil
}

func (w *watcher) readyCount() int {
	var list v1alpha1.EmbedTokenRequestList
	if err := w.cache.List(context.Background(), &list, client.UnsafeDisableDeepCopy); err != nil {
		return -1
	}
	n := 0
	for i := range list.Items {
		if harness.IsReady(&list.Items[i]) {
			n++
		}
	}
	return n
}

// refreshedCount counts Secrets whose token answers the refresh annotation value.
func (w *watcher) refreshedCount(value string) int {
	var list corev1.SecretList
	if err := w.cache.List(context.Background(), &list, client.UnsafeDisableDeepCopy); err != nil {
		return -1
	}
	n := 0
	for i := range list.Items {
		if list.Items[i].Annotations[v1alpha1.RefreshHandledAnnotation] == value {
			n++
		}
	}
	return n
}

func (w *watcher) waitFor(ctx context.Context, done func() bool) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !done() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// scrape fetches the manager's metrics once and counts the per-request
// series, which the operator computes from its cache at scrape time.
func scrape(ctx context.Context, addr string) (time.Duration, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil {
		return 0, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("scraping metrics: HTTP %d", resp.StatusCode)
	}
	return took, bytes.Count(body, []byte("\nembedtoken_ready{")), nil
}
