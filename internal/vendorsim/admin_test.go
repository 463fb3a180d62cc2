package vendorsim_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

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
