package vendorsim_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

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
			defer func() { _ = resp.Body.Close() }()
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
