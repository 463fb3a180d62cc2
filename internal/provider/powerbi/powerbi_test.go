package powerbi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/powerbi"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// TestWireFormat checks both calls field by field: the Entra ID form and
// the GenerateToken headers and JSON body.
func TestWireFormat(t *testing.T) {
	s, _, v := sim(t, simOptions())
	req := request(t, v.url, v.url, "secret")
	req.Lifetime = 10*time.Minute + 59*time.Second
	tok, err := powerbi.New().Issue(context.Background(), req)
	providertest.CheckError(t, err, success, secret)
	reqs := v.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}

	entra := reqs[0]
	if entra.Method != http.MethodPost || entra.Path != "/"+tenant+"/oauth2/v2.0/token" ||
		entra.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || entra.Header.Get("Authorization") != "" {
		t.Errorf("Entra ID request %s %s, headers %v", entra.Method, entra.Path, entra.Header)
	}
	form, err := url.ParseQuery(string(entra.Body))
	wantForm := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret},
		"scope": {"https://analysis.windows.net/powerbi/api/.default"}}
	if err != nil || !reflect.DeepEqual(form, wantForm) {
		t.Errorf("Entra ID form = %v, want %v", form, wantForm)
	}

	gen := reqs[1]
	access := accessTokens(s)
	if len(access) != 1 || gen.Method != http.MethodPost || gen.Path != "/v1.0/myorg/GenerateToken" ||
		gen.Header.Get("Authorization") != "Bearer "+access[0] || gen.Header.Get("Content-Type") != "application/json" {
		t.Errorf("GenerateToken request %s %s, headers %v", gen.Method, gen.Path, gen.Header)
	}
	var body map[string]any
	if err := json.Unmarshal(gen.Body, &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"reports":          []any{map[string]any{"id": reportID, "allowEdit": true}},
		"datasets":         []any{map[string]any{"id": datasetID, "xmlaPermissions": "ReadOnly"}},
		"targetWorkspaces": []any{map[string]any{"id": workspaceID}},
		"identities": []any{map[string]any{"username": "alice@acme.example", "roles": []any{"Tenant"},
			"datasets": []any{datasetID}, "customData": "acme"}},
		"lifetimeInMinutes": float64(10),
	}
	for field, w := range want {
		if !reflect.DeepEqual(body[field], w) {
			t.Errorf("GenerateToken %s = %v, want %v", field, body[field], w)
		}
	}
	if len(body) != len(want) {
		t.Errorf("GenerateToken body has fields %v, want exactly %v", body, want)
	}
	providertest.CheckWindow(t, tok, 10*time.Minute)
	if s.Validate(tok.Value) != vendorsim.ValidityValid || !strings.HasPrefix(tok.Value, vendorsim.PowerBIEmbedTokenPrefix) {
		t.Errorf("embed token %v is not valid at the simulator", tok)
	}
}

// TestGenerateTokenBody checks the optional fields and lifetimeInMinutes:
// whole minutes rounded down, at least one, absent without a lifetime.
func TestGenerateTokenBody(t *testing.T) {
	report := &v1alpha1.PowerBIParams{Reports: []v1alpha1.PowerBIReport{{ID: reportID}}}
	dataset := &v1alpha1.PowerBIParams{Datasets: []v1alpha1.PowerBIDataset{{ID: datasetID}}}
	for _, tc := range []struct {
		name     string
		params   *v1alpha1.PowerBIParams
		lifetime time.Duration
		want     string
	}{
		{"one report, an hour", report, time.Hour, `{"reports":[{"id":"` + reportID + `"}],"lifetimeInMinutes":60}`},
		{"rounded down", report, 119 * time.Second, `{"reports":[{"id":"` + reportID + `"}],"lifetimeInMinutes":1}`},
		{"at least a minute", report, 30 * time.Second, `{"reports":[{"id":"` + reportID + `"}],"lifetimeInMinutes":1}`},
		{"no lifetime", dataset, 0, `{"datasets":[{"id":"` + datasetID + `"}]}`},
		{"identity without roles", &v1alpha1.PowerBIParams{Datasets: dataset.Datasets,
			Identities: []v1alpha1.PowerBIIdentity{{Username: "bob", Datasets: []string{datasetID}}}}, 24 * time.Hour,
			`{"datasets":[{"id":"` + datasetID + `"}],"identities":[{"username":"bob","datasets":["` + datasetID + `"]}],"lifetimeInMinutes":1440}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := powerbi.GenerateTokenBody(tc.params, tc.lifetime)
			if err != nil || string(got) != tc.want {
				t.Errorf("body = %s, %v\nwant   %s", got, err, tc.want)
			}
		})
	}
}

// TestExpiry reads the expiry from GenerateToken's expiration, which the
// simulator, like Power BI, cuts to the access token's remaining life.
func TestExpiry(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lifetime time.Duration
		answer   string // from a scripted Power BI instead of the simulator
		want     time.Duration
		wantErr  providertest.Want
	}{
		{name: "the lifetime asked", lifetime: 10 * time.Minute, want: 10 * time.Minute},
		{name: "cut to the access token's life", lifetime: 2 * time.Hour, want: vendorsim.PowerBIAccessTokenLifetime},
		{name: "with an offset", answer: `{"token":"H4sIx","expiration":"2030-01-02T05:04:05+01:00"}`, want: time.Hour},
		{name: "fractional", answer: `{"token":"H4sIx","expiration":"2030-01-02T03:04:05.5Z"}`, want: 500 * time.Millisecond},
		{name: "no expiration", answer: `{"token":"H4sIx","tokenId":"x"}`,
			wantErr: providertest.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "without an expiration"}},
		{name: "not a date-time", answer: `{"token":"H4sIx","expiration":"tomorrow"}`,
			wantErr: providertest.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "ISO 8601"}},
		{name: "epoch seconds", answer: `{"token":"H4sIx","expiration":1893553445}`,
			wantErr: providertest.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "ISO 8601"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, entra := sim(t, simOptions())
			api := entra
			if tc.answer != "" {
				api = scripted(t, fixed(200, nil, tc.answer))
			}
			req := request(t, entra.url, api.url, "secret")
			req.Lifetime = max(tc.lifetime, time.Minute)
			tok, err := powerbi.New().Issue(context.Background(), req)
			providertest.CheckError(t, err, tc.wantErr, secret)
			if err == nil {
				providertest.CheckWindow(t, tok, tc.want)
			}
			if tc.answer == "" && s.Validate(tok.Value) != vendorsim.ValidityValid {
				t.Error("the simulator does not know the token")
			}
		})
	}
}

// TestErrors maps each refusal of Entra ID or Power BI to a reason and a
// message naming the step, with Power BI's "code: message", and never the
// client secret or an access token.
func TestErrors(t *testing.T) {
	pbiError := func(code, msg string) string { return `{"error":{"code":"` + code + `","message":"` + msg + `"}}` }
	tests := []struct {
		name     string
		key      string // secret key, "secret" when empty
		clientID string
		tenant   string
		fault    *vendorsim.Fault // on the simulated Entra ID call
		entra    func(int, *http.Request) (int, http.Header, string)
		api      func(int, *http.Request) (int, http.Header, string)
		timeout  time.Duration
		want     providertest.Want
	}{
		{name: "wrong secret", key: "wrong", want: providertest.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true,
			Message: "Microsoft Entra ID token request: vendor answered HTTP 401: invalid_client: AADSTS7000215: Invalid client secret provided."}},
		{name: "unknown client", clientID: "someone-else", want: providertest.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true,
			Message: "HTTP 400: unauthorized_client: AADSTS700016"}},
		{name: "unknown tenant", tenant: "fabrikam.example", want: providertest.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true,
			Message: "AADSTS90002: Tenant 'fabrikam.example' not found."}},
		{name: "missing secret", key: "absent", want: providertest.Want{Reason: v1alpha1.ReasonCredentialsNotFound}},
		{name: "blank secret", key: "blank", want: providertest.Want{Reason: v1alpha1.ReasonInvalidCredentials, Permanent: true}},
		{name: "Entra ID 503", fault: &vendorsim.Fault{Status: 503, RetryAfter: 2 * time.Second},
			want: providertest.Want{Reason: v1alpha1.ReasonVendorUnavailable, RetryAfter: 2 * time.Second, Message: "Microsoft Entra ID token request: vendor answered HTTP 503"}},
		{name: "Entra ID HTML", fault: &vendorsim.Fault{Garbage: true}, want: providertest.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "HTML"}},
		{name: "Entra ID without a token", fault: &vendorsim.Fault{EmptyToken: true}, want: providertest.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "access_token"}},
		{name: "Entra ID timeout", fault: &vendorsim.Fault{Delay: time.Minute}, timeout: 100 * time.Millisecond,
			want: providertest.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "Microsoft Entra ID token request: vendor did not answer within 100ms"}},
		{name: "Entra ID echoes the secret", entra: fixed(400, nil, `{"error":"invalid_request","error_description":"bad client_secret `+secret+`"}`),
			want: providertest.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "[redacted]"}},
		{name: "bad request", api: fixed(400, nil, pbiError("InvalidRequest", "Dataset not found")),
			want: providertest.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "Power BI GenerateToken: vendor answered HTTP 400: InvalidRequest: Dataset not found"}},
		{name: "not authorized", api: fixed(403, nil, pbiError("PowerBINotAuthorizedException", "")),
			want: providertest.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "HTTP 403: PowerBINotAuthorizedException"}},
		{name: "not found", api: fixed(404, nil, pbiError("ItemNotFound", "Report is not found")),
			want: providertest.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "ItemNotFound: Report is not found"}},
		{name: "throttled", api: fixed(429, http.Header{"Retry-After": {"5"}}, pbiError("TooManyRequests", "")),
			want: providertest.Want{Reason: v1alpha1.ReasonVendorQuotaExceeded, RetryAfter: 5 * time.Second}},
		{name: "500", api: fixed(500, nil, ""), want: providertest.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "HTTP 500"}},
		{name: "HTML", api: fixed(200, nil, "<html>maintenance</html>"), want: providertest.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "HTML"}},
		{name: "no token", api: fixed(200, nil, `{"token":"","expiration":"2030-01-02T04:04:05Z"}`),
			want: providertest.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "without a token"}},
		{name: "Power BI echoes the access token", api: func(_ int, r *http.Request) (int, http.Header, string) {
			return 400, nil, pbiError("InvalidRequest", "token "+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")+" is odd")
		}, want: providertest.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "InvalidRequest: token [redacted] is odd"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _, entra := sim(t, simOptions())
			if tc.entra != nil {
				entra = scripted(t, tc.entra)
			}
			api := entra
			if tc.api != nil {
				api = scripted(t, tc.api)
			}
			if tc.fault != nil {
				s.SetFault(*tc.fault)
			}
			req := request(t, entra.url, api.url, tc.key+map[bool]string{true: "secret"}[tc.key == ""])
			if tc.timeout > 0 {
				req = withTimeout(t, req, tc.timeout)
			}
			if tc.clientID != "" {
				req.Config.PowerBI.ClientID = tc.clientID
			}
			if tc.tenant != "" {
				req.Config.PowerBI.TenantID = tc.tenant
			}
			_, err := powerbi.New().Issue(context.Background(), req)
			providertest.CheckError(t, err, tc.want, append(accessTokens(s), secret)...)
			if tc.api != nil && len(api.requests()) != 1 {
				t.Errorf("Power BI was called %d times, want once: only a refused access token is retried", len(api.requests()))
			}
		})
	}
}

// withTimeout gives req a client bounded by timeout.
func withTimeout(t *testing.T, req provider.Request, timeout time.Duration) provider.Request {
	bounded := providertest.Request(t, creds, timeout)
	req.HTTPClient = bounded.HTTPClient
	return req
}

func TestMismatch(t *testing.T) {
	req := providertest.Request(t, creds, 0)
	_, err := powerbi.New().Issue(context.Background(), req)
	providertest.CheckError(t, err, providertest.Want{Reason: v1alpha1.ReasonVendorMismatch, Permanent: true})
}

// TestSample runs config/samples against the simulator.
func TestSample(t *testing.T) {
	prov, etr := providertest.Sample(t, "embedtokens_v1alpha1_embedprovider_powerbi.yaml")
	s, _, v := sim(t, vendorsim.Options{PowerBITenantID: prov.PowerBI.TenantID, PowerBIClientID: prov.PowerBI.ClientID, PowerBIClientSecret: secret})
	prov.PowerBI.AuthorityURL = providertest.Rebase(t, prov.PowerBI.AuthorityURL, v.url)
	prov.PowerBI.APIURL = providertest.Rebase(t, prov.PowerBI.APIURL, v.url)
	req := providertest.Request(t, providertest.Creds{"powerbi-credentials/clientSecret": secret}, 0)
	req.Config, req.Params, req.Lifetime = &prov, &etr.VendorParams, etr.Lifetime.Duration
	tok, err := powerbi.New().Issue(context.Background(), req)
	providertest.CheckError(t, err, success, secret)
	if s.Validate(tok.Value) != vendorsim.ValidityValid {
		t.Errorf("the sample's token is not valid at the simulator")
	}
}

func TestErrorDetail(t *testing.T) {
	for body, want := range map[string]string{
		`{"error":{"code":"InvalidRequest","message":"Dataset not found"}}`: "InvalidRequest: Dataset not found",
		`{"error":{"code":"TokenExpired"}}`:                                 "TokenExpired",
		`{"error":"invalid_client"}`:                                        "",
		`<html>`:                                                            "",
	} {
		if got := powerbi.ErrorDetail([]byte(body)); got != want {
			t.Errorf("ErrorDetail(%s) = %q, want %q", body, got, want)
		}
	}
}

func FuzzParseEmbedToken(f *testing.F) {
	for _, seed := range []struct {
		status         int
		prefix, suffix string
	}{
		{200, `{"token":"`, `","tokenId":"x","expiration":"2030-01-02T04:04:05Z"}`},
		{200, `{"token":"`, `","expiration":"bad"}`},
		{200, `{"token":"`, `","expiration":1893553445}`},
		{200, `{"token":"`, `"}`},
		{200, `<html>`, `</html>`},
		{403, `{"error":{"code":"TokenExpired","message":"`, `"}}`},
		{400, `{"error":{"code":"`, `"}}`},
		{503, `{"error":"`, `"}`},
	} {
		f.Add(seed.status, []byte(seed.prefix), []byte(seed.suffix))
	}
	providertest.FuzzParser(f, func(resp *provider.Response) (provider.Token, error) {
		return powerbi.ParseEmbedToken(resp, providertest.Epoch)
	}, powerbi.ErrorDetail)
}

func FuzzParseAccessToken(f *testing.F) {
	for _, seed := range []struct {
		status         int
		prefix, suffix string
	}{
		{200, `{"token_type":"Bearer","expires_in":3599,"access_token":"`, `"}`},
		{200, `{"access_token":"`, `","expires_in":"3599"}`},
		{200, `{"access_token":"`, `"}`},
		{200, `{"access_token":"`, `","expires_in":-1}`},
		{401, `{"error":"invalid_client","error_description":"`, `"}`},
		{400, `{"error":"`, `","error_codes":[90002]}`},
		{503, `<html>`, `</html>`},
	} {
		f.Add(seed.status, []byte(seed.prefix), []byte(seed.suffix))
	}
	providertest.FuzzParser(f, func(resp *provider.Response) (provider.Token, error) {
		return powerbi.ParseAccessToken(resp, providertest.Epoch)
	}, func(body []byte) string {
		var e struct {
			Error            string `json:"error"`
			ErrorDescription string `json:"error_description"`
		}
		_ = json.Unmarshal(body, &e)
		return e.Error + " " + e.ErrorDescription
	})
}
