/*
Copyright 2026 The embed-token-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package endpointbench

import (
	"context"
	"flag"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/tokenendpoint"
)

// coldConns is how many keep-alive connections each of the 64 callers
// opens in BenchmarkColdPath: the calls in flight at the endpoint are at
// most 64 times this, the rest wait in the callers.
var coldConns = flag.Int("endpointbench.cold-conns", 1,
	"connections per caller (64 callers) in the cold-path benchmark")

// cachedRate, when positive, paces BenchmarkCachedPath's calls at this
// many per second (an open loop) instead of as fast as the 64 callers go;
// each call's latency then counts from when it was due, so calls delayed
// behind slow ones are not left out.
var cachedRate = flag.Float64("endpointbench.cached-rate", 0,
	"calls per second BenchmarkCachedPath paces its 64 callers at; 0 runs them flat out")

// BenchmarkCachedPath measures tokens served from the endpoint's shared
// cache: 64 callers over TLS, each a backend with its own ServiceAccount
// token and keep-alive connection, asking for 1,000 users' tokens in turn
// after every token was issued and every caller reviewed once. One
// iteration is one call; run it with -benchtime=Nx.
func BenchmarkCachedPath(b *testing.B) {
	const users = 1000
	w := setup(b)
	ctx := context.Background()
	srv := w.serve(b, w.newEndpoint(b, tokenendpoint.Options{}, nil))
	clients := w.callerClients(b, srv.url, 1)
	names := userIDs("cached", users)
	// Warm-up: every user's token issued once (within the call slots'
	// queue, so without 429 waits), then every caller's review cached and
	// its connection open.
	if _, failed := fetchAll(ctx, clients, names, fillParallel); failed > 0 {
		b.Fatalf("warm-up: %d users got no token", failed)
	}
	if _, failed := fetchAll(ctx, clients, names, callers); failed > 0 {
		b.Fatalf("warm-up: %d users got no token", failed)
	}
	trBefore, sarBefore := w.reviews(b)
	vendorBefore := w.sim.CallCount()

	type call struct {
		n   int
		due time.Time
	}
	work := make(chan call, callers)
	lat := make([][]time.Duration, callers)
	uncached := make([]int, callers)
	failed := make([]int, callers)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for job := range work {
				tok, err := clients[c].Fetch(ctx, namespace, templateName, map[string]string{"user": names[job.n%users]})
				lat[c] = append(lat[c], time.Since(job.due))
				switch {
				case err != nil:
					failed[c]++
				case !tok.Cached:
					uncached[c]++
				}
			}
		})
	}
	start := time.Now()
	n := 0
	for b.Loop() {
		due := time.Now()
		if *cachedRate > 0 {
			due = start.Add(time.Duration(float64(n) / *cachedRate * float64(time.Second)))
			time.Sleep(time.Until(due))
		}
		work <- call{n: n, due: due}
		n++
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()

	trAfter, sarAfter := w.reviews(b)
	all := slices.Concat(lat...)
	var nFailed, nUncached int
	for c := range callers {
		nFailed += failed[c]
		nUncached += uncached[c]
	}
	if nFailed > 0 {
		b.Errorf("%d of %d calls failed", nFailed, n)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "tokens/s")
	b.ReportMetric(percentile(all, 50), "p50-ms")
	b.ReportMetric(percentile(all, 99), "p99-ms")
	b.ReportMetric(float64(nUncached), "uncached-answers")
	b.ReportMetric(float64(w.sim.CallCount()-vendorBefore), "vendor-calls")
	b.ReportMetric((trAfter-trBefore)/float64(n), "tokenreviews/op")
	b.ReportMetric((sarAfter-sarBefore)/float64(n), "accessreviews/op")
	b.Logf("%d calls in %s by %d callers: %.0f TokenReviews, %.0f SubjectAccessReviews", n, elapsed.Round(time.Millisecond),
		callers, trAfter-trBefore, sarAfter-sarBefore)
}

// BenchmarkColdPath asks for 10,000 distinct users' tokens at once, over
// TLS from the 64 callers (-endpointbench.cold-conns connections each):
// every call needs a vendor call, through the issuance path's fair gates.
// Callers answered 429 retry after Retry-After, as pkg/tokenclient does. The workload is
// fixed; run it with -benchtime=1x.
func BenchmarkColdPath(b *testing.B) {
	const users = 10000
	w := setup(b)
	ctx := context.Background()
	srv := w.serve(b, w.newEndpoint(b, tokenendpoint.Options{}, nil))
	clients := w.callerClients(b, srv.url, *coldConns)
	vendorBefore := w.sim.CallCount()
	callsBefore, secondsBefore := w.vendorSeconds(b)
	names := userIDs(b.Name()+"-cold", users)
	b.ResetTimer()
	start := time.Now()
	lat, failed := fetchAll(ctx, clients, names, users)
	wall := time.Since(start)
	b.StopTimer()
	vendor := w.sim.CallCount() - vendorBefore
	if failed > 0 {
		b.Errorf("%d of %d users got no token", failed, users)
	}
	if vendor != users {
		b.Errorf("%d vendor calls for %d distinct users", vendor, users)
	}
	b.ReportMetric(float64(vendor), "vendor-calls")
	b.ReportMetric(float64(users-failed), "answered")
	b.ReportMetric(percentile(lat, 50), "p50-ms")
	b.ReportMetric(percentile(lat, 99), "p99-ms")
	b.ReportMetric(wall.Seconds(), "wall-s")
	b.ReportMetric(float64(srv.throttled.Load()), "retries-429")
	b.ReportMetric(float64(srv.unavailable.Load()), "retries-503")
	b.ReportMetric(float64(users)/wall.Seconds(), "tokens/s")
	calls, seconds := w.vendorSeconds(b)
	b.ReportMetric((seconds-secondsBefore)/float64(calls-callsBefore)*1000, "vendor-call-mean-ms")
}

// BenchmarkMemory100k fills an endpoint whose cache holds 100,000 tokens
// (the flag's default is 10,000) with 100,000 users' tokens and reports
// the heap they hold: live heap after a GC, minus the same before the
// fill, per token. The simulator runs in this process, so its call log is
// dropped before each reading. The workload is fixed; run it with
// -benchtime=1x.
func BenchmarkMemory100k(b *testing.B) {
	const tokens = 100000
	w := setup(b)
	ctx := context.Background()
	srv := w.serve(b, w.newEndpoint(b, tokenendpoint.Options{CacheMaxEntries: tokens}, nil))
	clients := w.callerClients(b, srv.url, 1)
	// Open every connection and cache every caller's review: one token.
	if _, failed := fetchAll(ctx, clients, []string{"mem-warm"}, 1); failed > 0 {
		b.Fatal("warm-up failed")
	}
	warm := make([]string, callers)
	for i := range warm {
		warm[i] = "mem-warm"
	}
	if _, failed := fetchAll(ctx, clients, warm, len(warm)); failed > 0 {
		b.Fatal("warm-up failed")
	}
	base := heap()
	b.ResetTimer()
	start := time.Now()
	// At most fillParallel calls at once: within the issuance path's call
	// slots and the queue it keeps behind them, so the fill is not slowed
	// by 429 answers (BenchmarkColdPath measures those).
	_, failed := fetchAll(ctx, clients, userIDs("mem", tokens-1), fillParallel)
	fill := time.Since(start)
	b.StopTimer()
	if failed > 0 {
		b.Fatalf("%d users got no token", failed)
	}
	after := heap()
	perToken := func(f func(runtime.MemStats) uint64) float64 {
		return (float64(f(after)) - float64(f(base))) / float64(tokens-1)
	}
	b.ReportMetric(perToken(func(m runtime.MemStats) uint64 { return m.HeapAlloc }), "heap-bytes/token")
	b.ReportMetric(perToken(func(m runtime.MemStats) uint64 { return m.HeapInuse }), "heapinuse-bytes/token")
	b.ReportMetric(float64(after.HeapAlloc-base.HeapAlloc)/(1<<20), "heap-MiB")
	b.ReportMetric(fill.Seconds(), "fill-s")
	b.ReportMetric(float64(srv.throttled.Load()), "retries-429")
	b.Logf("live heap %.1f MiB before, %.1f MiB at %d cached tokens", float64(base.HeapAlloc)/(1<<20),
		float64(after.HeapAlloc)/(1<<20), tokens)
	w.sim.Reset()
}

// fillParallel is how many calls BenchmarkMemory100k makes at once: the
// issuance path admits workers/2 calls per provider and queues four rounds
// of them (issuance.MaxQueueRounds) before answering 429.
const fillParallel = 16

// heap collects garbage, drops the simulator's in-process call log and
// token records, and reads the heap statistics.
func heap() runtime.MemStats {
	shared.sim.Reset()
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

// rebased hands out the vendor's tokens with their lifetime moved onto the
// simulated clock: the vendor call is real, only its clock is not.
type rebased struct {
	tokenendpoint.Minter
	clock clock.PassiveClock
}

func (r rebased) Mint(ctx context.Context, p tokenendpoint.Prepared) (provider.Token, error) {
	tok, err := r.Minter.Mint(ctx, p)
	if err == nil {
		life := tok.ExpiresAt.Sub(tok.IssuedAt)
		tok.IssuedAt = r.clock.Now()
		tok.ExpiresAt = tok.IssuedAt.Add(life)
	}
	return tok, err
}

// BenchmarkPageViews compares the seeds' pattern, a backend calling the
// vendor on every page view (100,000 vendor calls for 100,000 views), with
// the endpoint's shared cache: 100,000 page views by 1,000 users, each
// view at a uniformly random time of an 8-hour day and by a uniformly
// random user, served in time order on a simulated clock. Tokens live one
// hour; each view asks with the default minValidFor (a third of the
// lifetime), so a token serves a user for 40 minutes. The workload is
// fixed; run it with -benchtime=1x.
func BenchmarkPageViews(b *testing.B) {
	const (
		users  = 1000
		views  = 100000
		period = 8 * time.Hour
	)
	w := setup(b)
	fake := clocktesting.NewFakeClock(time.Now())
	// The reviews' caches keep real time: the callers' ServiceAccount
	// tokens are checked by the API server on its clock.
	ep := w.newEndpoint(b, tokenendpoint.Options{
		Clock:         fake,
		Authenticator: tokenendpoint.NewTokenReviewer(w.mgr.GetClient(), clock.RealClock{}, 0),
		Authorizer:    tokenendpoint.NewAccessReviewer(w.mgr.GetClient(), clock.RealClock{}, 0),
	}, func(m tokenendpoint.Minter) tokenendpoint.Minter { return rebased{Minter: m, clock: fake} })
	rng := rand.New(rand.NewPCG(19, 2026))
	type view struct {
		at   time.Duration
		user int
	}
	vs := make([]view, views)
	for i := range vs {
		vs[i] = view{at: time.Duration(rng.Int64N(int64(period))), user: rng.IntN(users)}
	}
	slices.SortFunc(vs, func(a, b view) int { return int(a.at - b.at) })
	names := userIDs(b.Name()+"-views", users)
	day := fake.Now()
	vendorBefore := w.sim.CallCount()
	bearer := "Bearer " + w.bearers[0]
	b.ResetTimer()
	for _, v := range vs {
		fake.SetTime(day.Add(v.at))
		req := httptest.NewRequest(http.MethodPost, tokenendpoint.PathPrefix+namespace+"/embedtokentemplates/"+templateName+"/token",
			strings.NewReader(`{"parameters":{"user":"`+names[v.user]+`"}}`))
		req.Header.Set("Authorization", bearer)
		rec := httptest.NewRecorder()
		ep.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("view at %s: %d %s", v.at, rec.Code, rec.Body.String())
		}
	}
	b.StopTimer()
	calls := w.sim.CallCount() - vendorBefore
	b.ReportMetric(float64(calls), "vendor-calls/100k-views")
	b.ReportMetric(views, "seeds-vendor-calls/100k-views")
	b.ReportMetric(float64(views)/float64(calls), "fewer-calls-x")
}
