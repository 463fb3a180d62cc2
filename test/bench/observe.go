package main

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

// measure runs f and returns what it cost: API requests, vendor calls and
// manager CPU.
// pid is the manager's process id, 0 while it is not running.
func measure(ctx context.Context, cp *harness.ControlPlane, sim *vendorsim.Server, pid func() int, f func() error) (phase, error) {
	var p phase
	before, err := harness.ScrapeRequestCounts(ctx, cp.Config)
	if err != nil {
		return p, err
	}
	secondsBefore, err := harness.ScrapeRequestSeconds(ctx, cp.Config)
	if err != nil {
		return p, err
	}
	calls, issued := sim.CallCount(), sim.IssuedCount()
	var st0 harness.ProcStats
	if pid() != 0 {
		if st0, err = harness.ReadProcStats(pid()); err != nil {
			return p, err
		}
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
	secondsAfter, err := harness.ScrapeRequestSeconds(ctx, cp.Config)
	if err != nil {
		return p, err
	}
	p.Seconds = secondsAfter.Sub(secondsBefore)
	st1, err := harness.ReadProcStats(pid())
	if err != nil {
		return p, err
	}
	p.Requests = after.Sub(before)
	p.Writes = p.Requests.Writes("")
	p.WritesByKey, p.RequestsByKey = map[string]float64{}, map[string]float64{}
	for _, k := range p.Requests.Keys() {
		if k.IsWrite() {
			p.WritesByKey[k.String()] = p.Requests[k]
		}
		p.RequestsByKey[k.String()] = p.Requests[k]
	}
	p.VendorCalls, p.Issued = sim.CallCount()-calls, sim.IssuedCount()-issued
	p.CPU = st1.CPU - st0.CPU
	return p, nil
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
