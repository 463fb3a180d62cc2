package tokenclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

var start = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// saToken stands for the projected ServiceAccount token; no error string may
// contain it.
const saToken = "eyJhbGciOiJSUzI1NiJ9.projected-sa-token.c2ln"

// reply is one scripted answer of the fake endpoint.
type reply struct {
	status     int
	body       string
	retryAfter string
}

// ok answers 200 with a token of the given lifetime from start.
func ok(value string, lifetime time.Duration) reply {
	return reply{status: 200, body: fmt.Sprintf(`{"token":%q,"expiresAt":%q,"tokenDigest":"0123456789ab","cached":false}`,
		value, start.Add(lifetime).Format(time.RFC3339))}
}

func refuse(status int, reason, retryAfter string) reply {
	return reply{status: status, body: fmt.Sprintf(`{"reason":%q,"message":"because %s"}`, reason, reason), retryAfter: retryAfter}
}

// endpoint is a TLS test server answering from a script, recording what it
// was sent.
type endpoint struct {
	srv    *httptest.Server
	mu     sync.Mutex
	script []reply
	calls  int
	auth   []string
	bodies []string
	paths  []string
	gate   chan struct{} // when set, each call waits for it to close
}

func newEndpoint(t *testing.T, script ...reply) *endpoint {
	t.Helper()
	e := &endpoint{script: script}
	e.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.gate != nil {
			<-e.gate
		}
		body, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.auth = append(e.auth, r.Header.Get("Authorization"))
		e.bodies = append(e.bodies, string(body))
		e.paths = append(e.paths, r.URL.EscapedPath())
		rep := e.script[min(e.calls, len(e.script)-1)]
		e.calls++
		e.mu.Unlock()
		if rep.retryAfter != "" {
			w.Header().Set("Retry-After", rep.retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rep.status)
		_, _ = io.WriteString(w, rep.body)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *endpoint) callCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls
}

// caFile writes srv's certificate, its own CA, as PEM.
func caFile(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.crt")
	writeFile(t, path, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	return path
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// recordingClock is a fake clock whose After records the wait and steps the
// clock by it, so Retry-After waits take no real time and are observable.
type recordingClock struct {
	*clocktesting.FakeClock
	mu      sync.Mutex
	waits   []time.Duration
	block   bool   // After never fires
	onAfter func() // called when a wait begins
}

func (c *recordingClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	c.mu.Unlock()
	if c.onAfter != nil {
		c.onAfter()
	}
	ch := make(chan time.Time, 1)
	if !c.block {
		c.Step(d)
		ch <- c.Now()
	}
	return ch
}

func (c *recordingClock) recorded() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// setup starts an endpoint with script and a client trusting it.
func setup(t *testing.T, opts Options, script ...reply) (*Client, *endpoint, *recordingClock) {
	t.Helper()
	e := newEndpoint(t, script...)
	clk := &recordingClock{FakeClock: clocktesting.NewFakeClock(start)}
	opts.Endpoint = e.srv.URL
	opts.CAFile = caFile(t, e.srv)
	opts.TokenFile = filepath.Join(t.TempDir(), "token")
	writeFile(t, opts.TokenFile, saToken+"\n")
	opts.Clock = clk
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, e, clk
}

func TestFetch(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		script     []reply
		wantValue  string
		wantStatus int
		wantReason string
		wantCalls  int
		wantWaits  []time.Duration
	}{
		{name: "a 200 answer is returned as a Token",
			script: []reply{ok("tok-1", time.Hour)}, wantValue: "tok-1", wantCalls: 1},
		{name: "a 429 with Retry-After is retried after waiting that long",
			script: []reply{refuse(429, "RateLimited", "2"), ok("tok-1", time.Hour)}, wantValue: "tok-1", wantCalls: 2,
			wantWaits: []time.Duration{2 * time.Second}},
		{name: "a 503 with Retry-After is retried after waiting that long",
			script:    []reply{refuse(503, "VendorUnavailable", "1"), refuse(503, "VendorUnavailable", "3"), ok("tok-1", time.Hour)},
			wantValue: "tok-1", wantCalls: 3, wantWaits: []time.Duration{time.Second, 3 * time.Second}},
		{name: "a Retry-After given as an HTTP date is waited until that date",
			script:    []reply{refuse(429, "RateLimited", start.Add(5*time.Second).Format(http.TimeFormat)), ok("tok-1", time.Hour)},
			wantValue: "tok-1", wantCalls: 2, wantWaits: []time.Duration{5 * time.Second}},
		{name: "retries stop after MaxAttempts calls and return the last refusal",
			opts:   Options{MaxAttempts: 2},
			script: []reply{refuse(429, "RateLimited", "1")}, wantStatus: 429, wantReason: "RateLimited", wantCalls: 2,
			wantWaits: []time.Duration{time.Second}},
		{name: "a Retry-After longer than MaxRetryAfter is returned without waiting",
			opts:   Options{MaxRetryAfter: 5 * time.Second},
			script: []reply{refuse(429, "RateLimited", "60")}, wantStatus: 429, wantReason: "RateLimited", wantCalls: 1},
		{name: "a 503 without Retry-After is returned at once",
			script: []reply{refuse(503, "VendorUnavailable", "")}, wantStatus: 503, wantReason: "VendorUnavailable", wantCalls: 1},
		{name: "a 502 is not retried",
			script: []reply{refuse(502, "VendorError", "5")}, wantStatus: 502, wantReason: "VendorError", wantCalls: 1},
		{name: "a 403 RequestDenied carries its reason and message",
			script: []reply{refuse(403, "RequestDenied", "")}, wantStatus: 403, wantReason: "RequestDenied", wantCalls: 1},
		{name: "a 401 without a JSON body still reports its status",
			script: []reply{{status: 401, body: "Unauthorized"}}, wantStatus: 401, wantCalls: 1},
		{name: "a 200 without expiresAt is an error, not a token that never expires",
			script: []reply{{status: 200, body: `{"token":"x"}`}}, wantStatus: 0, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, e, clk := setup(t, tt.opts, tt.script...)
			got, err := c.Fetch(context.Background(), "shop", "per-user-qlik", map[string]string{"user": "alice"})
			if tt.wantValue != "" {
				if err != nil || got.Value != tt.wantValue || !got.ExpiresAt.Equal(start.Add(time.Hour)) || got.Digest != "0123456789ab" {
					t.Fatalf("Fetch = %v, %v; want %s", got, err, tt.wantValue)
				}
			} else {
				var refusal *Error
				switch {
				case err == nil:
					t.Fatalf("Fetch = %v, want an error", got)
				case tt.wantStatus == 0 && errors.As(err, &refusal):
					t.Fatalf("Fetch error %v is an *Error, want a decoding error", err)
				case tt.wantStatus != 0 && (!errors.As(err, &refusal) || refusal.StatusCode != tt.wantStatus || refusal.Reason != tt.wantReason):
					t.Fatalf("Fetch error %#v, want status %d reason %q", err, tt.wantStatus, tt.wantReason)
				}
				if strings.Contains(err.Error(), saToken) || strings.Contains(err.Error(), "projected-sa-token") {
					t.Errorf("error %q contains the ServiceAccount token", err)
				}
			}
			if e.callCount() != tt.wantCalls {
				t.Errorf("%d endpoint calls, want %d", e.callCount(), tt.wantCalls)
			}
			if waits := clk.recorded(); fmt.Sprint(waits) != fmt.Sprint(tt.wantWaits) && len(waits)+len(tt.wantWaits) > 0 {
				t.Errorf("waited %v, want %v", waits, tt.wantWaits)
			}
		})
	}
}

func TestFetchSendsTheContract(t *testing.T) {
	c, e, _ := setup(t, Options{MinValidFor: 5 * time.Minute}, ok("tok-1", time.Hour))
	if _, err := c.Fetch(context.Background(), "shop", "per-user-qlik", map[string]string{"user": "alice"}); err != nil {
		t.Fatal(err)
	}
	if want := "/apis/embedtokens.io/v1alpha1/namespaces/shop/embedtokentemplates/per-user-qlik/token"; e.paths[0] != want {
		t.Errorf("path %s, want %s", e.paths[0], want)
	}
	if e.auth[0] != "Bearer "+saToken {
		t.Errorf("Authorization header is not the projected token with its newline trimmed")
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(e.bodies[0]), &body); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(body) != "map[minValidFor:5m0s parameters:map[user:alice]]" {
		t.Errorf("body %s", e.bodies[0])
	}
}

func TestFetchRereadsTheTokenFile(t *testing.T) {
	c, e, _ := setup(t, Options{}, ok("tok-1", time.Hour))
	ctx := context.Background()
	if _, err := c.Fetch(ctx, "shop", "t", nil); err != nil {
		t.Fatal(err)
	}
	writeFile(t, c.opts.TokenFile, "rotated-by-the-kubelet")
	if _, err := c.Fetch(ctx, "shop", "t", nil); err != nil {
		t.Fatal(err)
	}
	if e.auth[1] != "Bearer rotated-by-the-kubelet" {
		t.Errorf("second call sent the old token")
	}
	writeFile(t, c.opts.TokenFile, "  \n")
	if _, err := c.Fetch(ctx, "shop", "t", nil); err == nil || e.callCount() != 2 {
		t.Errorf("an empty token file: err %v after %d calls, want an error before calling", err, e.callCount())
	}
}

func TestFetchUsesTheTokenSource(t *testing.T) {
	c, e, _ := setup(t, Options{TokenSource: func(context.Context) (string, error) { return "minted\n", nil }}, ok("tok-1", time.Hour))
	if _, err := c.Fetch(context.Background(), "shop", "t", nil); err != nil {
		t.Fatal(err)
	}
	if e.auth[0] != "Bearer minted" {
		t.Errorf("the token source's token was not sent")
	}
}

func TestFetchStopsWaitingWhenTheContextEnds(t *testing.T) {
	c, e, clk := setup(t, Options{}, refuse(429, "RateLimited", "2"))
	ctx, cancel := context.WithCancel(context.Background())
	clk.block = true
	clk.onAfter = cancel // the context ends while the client waits
	_, err := c.Fetch(ctx, "shop", "t", nil)
	var refusal *Error
	if !errors.Is(err, context.Canceled) || !errors.As(err, &refusal) || refusal.Reason != "RateLimited" {
		t.Errorf("Fetch = %v, want the refusal and context.Canceled", err)
	}
	if e.callCount() != 1 {
		t.Errorf("%d calls, want 1", e.callCount())
	}
}

// otherCA is a PEM CA certificate that signed nothing the test servers use.
func otherCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestTLS(t *testing.T) {
	tests := []struct {
		name    string
		trust   func(t *testing.T, srv *httptest.Server) string
		wantErr string
	}{
		{"the endpoint's CA in the CA file is trusted", caFile, ""},
		{"another CA in the CA file is refused, before the bearer token is sent", func(t *testing.T, _ *httptest.Server) string {
			path := filepath.Join(t.TempDir(), "ca.crt")
			writeFile(t, path, otherCA(t))
			return path
		}, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEndpoint(t, ok("tok-1", time.Hour))
			tokenFile := filepath.Join(t.TempDir(), "token")
			writeFile(t, tokenFile, saToken)
			c, err := New(Options{Endpoint: e.srv.URL, CAFile: tt.trust(t, e.srv), TokenFile: tokenFile,
				HTTPClient: &http.Client{Timeout: 10 * time.Second}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Fetch(context.Background(), "shop", "t", nil)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Fetch error %v, want %q", err, tt.wantErr)
			}
			if tt.wantErr != "" && e.callCount() != 0 {
				t.Errorf("the bearer token reached an endpoint the CA does not vouch for")
			}
		})
	}
}

func TestTLSFollowsTheCAFile(t *testing.T) {
	c, e, _ := setup(t, Options{}, ok("tok-1", time.Hour))
	ctx := context.Background()
	writeFile(t, c.opts.CAFile, otherCA(t))
	if _, err := c.Fetch(ctx, "shop", "t", nil); err == nil {
		t.Fatal("a CA file no longer holding the endpoint's CA is still trusted")
	}
	writeFile(t, c.opts.CAFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.srv.Certificate().Raw})))
	if _, err := c.Fetch(ctx, "shop", "t", nil); err != nil {
		t.Fatalf("the restored CA file: %v", err)
	}
}

func TestNew(t *testing.T) {
	e := newEndpoint(t, ok("tok-1", time.Hour))
	ca := caFile(t, e.srv)
	empty := filepath.Join(t.TempDir(), "empty.crt")
	writeFile(t, empty, "not a certificate")
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"an https endpoint and a CA file are enough", Options{Endpoint: e.srv.URL, CAFile: ca}, ""},
		{"a missing endpoint is refused", Options{CAFile: ca}, "Endpoint is required"},
		{"a plain http endpoint is refused", Options{Endpoint: "http://x.svc:8443", CAFile: ca}, "https"},
		{"an endpoint with a query is refused", Options{Endpoint: e.srv.URL + "?a=b", CAFile: ca}, "query"},
		{"a CA file without certificates is refused", Options{Endpoint: e.srv.URL, CAFile: empty}, "no PEM certificate"},
		{"CA data replaces the CA file", Options{Endpoint: e.srv.URL, CAFile: empty,
			CAData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.srv.Certificate().Raw})}, ""},
		{"a missing CA file is refused", Options{Endpoint: e.srv.URL, CAFile: filepath.Join(t.TempDir(), "none")}, "CA file"},
		{"a custom RoundTripper is refused, since the CA could not be applied to it",
			Options{Endpoint: e.srv.URL, CAFile: ca, HTTPClient: &http.Client{Transport: roundTripperFunc(nil)}}, "*http.Transport"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("New error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTokenCache(t *testing.T) {
	tests := []struct {
		name      string
		lifetime  time.Duration
		opts      Options
		after     time.Duration
		params2   map[string]string
		wantCalls int
	}{
		{name: "a token with more than a third of its lifetime left is served from the cache",
			lifetime: time.Hour, after: 39 * time.Minute, wantCalls: 1},
		{name: "a token with less than a third of its lifetime left is fetched again",
			lifetime: time.Hour, after: 41 * time.Minute, wantCalls: 2},
		{name: "a short token with less than 30s left is fetched again",
			lifetime: time.Minute, after: 31 * time.Second, wantCalls: 2},
		{name: "a short token with more than 30s left is served from the cache",
			lifetime: time.Minute, after: 29 * time.Second, wantCalls: 1},
		{name: "MinValidFor raises the refresh point",
			lifetime: time.Hour, opts: Options{MinValidFor: 30 * time.Minute}, after: 31 * time.Minute, wantCalls: 2},
		{name: "other parameters do not share a token",
			lifetime: time.Hour, params2: map[string]string{"user": "bob"}, wantCalls: 2},
		{name: "the same parameters in another map share a token",
			lifetime: time.Hour, params2: map[string]string{"user": "alice"}, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, e, clk := setup(t, tt.opts, ok("tok-1", tt.lifetime))
			ctx := context.Background()
			params := map[string]string{"user": "alice"}
			if _, err := c.Token(ctx, "shop", "t", params); err != nil {
				t.Fatal(err)
			}
			clk.Step(tt.after)
			second := params
			if tt.params2 != nil {
				second = tt.params2
			}
			if _, err := c.Token(ctx, "shop", "t", second); err != nil {
				t.Fatal(err)
			}
			if e.callCount() != tt.wantCalls {
				t.Errorf("%d endpoint calls, want %d", e.callCount(), tt.wantCalls)
			}
		})
	}
}

func TestTokenCacheIsBoundedAndForgets(t *testing.T) {
	c, e, _ := setup(t, Options{MaxCacheEntries: 2}, ok("tok-1", time.Hour))
	ctx := context.Background()
	for _, user := range []string{"a", "b", "c", "a"} {
		if _, err := c.Token(ctx, "shop", "t", map[string]string{"user": user}); err != nil {
			t.Fatal(err)
		}
	}
	if e.callCount() != 4 || c.cache.Len() != 2 {
		t.Errorf("%d calls and %d entries, want 4 calls (a evicted by c) and 2 entries", e.callCount(), c.cache.Len())
	}
	c.Forget("shop", "t", map[string]string{"user": "a"})
	if _, err := c.Token(ctx, "shop", "t", map[string]string{"user": "a"}); err != nil || e.callCount() != 5 {
		t.Errorf("after Forget: %v, %d calls, want 5", err, e.callCount())
	}
}

func TestTokenCacheKeysCannotCollide(t *testing.T) {
	a, _ := cacheKey("shop", "t", map[string]string{"a": `b","c`})
	b, _ := cacheKey("shop", "t", map[string]string{"a": "b", "c": ""})
	if a == b {
		t.Errorf("two parameter sets share the key %s", a)
	}
}

func TestConcurrentIdenticalCallsShareOneEndpointCall(t *testing.T) {
	c, e, _ := setup(t, Options{}, ok("tok-1", time.Hour))
	const callers = 20
	joined := make(chan struct{}, callers)
	c.joined = func() { joined <- struct{}{} }
	// The endpoint holds the call until every caller has joined it.
	e.gate = make(chan struct{})
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range callers {
		wg.Go(func() {
			if _, err := c.Token(context.Background(), "shop", "t", map[string]string{"user": "alice"}); err != nil {
				failed.Add(1)
			}
		})
	}
	for range callers {
		<-joined
	}
	close(e.gate)
	wg.Wait()
	if failed.Load() != 0 || e.callCount() != 1 {
		t.Errorf("%d failures, %d endpoint calls; want 0 and 1", failed.Load(), e.callCount())
	}
}

func TestACallerWhoseContextEndsStopsWaitingWhileTheSharedCallGoesOn(t *testing.T) {
	c, e, _ := setup(t, Options{}, ok("tok-1", time.Hour))
	joined := make(chan struct{}, 2)
	c.joined = func() { joined <- struct{}{} }
	e.gate = make(chan struct{})
	params := map[string]string{"user": "alice"}

	first := make(chan error, 1)
	go func() {
		_, err := c.Token(context.Background(), "shop", "t", params)
		first <- err
	}()
	<-joined
	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() {
		_, err := c.Token(ctx, "shop", "t", params)
		second <- err
	}()
	<-joined
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Errorf("the cancelled caller got %v, want context.Canceled", err)
	}
	close(e.gate)
	if err := <-first; err != nil {
		t.Errorf("the waiting caller got %v", err)
	}
	if _, err := c.Token(context.Background(), "shop", "t", params); err != nil || e.callCount() != 1 {
		t.Errorf("after the shared call: %v, %d endpoint calls, want the cached token and 1 call", err, e.callCount())
	}
}
