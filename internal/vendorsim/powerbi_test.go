package vendorsim_test

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

const (
	pbiTenant  = "contoso.onmicrosoft.com"
	pbiClient  = "pbi-client"
	pbiSecret  = "pbi+s3cret/="
	pbiReport  = "5b218778-e7a5-4d73-8187-f10824047715"
	pbiDataset = "cfafbeb1-8037-4d0c-896e-a46fb27ff229"
)

// startPowerBI runs a simulator for the tests' tenant and client with a
// fake clock at epoch.
func startPowerBI(t *testing.T) (*vendorsim.Server, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(epoch)
	s := vendorsim.New(vendorsim.Options{Clock: clk, PowerBITenantID: pbiTenant, PowerBIClientID: pbiClient, PowerBIClientSecret: pbiSecret})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, clk
}

// entraForm is a client_credentials form for the tests' client, with edits.
func entraForm(edit func(url.Values)) string {
	v := url.Values{"grant_type": {"client_credentials"}, "client_id": {pbiClient}, "client_secret": {pbiSecret}, "scope": {vendorsim.PowerBIScope}}
	if edit != nil {
		edit(v)
	}
	return v.Encode()
}

func TestPowerBIEntraToken(t *testing.T) {
	tests := []struct {
		name, tenant, contentType, body string
		wantStatus                      int
		wantError                       string
	}{
		{"client credentials", pbiTenant, form, entraForm(nil), 200, ""},
		{"JSON body", pbiTenant, jsonType, `{"grant_type":"client_credentials"}`, 400, "invalid_request"},
		{"another tenant", "fabrikam.example", form, entraForm(nil), 400, "invalid_request"},
		{"an unknown field", pbiTenant, form, entraForm(func(v url.Values) { v.Set("resource", "x") }), 400, "invalid_request"},
		{"a repeated field", pbiTenant, form, entraForm(func(v url.Values) { v.Add("scope", "x") }), 400, "invalid_request"},
		{"password grant", pbiTenant, form, entraForm(func(v url.Values) { v.Set("grant_type", "password") }), 400, "unsupported_grant_type"},
		{"unknown client", pbiTenant, form, entraForm(func(v url.Values) { v.Set("client_id", "other") }), 400, "unauthorized_client"},
		{"wrong secret", pbiTenant, form, entraForm(func(v url.Values) { v.Set("client_secret", "nope") }), 401, "invalid_client"},
		{"no secret", pbiTenant, form, entraForm(func(v url.Values) { v.Del("client_secret") }), 401, "invalid_client"},
		{"another scope", pbiTenant, form, entraForm(func(v url.Values) { v.Set("scope", "https://graph.microsoft.com/.default") }), 400, "invalid_scope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := startPowerBI(t)
			r := post(t, s.URL()+vendorsim.PowerBIEntraTokenPath(tc.tenant), tc.contentType, tc.body)
			if r.status != tc.wantStatus || (tc.wantError != "" && r.json["error"] != tc.wantError) {
				t.Fatalf("got %d %s, want %d %s", r.status, r.raw, tc.wantStatus, tc.wantError)
			}
			if s.PowerBIEntraCalls() != 1 {
				t.Errorf("PowerBIEntraCalls = %d, want 1", s.PowerBIEntraCalls())
			}
			if tc.wantStatus != 200 {
				if desc, _ := r.json["error_description"].(string); !strings.HasPrefix(desc, "AADSTS") {
					t.Errorf("error_description %q has no AADSTS code", desc)
				}
				return
			}
			token, _ := r.json["access_token"].(string)
			if !strings.HasPrefix(token, vendorsim.PowerBIAccessTokenPrefix) || r.json["expires_in"] != 3600.0 ||
				r.json["token_type"] != "Bearer" || s.Validate(token) != vendorsim.ValidityValid {
				t.Fatalf("answer %s", r.raw)
			}
		})
	}
}

// accessToken gets an access token from s.
func accessToken(t *testing.T, s *vendorsim.Server) string {
	t.Helper()
	r := post(t, s.URL()+vendorsim.PowerBIEntraTokenPath(pbiTenant), form, entraForm(nil))
	token, _ := r.json["access_token"].(string)
	if token == "" {
		t.Fatalf("no access token: %s", r.raw)
	}
	return token
}

var guid = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestPowerBIGenerateToken(t *testing.T) {
	const report = `"reports":[{"id":"` + pbiReport + `","allowEdit":false}]`
	const dataset = `"datasets":[{"id":"` + pbiDataset + `","xmlaPermissions":"ReadOnly"}]`
	identity := func(datasetID string) string {
		return `"identities":[{"username":"alice","roles":["Tenant"],"datasets":["` + datasetID + `"],"customData":"acme"}]`
	}
	tests := []struct {
		name, auth, contentType, body string
		wantStatus                    int
		wantCode                      string
		wantTTL                       time.Duration
	}{
		{"every field", "access", jsonType, `{` + report + `,` + dataset + `,"targetWorkspaces":[{"id":"` + pbiReport + `"}],` + identity(pbiDataset) + `,"lifetimeInMinutes":10}`, 200, "", 10 * time.Minute},
		{"no lifetime: the access token's", "access", jsonType, `{` + report + `}`, 200, "", time.Hour},
		{"a longer lifetime is cut", "access", jsonType, `{` + dataset + `,"lifetimeInMinutes":120}`, 200, "", time.Hour},
		{"no Authorization", "", jsonType, `{` + report + `}`, 401, "Unauthorized", 0},
		{"Basic", "Basic eDp5", jsonType, `{` + report + `}`, 401, "Unauthorized", 0},
		{"unknown bearer", "Bearer " + vendorsim.PowerBIAccessTokenPrefix + "nope", jsonType, `{` + report + `}`, 401, "InvalidToken", 0},
		{"embed token as bearer", "embed", jsonType, `{` + report + `}`, 401, "InvalidToken", 0},
		{"text body", "access", "text/plain", `{` + report + `}`, 400, "InvalidRequest", 0},
		{"unknown field", "access", jsonType, `{` + report + `,"lifetimeMinutes":10}`, 400, "InvalidRequest", 0},
		{"neither report nor dataset", "access", jsonType, `{"targetWorkspaces":[{"id":"` + pbiReport + `"}]}`, 400, "InvalidRequest", 0},
		{"report id not a GUID", "access", jsonType, `{"reports":[{"id":"sales"}]}`, 400, "InvalidRequest", 0},
		{"allowEdit not a boolean", "access", jsonType, `{"reports":[{"id":"` + pbiReport + `","allowEdit":"yes"}]}`, 400, "InvalidRequest", 0},
		{"bad xmlaPermissions", "access", jsonType, `{"datasets":[{"id":"` + pbiDataset + `","xmlaPermissions":"ReadWrite"}]}`, 400, "InvalidRequest", 0},
		{"identity of an unlisted dataset", "access", jsonType, `{` + report + `,` + identity(pbiDataset) + `}`, 400, "InvalidRequest", 0},
		{"identity without username", "access", jsonType, `{` + dataset + `,"identities":[{"datasets":["` + pbiDataset + `"]}]}`, 400, "InvalidRequest", 0},
		{"zero lifetime", "access", jsonType, `{` + report + `,"lifetimeInMinutes":0}`, 400, "InvalidRequest", 0},
		{"fractional lifetime", "access", jsonType, `{` + report + `,"lifetimeInMinutes":1.5}`, 400, "InvalidRequest", 0},
		{"lifetime as a string", "access", jsonType, `{` + report + `,"lifetimeInMinutes":"10"}`, 400, "InvalidRequest", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := startPowerBI(t)
			auth := tc.auth
			switch auth {
			case "access":
				auth = "Bearer " + accessToken(t, s)
			case "embed":
				first := post(t, s.URL()+vendorsim.PowerBIGenerateTokenPath, jsonType, `{`+report+`}`, "Authorization", "Bearer "+accessToken(t, s))
				auth = "Bearer " + first.json["token"].(string)
			}
			r := post(t, s.URL()+vendorsim.PowerBIGenerateTokenPath, tc.contentType, tc.body, "Authorization", auth)
			pbiErr, _ := r.json["error"].(map[string]any)
			if r.status != tc.wantStatus || (tc.wantCode != "" && pbiErr["code"] != tc.wantCode) {
				t.Fatalf("got %d %s, want %d %s", r.status, r.raw, tc.wantStatus, tc.wantCode)
			}
			if tc.wantStatus != 200 {
				return
			}
			token, _ := r.json["token"].(string)
			id, _ := r.json["tokenId"].(string)
			if !strings.HasPrefix(token, vendorsim.PowerBIEmbedTokenPrefix) || !guid.MatchString(id) ||
				r.json["expiration"] != epoch.Add(tc.wantTTL).Format(time.RFC3339) || s.Validate(token) != vendorsim.ValidityValid {
				t.Fatalf("answer %s", r.raw)
			}
		})
	}
}

// TestPowerBIExpiry: an expired access token gets 403 TokenExpired, and
// embed tokens expire when their expiration says.
func TestPowerBIExpiry(t *testing.T) {
	s, clk := startPowerBI(t)
	access := accessToken(t, s)
	r := post(t, s.URL()+vendorsim.PowerBIGenerateTokenPath, jsonType, `{"reports":[{"id":"`+pbiReport+`"}],"lifetimeInMinutes":10}`, "Authorization", "Bearer "+access)
	embed, _ := r.json["token"].(string)
	clk.Step(10 * time.Minute)
	if s.Validate(embed) != vendorsim.ValidityExpired || s.Validate(access) != vendorsim.ValidityValid {
		t.Errorf("after 10m: embed %v, access %v", s.Validate(embed), s.Validate(access))
	}
	clk.Step(50 * time.Minute)
	r = post(t, s.URL()+vendorsim.PowerBIGenerateTokenPath, jsonType, `{"reports":[{"id":"`+pbiReport+`"}]}`, "Authorization", "Bearer "+access)
	pbiErr, _ := r.json["error"].(map[string]any)
	if r.status != http.StatusForbidden || pbiErr["code"] != vendorsim.PowerBIExpiredCode {
		t.Errorf("expired access token: %d %s", r.status, r.raw)
	}
	if !slices.Contains(s.Vendors(), "powerBI") || s.PowerBIEntraCalls() != 1 {
		t.Errorf("Vendors() = %v, PowerBIEntraCalls() = %d", s.Vendors(), s.PowerBIEntraCalls())
	}
}

// TestPowerBIFaults: faults reach both endpoints in Power BI's shapes.
func TestPowerBIFaults(t *testing.T) {
	s, _ := startPowerBI(t)
	access := accessToken(t, s)
	s.SetFault(vendorsim.Fault{Status: 503, Count: 1})
	r := post(t, s.URL()+vendorsim.PowerBIGenerateTokenPath, jsonType, `{"reports":[{"id":"`+pbiReport+`"}]}`, "Authorization", "Bearer "+access)
	if pbiErr, _ := r.json["error"].(map[string]any); r.status != 503 || pbiErr["code"] == nil {
		t.Errorf("GenerateToken fault: %d %s", r.status, r.raw)
	}
	s.SetFault(vendorsim.Fault{EmptyToken: true, Count: 1})
	r = post(t, s.URL()+vendorsim.PowerBIEntraTokenPath(pbiTenant), form, entraForm(nil))
	if r.status != 200 || r.json["access_token"] != "" {
		t.Errorf("Entra ID empty token fault: %d %s", r.status, r.raw)
	}
}
