package vendorsim_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

const apiKey = "test-key"

var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// start runs a simulator on a random port with a fake clock.
func start(t *testing.T) (*vendorsim.Server, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(epoch)
	s := vendorsim.New(vendorsim.Options{Clock: clk, QrveyAPIKey: apiKey})
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Close)
	return s, clk
}

type response struct {
	status int
	header http.Header
	raw    string
	json   map[string]any
}

func do(t *testing.T, client *http.Client, method, url, key, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &out.json) // garbage responses stay undecoded on purpose
	return out
}

func issue(t *testing.T, s *vendorsim.Server, body string) response {
	t.Helper()
	return do(t, http.DefaultClient, http.MethodPost, s.URL()+vendorsim.QrveyTokenPath, apiKey, body)
}

const okBody = `{"userid":"u1","appid":"a1","clientid":"c1","permissions":[{"dataset_id":"d"}],"extra":true}`

func TestQrveyRequests(t *testing.T) {
	tests := []struct {
		name, method, key, body string
		wantStatus              int
	}{
		{"success", http.MethodPost, apiKey, okBody, http.StatusOK},
		{"minimal body", http.MethodPost, apiKey, `{"userid":"u","appid":"a"}`, http.StatusOK},
		{"wrong key", http.MethodPost, "nope", okBody, http.StatusUnauthorized},
		{"missing key", http.MethodPost, "", okBody, http.StatusUnauthorized},
		{"missing userid", http.MethodPost, apiKey, `{"appid":"a"}`, http.StatusBadRequest},
		{"missing appid", http.MethodPost, apiKey, `{"userid":"u"}`, http.StatusBadRequest},
		{"non-string userid", http.MethodPost, apiKey, `{"userid":7,"appid":"a"}`, http.StatusBadRequest},
		{"non-string clientid", http.MethodPost, apiKey, `{"userid":"u","appid":"a","clientid":1}`, http.StatusBadRequest},
		{"bad expiresIn unit", http.MethodPost, apiKey, `{"userid":"u","appid":"a","expiresIn":"10x"}`, http.StatusBadRequest},
		{"zero expiresIn", http.MethodPost, apiKey, `{"userid":"u","appid":"a","expiresIn":"0m"}`, http.StatusBadRequest},
		{"numeric expiresIn", http.MethodPost, apiKey, `{"userid":"u","appid":"a","expiresIn":60}`, http.StatusBadRequest},
		{"huge expiresIn", http.MethodPost, apiKey, `{"userid":"u","appid":"a","expiresIn":"999999999w"}`, http.StatusBadRequest},
		{"not JSON", http.MethodPost, apiKey, `userid=u`, http.StatusBadRequest},
		{"JSON array", http.MethodPost, apiKey, `[1]`, http.StatusBadRequest},
		{"wrong method", http.MethodGet, apiKey, ``, http.StatusMethodNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := start(t)
			r := do(t, http.DefaultClient, tc.method, s.URL()+vendorsim.QrveyTokenPath, tc.key, tc.body)
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", r.status, tc.wantStatus, r.raw)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			calls := s.Calls()
			if len(calls) != 1 || s.CallCount() != 1 {
				t.Fatalf("calls = %+v, want exactly one", calls)
			}
			c := calls[0]
			if c.Vendor != "qrvey" || c.Path != vendorsim.QrveyTokenPath || c.Status != tc.wantStatus || !c.Time.Equal(epoch) {
				t.Errorf("call = %+v", c)
			}
			token, _ := r.json["token"].(string)
			if tc.wantStatus != http.StatusOK {
				if r.json["message"] == nil || token != "" || c.Token != "" || s.IssuedCount() != 0 {
					t.Errorf("error answer = %s, call token %q, issued %d", r.raw, c.Token, s.IssuedCount())
				}
				return
			}
			if !strings.HasPrefix(token, vendorsim.QrveyTokenPrefix) || len(token) < 40 {
				t.Fatalf("token = %q", token)
			}
			if c.Token != token || s.IssuedCount() != 1 || c.Body["userid"] == nil {
				t.Errorf("call = %+v, issued %d", c, s.IssuedCount())
			}
			if v := s.Validate(token); v != vendorsim.ValidityValid {
				t.Errorf("Validate = %v", v)
			}
		})
	}
}

func TestQrveyExpiry(t *testing.T) {
	tests := []struct {
		expiresIn string
		want      time.Duration
	}{
		{"", vendorsim.DefaultQrveyExpiresIn},
		{"10s", 10 * time.Second},
		{"10m", 10 * time.Minute},
		{"60m", time.Hour},
		{"2h", 2 * time.Hour},
		{"1d", 24 * time.Hour},
		{"1w", 7 * 24 * time.Hour},
	}
	for _, tc := range tests {
		t.Run("expiresIn="+tc.expiresIn, func(t *testing.T) {
			s, clk := start(t)
			body := `{"userid":"u","appid":"a"}`
			if tc.expiresIn != "" {
				body = `{"userid":"u","appid":"a","expiresIn":"` + tc.expiresIn + `"}`
			}
			r := issue(t, s, body)
			token, _ := r.json["token"].(string)
			if r.status != http.StatusOK || token == "" {
				t.Fatalf("issue: %d %s", r.status, r.raw)
			}
			clk.Step(tc.want - time.Nanosecond)
			if v := s.Validate(token); v != vendorsim.ValidityValid {
				t.Fatalf("just before expiry: %v", v)
			}
			clk.Step(time.Nanosecond)
			if v := s.Validate(token); v != vendorsim.ValidityExpired {
				t.Fatalf("at expiry: %v", v)
			}
			if v := s.Validate("qrv_never-issued"); v != vendorsim.ValidityUnknown || v.String() != "unknown" {
				t.Fatalf("unknown token: %v", v)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name           string
		fault          vendorsim.Fault
		wantStatus     int
		wantRetryAfter string
		check          func(t *testing.T, r response)
	}{
		{"503 with Retry-After rounded up", vendorsim.Fault{Status: 503, RetryAfter: 1500 * time.Millisecond}, 503, "2", nil},
		{"429 with Retry-After", vendorsim.Fault{Status: 429, RetryAfter: 3 * time.Second}, 429, "3", nil},
		{"500 without Retry-After", vendorsim.Fault{Status: 500}, 500, "", nil},
		{"401", vendorsim.Fault{Status: 401}, 401, "", nil},
		{"garbage", vendorsim.Fault{Garbage: true}, 200, "", func(t *testing.T, r response) {
			if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || r.json != nil || !strings.Contains(r.raw, "<html>") {
				t.Errorf("garbage answer: %q %q", r.header.Get("Content-Type"), r.raw)
			}
		}},
		{"error at HTTP 200", vendorsim.Fault{OKWithError: 401}, 200, "", func(t *testing.T, r response) {
			if r.json["statusCode"] != 401.0 || r.json["message"] != "simulated fault" {
				t.Errorf("error at HTTP 200: %s", r.raw)
			}
		}},
		{"empty token", vendorsim.Fault{EmptyToken: true}, 200, "", func(t *testing.T, r response) {
			if tok, ok := r.json["token"]; !ok || tok != "" {
				t.Errorf("empty token answer: %s", r.raw)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := start(t)
			s.SetFault(tc.fault)
			r := issue(t, s, okBody)
			if r.status != tc.wantStatus || r.header.Get("Retry-After") != tc.wantRetryAfter {
				t.Fatalf("got %d Retry-After %q, want %d %q (%s)", r.status, r.header.Get("Retry-After"), tc.wantStatus, tc.wantRetryAfter, r.raw)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
			if s.CallCount() != 1 || s.IssuedCount() != 0 || s.Calls()[0].Status != tc.wantStatus {
				t.Errorf("calls %+v, issued %d", s.Calls(), s.IssuedCount())
			}
			// Count 0 keeps the fault until ClearFault.
			if r := issue(t, s, okBody); r.status != tc.wantStatus {
				t.Errorf("second call: %d, want the fault again", r.status)
			}
			s.ClearFault()
			if r := issue(t, s, okBody); r.status != http.StatusOK || r.json["token"] == "" {
				t.Errorf("after ClearFault: %d %s", r.status, r.raw)
			}
		})
	}
}

func TestFaultCount(t *testing.T) {
	s, _ := start(t)
	s.SetFault(vendorsim.Fault{Status: 503, Count: 2})
	var got []int
	for range 4 {
		got = append(got, issue(t, s, okBody).status)
	}
	if want := []int{503, 503, 200, 200}; !slices.Equal(got, want) {
		t.Fatalf("statuses = %v, want %v", got, want)
	}
	if s.CallCount() != 4 || s.IssuedCount() != 2 {
		t.Errorf("CallCount %d IssuedCount %d", s.CallCount(), s.IssuedCount())
	}
}

func TestFaultWrongMethodDoesNotConsumeCount(t *testing.T) {
	s, _ := start(t)
	s.SetFault(vendorsim.Fault{Status: 500, Count: 1})
	if r := do(t, http.DefaultClient, http.MethodGet, s.URL()+vendorsim.QrveyTokenPath, apiKey, ""); r.status != 405 {
		t.Fatalf("GET: %d", r.status)
	}
	if r := issue(t, s, okBody); r.status != 500 {
		t.Fatalf("POST: %d, want the pending fault", r.status)
	}
}

func TestFaultDelay(t *testing.T) {
	t.Run("client timeout", func(t *testing.T) {
		s, _ := start(t)
		s.SetFault(vendorsim.Fault{Delay: time.Hour})
		client := &http.Client{Timeout: 100 * time.Millisecond}
		req, _ := http.NewRequest(http.MethodPost, s.URL()+vendorsim.QrveyTokenPath, strings.NewReader(okBody))
		req.Header.Set("x-api-key", apiKey)
		_, err := client.Do(req)
		var netErr net.Error
		if !errors.As(err, &netErr) || !netErr.Timeout() {
			t.Fatalf("err = %v, want a timeout", err)
		}
		if s.IssuedCount() != 0 {
			t.Errorf("a timed-out call issued a token")
		}
		// Cleanup's Close must not wait out the hour.
	})
	t.Run("delayed success", func(t *testing.T) {
		s, _ := start(t)
		const d = 30 * time.Millisecond
		s.SetFault(vendorsim.Fault{Delay: d, Count: 1})
		began := time.Now()
		r := issue(t, s, okBody)
		if elapsed := time.Since(began); elapsed < d {
			t.Errorf("answered after %v, want at least %v", elapsed, d)
		}
		if r.status != http.StatusOK || s.IssuedCount() != 1 {
			t.Fatalf("delay-only fault should still issue: %d %s", r.status, r.raw)
		}
	})
}

func TestConcurrentCallsWithCountedFault(t *testing.T) {
	s, _ := start(t)
	s.SetFault(vendorsim.Fault{Status: 503, Count: 10})
	const n = 50
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed int
		tokens = map[string]bool{}
	)
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, s.URL()+vendorsim.QrveyTokenPath, strings.NewReader(okBody))
			req.Header.Set("x-api-key", apiKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var out struct{ Token string }
			_ = json.NewDecoder(resp.Body).Decode(&out)
			_ = s.Calls()
			mu.Lock()
			defer mu.Unlock()
			if resp.StatusCode == 503 {
				failed++
			} else if out.Token != "" {
				tokens[out.Token] = true
			}
		})
	}
	wg.Wait()
	if failed != 10 || len(tokens) != n-10 || s.CallCount() != n || s.IssuedCount() != n-10 {
		t.Fatalf("failed %d, unique tokens %d, calls %d, issued %d", failed, len(tokens), s.CallCount(), s.IssuedCount())
	}
	for tok := range tokens {
		if s.Validate(tok) != vendorsim.ValidityValid {
			t.Fatalf("token not valid")
		}
	}
}

func TestAdminAPI(t *testing.T) {
	s, clk := start(t)
	admin := func(method, path, body string) response {
		t.Helper()
		return do(t, http.DefaultClient, method, s.URL()+path, "", body)
	}
	if r := admin(http.MethodGet, "/healthz", ""); r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
	token, _ := issue(t, s, `{"userid":"u","appid":"a","expiresIn":"10m"}`).json["token"].(string)
	issue(t, s, `{"appid":"a"}`)

	r := admin(http.MethodGet, "/_sim/calls", "")
	if r.status != 200 || r.json["calls"] != 2.0 || r.json["issued"] != 1.0 || strings.Contains(r.raw, token) {
		t.Fatalf("calls: %d %s", r.status, r.raw)
	}
	log, _ := r.json["log"].([]any)
	if first, _ := log[0].(map[string]any); len(log) != 2 || first["issued"] != true || first["vendor"] != "qrvey" || first["status"] != 200.0 {
		t.Fatalf("log: %s", r.raw)
	}
	if s.CallCount() != 2 {
		t.Errorf("admin calls counted: %d", s.CallCount())
	}

	validate := []struct {
		name, method, path, body string
		step                     time.Duration
		wantStatus               int
		want                     string
	}{
		{"GET valid", http.MethodGet, "/_sim/validate?token=" + token, "", 0, 200, "valid"},
		{"POST valid", http.MethodPost, "/_sim/validate", `{"token":"` + token + `"}`, 0, 200, "valid"},
		{"POST unknown", http.MethodPost, "/_sim/validate", `{"token":"qrv_nope"}`, 0, 404, "unknown"},
		{"POST missing token", http.MethodPost, "/_sim/validate", `{}`, 0, 400, ""},
		{"POST not JSON", http.MethodPost, "/_sim/validate", `token`, 0, 400, ""},
		{"POST expired", http.MethodPost, "/_sim/validate", `{"token":"` + token + `"}`, 10 * time.Minute, 410, "expired"},
	}
	for _, tc := range validate {
		clk.Step(tc.step)
		r := admin(tc.method, tc.path, tc.body)
		if r.status != tc.wantStatus || (tc.want != "" && r.json["validity"] != tc.want) {
			t.Errorf("%s: %d %s", tc.name, r.status, r.raw)
		}
	}

	faults := []struct {
		body       string
		wantStatus int
	}{
		{`{"status":503,"retryAfter":"2s","count":1}`, 200},
		{`{"delay":"soon"}`, 400},
		{`{"status":42}`, 400},
		{`{"okWithError":700}`, 400},
		{`{"count":-1}`, 400},
		{`nope`, 400},
	}
	for _, tc := range faults {
		if r := admin(http.MethodPost, "/_sim/fault", tc.body); r.status != tc.wantStatus {
			t.Errorf("POST fault %s: %d %s", tc.body, r.status, r.raw)
		}
	}
	if r := admin(http.MethodGet, "/_sim/fault", ""); !strings.Contains(r.raw, `"status":503`) || !strings.Contains(r.raw, `"retryAfter":"2s"`) {
		t.Errorf("GET fault: %s", r.raw)
	}
	if r := issue(t, s, okBody); r.status != 503 || r.header.Get("Retry-After") != "2" {
		t.Errorf("faulted call: %d %q", r.status, r.header.Get("Retry-After"))
	}
	if r := issue(t, s, okBody); r.status != 200 {
		t.Errorf("count exhausted: %d", r.status)
	}

	admin(http.MethodPost, "/_sim/fault", `{"status":500}`)
	if r := admin(http.MethodDelete, "/_sim/fault", ""); r.status != 200 {
		t.Fatalf("DELETE fault: %d", r.status)
	}
	if r := issue(t, s, okBody); r.status != 200 {
		t.Errorf("after DELETE fault: %d", r.status)
	}

	admin(http.MethodPost, "/_sim/fault", `{"status":500}`)
	if r := admin(http.MethodPost, "/_sim/reset", ""); r.status != 200 {
		t.Fatalf("reset: %d", r.status)
	}
	if s.CallCount() != 0 || s.IssuedCount() != 0 || s.Validate(token) != vendorsim.ValidityUnknown {
		t.Errorf("reset left state: calls %d issued %d", s.CallCount(), s.IssuedCount())
	}
	if r := issue(t, s, okBody); r.status != 200 {
		t.Errorf("reset left the fault: %d", r.status)
	}
	if r := admin(http.MethodPut, "/_sim/reset", ""); r.status != http.StatusMethodNotAllowed {
		t.Errorf("PUT reset: %d", r.status)
	}
}

func TestFaultJSONRoundTrip(t *testing.T) {
	in := vendorsim.Fault{Status: 429, RetryAfter: 2 * time.Second, Delay: 1500 * time.Millisecond, Count: 3}
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(`"delay":"1.5s"`)) {
		t.Errorf("marshalled: %s", raw)
	}
	var out vendorsim.Fault
	if err := json.Unmarshal(raw, &out); err != nil || out != in {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
}

func TestLifecycle(t *testing.T) {
	s := vendorsim.New(vendorsim.Options{})
	if s.URL() != "" {
		t.Errorf("URL before Start = %q", s.URL())
	}
	s.Close() // closing a server never started is fine

	s = vendorsim.New(vendorsim.Options{})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Errorf("URL = %q", s.URL())
	}
	if err := s.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	// The zero Options accept the demo key with the real clock.
	r := do(t, http.DefaultClient, http.MethodPost, s.URL()+vendorsim.QrveyTokenPath, vendorsim.DefaultQrveyAPIKey, okBody)
	if r.status != 200 || s.Validate(r.json["token"].(string)) != vendorsim.ValidityValid {
		t.Errorf("default key: %d %s", r.status, r.raw)
	}
	s.Close()
	s.Close()
}

func TestHandlerBehindTLS(t *testing.T) {
	s := vendorsim.New(vendorsim.Options{QrveyAPIKey: apiKey})
	ts := httptest.NewTLSServer(s.Handler())
	defer ts.Close()
	r := do(t, ts.Client(), http.MethodPost, ts.URL+vendorsim.QrveyTokenPath, apiKey, okBody)
	if r.status != 200 || s.IssuedCount() != 1 {
		t.Fatalf("TLS issue: %d %s", r.status, r.raw)
	}
}
