package controller_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

var _ = Describe("Cost per token", func() {
	It("issues N first tokens with N vendor calls and two writes each, and a restarted manager writes and calls nothing", func() {
		ctx := context.Background()
		f := newFixtureWithProvider(ctx)
		writes := &apiWrites{namespace: f.ns}
		stopMgr()
		DeferCleanup(func() { stopMgr = startManager() })
		restCfg := rest.CopyConfig(cfg)
		restCfg.Wrap(writes.wrap)
		start := func() context.CancelFunc {
			opts := operatorOptions()
			// Only this namespace, so the reconciles counted below are its
			// requests'.
			opts.WatchNamespaces = []string{f.ns}
			return startOperator(restCfg, logr.Logger{}, 0, opts)
		}
		stop := start()
		DeferCleanup(func() { stop() })

		const n = 20
		requests := make([]*v1alpha1.EmbedTokenRequest, n)
		for i := range requests {
			requests[i] = f.request(fmt.Sprintf("cost-%02d", i), 4*time.Hour)
			Expect(k8sClient.Create(ctx, requests[i])).To(Succeed())
		}
		for _, etr := range requests {
			waitForToken(ctx, etr, "")
		}
		calls := func() int {
			total := 0
			for _, etr := range requests {
				total += f.callsFor(etr.Name)()
			}
			return total
		}
		Expect(calls()).To(Equal(n), "one vendor call per token")
		Expect(writes.counts()).To(Equal(map[string]int{
			"POST secrets": n, "PATCH embedtokenrequests/status": n,
		}), "a first token writes its Secret and its status, and no Event")

		By("restarting the manager, which reconciles every request again")
		stop()
		writes.reset()
		reconciled := reconcileTotal()
		stop = start()
		// Nothing is due, so each request is reconciled once, and its writes
		// are counted before its reconcile is.
		Eventually(func() float64 { return reconcileTotal() - reconciled }).Should(BeNumerically(">=", n))
		Expect(calls()).To(Equal(n), "no vendor call while every token is fresh")
		Expect(writes.counts()).To(BeEmpty(), "no write while every token is fresh")
	})
})

// apiWrites counts one manager's writes to one namespace by verb and
// resource, Events included, as the API server would count them.
type apiWrites struct {
	namespace string
	mu        sync.Mutex
	byKey     map[string]int
}

func (w *apiWrites) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		prefix := "/namespaces/" + w.namespace + "/"
		if i := strings.Index(r.URL.Path, prefix); i >= 0 && r.Method != http.MethodGet {
			parts := strings.Split(r.URL.Path[i+len(prefix):], "/")
			key := r.Method + " " + parts[0]
			if len(parts) == 3 {
				key += "/" + parts[2]
			}
			w.mu.Lock()
			if w.byKey == nil {
				w.byKey = map[string]int{}
			}
			w.byKey[key]++
			w.mu.Unlock()
		}
		return next.RoundTrip(r)
	})
}

func (w *apiWrites) counts() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int{}
	for k, v := range w.byKey {
		out[k] = v
	}
	return out
}

func (w *apiWrites) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.byKey = nil
}

// reconcileTotal is controller-runtime's count of the request controller's
// reconciles, all results together.
func reconcileTotal() float64 {
	return sumSeries("controller_runtime_reconcile_total", map[string]string{"controller": "embedtokenrequest"})
}

func sumSeries(name string, want map[string]string) float64 {
	total := 0.0
	for _, m := range seriesWith(Default, name, want) {
		total += value(m)
	}
	return total
}
