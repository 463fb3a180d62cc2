package vendorsim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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
	defer func() { _ = resp.Body.Close() }()
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
