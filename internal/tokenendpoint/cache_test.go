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

package tokenendpoint

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// mustToken calls and fails the test unless a token comes back.
func (f *fixture) mustToken(body string) TokenResponse {
	f.t.Helper()
	r := f.call(aliceToken, body)
	if r.status != http.StatusOK {
		f.t.Fatalf("got %d %s", r.status, r.raw)
	}
	return r.token
}

func TestSharedTokens(t *testing.T) {
	type step struct {
		// advance moves the clock before the call.
		advance    time.Duration
		body       string
		wantCached bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{name: "an identical call shares the token", steps: []step{
			{body: user("ann")}, {body: user("ann"), wantCached: true},
		}},
		{name: "calls with other parameters get their own token", steps: []step{
			{body: user("ann")}, {body: user("ben")}, {body: user("ann"), wantCached: true},
		}},
		{name: "a cached token is served while a third of its lifetime is left", steps: []step{
			{body: user("ann")}, {advance: 40 * time.Minute, body: user("ann"), wantCached: true},
		}},
		{name: "a cached token with less than a third of its lifetime left is replaced", steps: []step{
			{body: user("ann")}, {advance: 41 * time.Minute, body: user("ann")}, {body: user("ann"), wantCached: true},
		}},
		{name: "minValidFor asks for a token valid longer than the default", steps: []step{
			{body: user("ann")},
			{advance: 10 * time.Minute, body: `{"parameters":{"user":"ann"},"minValidFor":"50m"}`, wantCached: true},
			{body: `{"parameters":{"user":"ann"},"minValidFor":"51m"}`},
		}},
		{name: "minValidFor asks for a token valid shorter than the default", steps: []step{
			{body: user("ann")}, {advance: 55 * time.Minute, body: `{"parameters":{"user":"ann"},"minValidFor":"5m"}`, wantCached: true},
		}},
		{name: "an expired token is never served", steps: []step{
			{body: user("ann")}, {advance: time.Hour, body: `{"parameters":{"user":"ann"},"minValidFor":"0s"}`},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			seen := map[string]bool{}
			var mints int64
			for i, s := range tc.steps {
				f.clock.Step(s.advance)
				tok := f.mustToken(s.body)
				if tok.Cached != s.wantCached {
					t.Fatalf("step %d: cached %v, want %v", i, tok.Cached, s.wantCached)
				}
				if !s.wantCached {
					mints++
					if seen[tok.Token] {
						t.Fatalf("step %d: a new token was expected, got an old one", i)
					}
				}
				seen[tok.Token] = true
				if tok.TokenDigest != provider.Digest(tok.Token) {
					t.Errorf("step %d: tokenDigest %s is not the token's", i, tok.TokenDigest)
				}
				if _, err := time.Parse(time.RFC3339, tok.ExpiresAt); err != nil {
					t.Errorf("step %d: expiresAt %q is not RFC 3339", i, tok.ExpiresAt)
				}
			}
			if got := f.minter.mints.Load(); got != mints {
				t.Errorf("%d vendor calls, want %d", got, mints)
			}
			if got := testutil.ToFloat64(f.ep.metrics.vendorCalls); got != float64(mints) {
				t.Errorf("vendor_calls_total %v, want %d", got, mints)
			}
			if got := testutil.ToFloat64(f.ep.metrics.cacheHits); got != float64(int64(len(tc.steps))-mints) {
				t.Errorf("cache_hits_total %v, want %d", got, int64(len(tc.steps))-mints)
			}
		})
	}
}

func TestConcurrentIdenticalCallsMakeOneVendorCall(t *testing.T) {
	cases := []struct {
		name      string
		users     int
		calls     int
		wantMints int64
	}{
		{name: "1,000 concurrent identical calls make one vendor call", users: 1, calls: 1000, wantMints: 1},
		{name: "1,000 concurrent calls for 10 users make ten vendor calls", users: 10, calls: 1000, wantMints: 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			start := make(chan struct{})
			var wg sync.WaitGroup
			tokens := make([]TokenResponse, tc.calls)
			statuses := make([]int, tc.calls)
			for i := range tc.calls {
				wg.Go(func() {
					<-start
					r := f.call(aliceToken, user(fmt.Sprintf("user-%d", i%tc.users)))
					statuses[i], tokens[i] = r.status, r.token
				})
			}
			close(start)
			wg.Wait()
			perUser := map[string]string{}
			fresh := 0
			for i, tok := range tokens {
				if statuses[i] != http.StatusOK {
					t.Fatalf("call %d: status %d", i, statuses[i])
				}
				u := fmt.Sprintf("user-%d", i%tc.users)
				if prev, ok := perUser[u]; ok && prev != tok.Token {
					t.Fatalf("%s got two tokens", u)
				}
				perUser[u] = tok.Token
				if !strings.Contains(tok.Token, u+"]") {
					t.Fatalf("%s got another user's token", u)
				}
				if !tok.Cached {
					fresh++
				}
			}
			if got := f.minter.mints.Load(); got != tc.wantMints {
				t.Errorf("%d vendor calls, want %d", got, tc.wantMints)
			}
			if fresh != int(tc.wantMints) {
				t.Errorf("%d answers say cached: false, want %d (one per vendor call)", fresh, tc.wantMints)
			}
		})
	}
}

func TestUnsharedTemplates(t *testing.T) {
	cases := []struct {
		name      string
		template  *v1alpha1.EmbedTokenTemplate
		singleUse bool
	}{
		{name: "a template with cache None makes one vendor call per call",
			template: template(func(t *v1alpha1.EmbedTokenTemplate) { t.Spec.Cache = v1alpha1.TemplateCacheNone })},
		{name: "a single-use vendor makes one vendor call per call", template: template(), singleUse: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Options{}, tc.template)
			f.minter.singleUse = tc.singleUse
			for range 5 {
				if tok := f.mustToken(user("ann")); tok.Cached {
					t.Fatal("a token was shared")
				}
			}
			if got := f.minter.mints.Load(); got != 5 {
				t.Errorf("%d vendor calls, want 5", got)
			}
			if n := f.ep.cache.len(); n != 0 {
				t.Errorf("%d tokens cached, want none", n)
			}
		})
	}
}

func TestTemplateRateLimit(t *testing.T) {
	limited := template(func(t *v1alpha1.EmbedTokenTemplate) {
		t.Spec.RateLimit = &v1alpha1.TemplateRateLimit{RequestsPerMinute: 60, Burst: 2}
	})
	f := newFixture(t, Options{}, limited)
	type step struct {
		advance    time.Duration
		wantStatus int
		wantRetry  string
	}
	steps := []step{
		{wantStatus: 200},
		{wantStatus: 200}, // cached calls count too
		{wantStatus: 429, wantRetry: "1"},
		{advance: 500 * time.Millisecond, wantStatus: 429, wantRetry: "1"},
		{advance: 500 * time.Millisecond, wantStatus: 200},
		{wantStatus: 429, wantRetry: "1"},
		{advance: 2 * time.Second, wantStatus: 200},
		{wantStatus: 200},
		{wantStatus: 429, wantRetry: "1"},
	}
	for i, s := range steps {
		f.clock.Step(s.advance)
		r := f.call(aliceToken, user("ann"))
		if r.status != s.wantStatus || r.retryAfter != s.wantRetry {
			t.Fatalf("step %d: got %d Retry-After %q, want %d %q (%s)", i, r.status, r.retryAfter, s.wantStatus, s.wantRetry, r.raw)
		}
		if r.status == 429 && r.err.Reason != ReasonRateLimited {
			t.Fatalf("step %d: reason %s", i, r.err.Reason)
		}
	}
}

func TestTemplateChangesDropTokens(t *testing.T) {
	cases := []struct {
		name string
		// change acts between two identical calls.
		change func(f *fixture)
		// wantEntries is the tokens cached after the second call.
		wantEntries int
	}{
		{name: "a new generation misses and drops the old tokens", wantEntries: 1, change: func(f *fixture) {
			f.update(func(t *v1alpha1.EmbedTokenTemplate) {
				t.Generation, t.Status.ObservedGeneration, t.Status.Conditions[0].ObservedGeneration = 2, 2, 2
			})
		}},
		{name: "a template recreated with a new UID misses and drops the old tokens", wantEntries: 1, change: func(f *fixture) {
			f.update(func(t *v1alpha1.EmbedTokenTemplate) { t.UID = "uid-2" })
			f.ep.Forget("uid-1")
		}},
		{name: "a credential rotation misses and drops the old tokens", wantEntries: 1, change: func(f *fixture) {
			f.minter.credsVersion.Store("v2")
		}},
		{name: "the informer's update for a new generation drops the tokens", change: func(f *fixture) {
			old := template()
			f.ep.TemplateEventHandler().OnUpdate(old, template(func(t *v1alpha1.EmbedTokenTemplate) { t.Generation = 2 }))
			f.checkEntries(0)
			f.ep.TemplateEventHandler().OnUpdate(old, template())
		}},
		{name: "the informer's deletion drops the tokens", change: func(f *fixture) {
			f.ep.TemplateEventHandler().OnDelete(template())
			f.checkEntries(0)
		}},
		{name: "Forget drops the tokens", change: func(f *fixture) {
			f.ep.Forget("uid-1")
			f.checkEntries(0)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			f.mustToken(user("ann"))
			f.mustToken(user("ben"))
			f.checkEntries(2)
			tc.change(f)
			if tok := f.mustToken(user("ann")); tok.Cached {
				t.Fatal("a token issued before the change was served")
			}
			f.checkEntries(max(tc.wantEntries, 1))
			if got := f.minter.mints.Load(); got != 3 {
				t.Errorf("%d vendor calls, want 3", got)
			}
		})
	}
}

// update changes the template the endpoint reads.
func (f *fixture) update(mutate func(*v1alpha1.EmbedTokenTemplate)) {
	f.ep.templates = fixedReader{tmpl: template(mutate)}
}

func (f *fixture) checkEntries(want int) {
	f.t.Helper()
	if n := f.ep.cache.len(); n != want {
		f.t.Fatalf("%d tokens cached, want %d", n, want)
	}
	if g := testutil.ToFloat64(f.ep.metrics.entries); g != float64(want) {
		f.t.Fatalf("cache_entries gauge %v, want %d", g, want)
	}
}

// fixedReader serves one template as given, generation and UID included,
// which the fake client would assign itself.
type fixedReader struct {
	client.Reader
	tmpl *v1alpha1.EmbedTokenTemplate
}

func (r fixedReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	if key != client.ObjectKeyFromObject(r.tmpl) {
		return fmt.Errorf("unexpected key %s", key)
	}
	r.tmpl.DeepCopyInto(obj.(*v1alpha1.EmbedTokenTemplate))
	return nil
}

func TestCacheBounds(t *testing.T) {
	tok := func(value string) provider.Token {
		return provider.Token{Value: value, IssuedAt: epoch, ExpiresAt: epoch.Add(time.Hour)}
	}
	cases := []struct {
		name       string
		maxEntries int
		maxBytes   int64
		puts       []string
		// oneTemplate puts every token under one template's UID.
		oneTemplate bool
		// touch are read before the last put, making them the most
		// recently used.
		touch    []string
		wantKept []string
	}{
		{name: "the least recently used token leaves when the entries are full", maxEntries: 2,
			puts: []string{"a", "b", "c"}, wantKept: []string{"b", "c"}},
		{name: "the least recently used tokens leave when the bytes are full", maxEntries: 100, maxBytes: 2 * (entryOverhead + 1 + 1000),
			puts: []string{"a", "b", "c", "d"}, wantKept: []string{"c", "d"}},
		{name: "a token larger than the byte bound is not cached", maxEntries: 100, maxBytes: 100,
			puts: []string{"a"}, wantKept: nil},
		{name: "a put keeps the least recently used order of its template's other tokens", maxEntries: 3, oneTemplate: true,
			puts: []string{"a", "b", "c", "d"}, touch: []string{"a"}, wantKept: []string{"a", "c", "d"}},
		{name: "a put of a key already cached replaces its token", maxEntries: 3, oneTemplate: true,
			puts: []string{"a", "b", "a"}, wantKept: []string{"a", "b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTokenCache(tc.maxEntries, tc.maxBytes, nil)
			for i, p := range tc.puts {
				if i == len(tc.puts)-1 {
					for _, k := range tc.touch {
						if _, ok := c.get(k, epoch, 0); !ok {
							t.Fatalf("token %s not cached before the last put", k)
						}
					}
				}
				uid := types.UID("uid-" + p)
				if tc.oneTemplate {
					uid = "uid"
				}
				c.put(p, uid, 1, "", tok(strings.Repeat(p, 1000)))
			}
			for _, p := range tc.puts {
				_, ok := c.get(p, epoch, 0)
				want := false
				for _, k := range tc.wantKept {
					want = want || k == p
				}
				if ok != want {
					t.Errorf("token %s cached: %v, want %v", p, ok, want)
				}
			}
			if c.len() != len(tc.wantKept) {
				t.Errorf("%d entries, want %d", c.len(), len(tc.wantKept))
			}
		})
	}
}

func TestCacheKey(t *testing.T) {
	base := cacheKey("uid", 1, "v1", map[string]string{"a": "b", "c": "d"})
	cases := []struct {
		name string
		key  string
		same bool
	}{
		{"the same call in another map order is the same key", cacheKey("uid", 1, "v1", map[string]string{"c": "d", "a": "b"}), true},
		{"another template is another key", cacheKey("uid2", 1, "v1", map[string]string{"a": "b", "c": "d"}), false},
		{"another generation is another key", cacheKey("uid", 2, "v1", map[string]string{"a": "b", "c": "d"}), false},
		{"other credentials are another key", cacheKey("uid", 1, "v2", map[string]string{"a": "b", "c": "d"}), false},
		{"a value moved across names is another key", cacheKey("uid", 1, "v1", map[string]string{"a": "bc", "c": ""}), false},
		{"a name and value run together are another key", cacheKey("uid", 1, "v1", map[string]string{"ab": "", "c": "d"}), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if (tc.key == base) != tc.same {
				t.Errorf("same key: %v, want %v", tc.key == base, tc.same)
			}
		})
	}
}
