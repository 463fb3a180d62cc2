package vendorsim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

const (
	qlikID     = "qlik-id"
	qlikSecret = "qlik-secret"
)

// startWith runs a simulator with opts and a fake clock at epoch (which
// equals providertest.Epoch).
func startWith(t *testing.T, opts vendorsim.Options) *vendorsim.Server {
	t.Helper()
	return providertest.StartSim(t, opts)
}

// post sends body with contentType and any extra headers, decoding a JSON answer.
func post(t *testing.T, url, contentType, body string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &out.json)
	return out
}

// qlikBody is a token request with the simulator's client and extra fields.
func qlikBody(extra string) string {
	return `{"client_id":"` + qlikID + `","client_secret":"` + qlikSecret + `","scope":"user_default"` + extra + `}`
}

const aliceLookup = `,"grant_type":"urn:qlik:oauth:user-impersonation","user_lookup":{"field":"subject","value":"alice"}`

func TestQlikToken(t *testing.T) {
	tests := []struct {
		name       string
		expiresAt  bool
		body       string
		wantStatus int
		wantCode   string
	}{
		{"impersonation", false, qlikBody(aliceLookup), 200, ""},
		{"impersonation with expires_at", true, qlikBody(aliceLookup), 200, ""},
		{"client_credentials", false, qlikBody(`,"grant_type":"client_credentials"`), 200, ""},
		{"wrong secret", false, `{"client_id":"qlik-id","client_secret":"nope","grant_type":"client_credentials"}`, 401, "OAUTH-1"},
		{"wrong client", false, `{"client_id":"other","client_secret":"qlik-secret","grant_type":"client_credentials"}`, 401, "OAUTH-1"},
		{"no user_lookup", false, qlikBody(`,"grant_type":"urn:qlik:oauth:user-impersonation"`), 400, "OAUTH-3"},
		{"bad lookup field", false, qlikBody(`,"grant_type":"urn:qlik:oauth:user-impersonation","user_lookup":{"field":"name","value":"a"}`), 400, "OAUTH-3"},
		{"empty lookup value", false, qlikBody(`,"grant_type":"urn:qlik:oauth:user-impersonation","user_lookup":{"field":"email","value":""}`), 400, "OAUTH-3"},
		{"unsupported grant", false, qlikBody(`,"grant_type":"password"`), 400, "OAUTH-4"},
		{"not JSON", false, `client_id=qlik-id`, 400, "OAUTH-2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startWith(t, vendorsim.Options{QlikClientID: qlikID, QlikClientSecret: qlikSecret, QlikExpiresAt: tc.expiresAt})
			r := post(t, s.URL()+vendorsim.QlikTokenPath, "application/json", tc.body)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.raw)
			}
			if tc.wantStatus != 200 {
				errs, _ := r.json["errors"].([]any)
				if first, _ := errs[0].(map[string]any); first["code"] != tc.wantCode || first["title"] == "" {
					t.Errorf("error body %s, want code %s", r.raw, tc.wantCode)
				}
				return
			}
			token, _ := r.json["access_token"].(string)
			if !strings.HasPrefix(token, vendorsim.QlikTokenPrefix) || r.json["token_type"] != "Bearer" || s.Validate(token) != vendorsim.ValidityValid {
				t.Fatalf("answer %s", r.raw)
			}
			wantAt := epoch.Add(vendorsim.QlikTokenLifetime).Format(time.RFC3339)
			if tc.expiresAt && (r.json["expires_at"] != wantAt || r.json["expires_in"] != nil) ||
				!tc.expiresAt && (r.json["expires_in"] != 3600.0 || r.json["expires_at"] != nil) {
				t.Errorf("expiry fields in %s", r.raw)
			}
		})
	}
}

func TestQlikTokenLimitAndRevoke(t *testing.T) {
	s := startWith(t, vendorsim.Options{QlikClientID: qlikID, QlikClientSecret: qlikSecret, QlikMaxTokensPerUser: 1})
	issue := func() response {
		return post(t, s.URL()+vendorsim.QlikTokenPath, "application/json", qlikBody(aliceLookup))
	}
	revoke := func(body string) response { return post(t, s.URL()+vendorsim.QlikRevokePath, "application/json", body) }

	first := issue()
	token, _ := first.json["access_token"].(string)
	if r := issue(); r.status != 403 || !strings.Contains(r.raw, vendorsim.QlikTokenLimitCode) || !strings.Contains(r.raw, "maximum") {
		t.Fatalf("over the limit: %d %s", r.status, r.raw)
	}
	if r := post(t, s.URL()+vendorsim.QlikTokenPath, "application/json", qlikBody(`,"grant_type":"client_credentials"`)); r.status != 200 {
		t.Errorf("client_credentials is not per user: %d", r.status)
	}
	if r := revoke(`{"client_id":"qlik-id","client_secret":"nope","token":"` + token + `"}`); r.status != 401 || s.Validate(token) != vendorsim.ValidityValid {
		t.Fatalf("unauthenticated revoke: %d", r.status)
	}
	if r := revoke(qlikBody(``)); r.status != 400 {
		t.Errorf("revoke without token: %d", r.status)
	}
	if r := revoke(qlikBody(`,"token":"qlk_never-issued"`)); r.status != 200 {
		t.Errorf("revoking an unknown token (RFC 7009: not an error): %d", r.status)
	}
	if r := revoke(qlikBody(`,"token":"` + token + `","token_type_hint":"access_token"`)); r.status != 200 || s.Validate(token) != vendorsim.ValidityUnknown {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	if r := issue(); r.status != 200 {
		t.Errorf("after revoke: %d %s", r.status, r.raw)
	}
	calls := post(t, s.URL()+"/_sim/calls", "", "")
	if calls.status != 405 {
		t.Fatalf("POST /_sim/calls: %d", calls.status)
	}
	resp, err := http.Get(s.URL() + "/_sim/calls")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	log, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(log), qlikSecret) || strings.Contains(string(log), token) || !strings.Contains(string(log), `"vendor":"qlikCloud"`) {
		t.Errorf("admin log leaks a secret or misses Qlik: %s", log)
	}
}

func TestQlikRevokeLeavesOtherVendors(t *testing.T) {
	s := startWith(t, vendorsim.Options{QrveyAPIKey: apiKey})
	qrvey := do(t, http.DefaultClient, http.MethodPost, s.URL()+vendorsim.QrveyTokenPath, apiKey, okBody)
	token, _ := qrvey.json["token"].(string)
	body := `{"client_id":"` + vendorsim.DefaultQlikClientID + `","client_secret":"` + vendorsim.DefaultQlikClientSecret + `","token":"` + token + `"}`
	if r := post(t, s.URL()+vendorsim.QlikRevokePath, "application/json", body); r.status != 200 || s.Validate(token) != vendorsim.ValidityValid {
		t.Fatalf("revoke of a Qrvey token: %d, validity %v", r.status, s.Validate(token))
	}
}

// TestQlikErrorAtHTTP200 checks the OKWithError fault speaks Qlik's errors[]
// with the status it stands for, at HTTP 200.
func TestQlikErrorAtHTTP200(t *testing.T) {
	s := startWith(t, vendorsim.Options{QlikClientID: qlikID, QlikClientSecret: qlikSecret})
	s.SetFault(vendorsim.Fault{OKWithError: 401, Count: 1})
	r := post(t, s.URL()+vendorsim.QlikTokenPath, "application/json", qlikBody(aliceLookup))
	errs, _ := r.json["errors"].([]any)
	first, _ := errs[0].(map[string]any)
	if r.status != 200 || first["status"] != "401" || first["title"] == "" || r.json["access_token"] != nil || s.IssuedCount() != 0 {
		t.Fatalf("got %d %s", r.status, r.raw)
	}
}
