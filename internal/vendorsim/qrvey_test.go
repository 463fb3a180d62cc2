package vendorsim_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

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
