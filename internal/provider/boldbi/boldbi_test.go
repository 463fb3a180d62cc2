package boldbi_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/boldbi"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

const embedSecret = "s3cret-embed"

var epoch = pt.Epoch

// request builds an Issue request for serverURL with the test's embed secret.
func request(t *testing.T, serverURL string, params *v1alpha1.BoldBIParams, timeout time.Duration) provider.Request {
	req := pt.Request(t, pt.Creds{"boldbi/embedSecret": embedSecret + "\n"}, timeout)
	req.Config.BoldBI = &v1alpha1.BoldBIProvider{ServerURL: serverURL, SiteIdentifier: vendorsim.DefaultBoldBISite,
		EmbedSecretSecretRef: pt.Ref("boldbi/embedSecret")}
	req.Params.BoldBI = params
	return req
}

func value(raw string) apiextensionsv1.JSON { return apiextensionsv1.JSON{Raw: []byte(raw)} }

func TestIssueAgainstSimulator(t *testing.T) {
	tests := []struct {
		name     string
		opts     vendorsim.Options
		fault    *vendorsim.Fault
		params   v1alpha1.BoldBIParams
		timeout  time.Duration
		want     pt.Want
		checkReq func(t *testing.T, body map[string]any)
	}{
		{name: "success with expires_in", params: v1alpha1.BoldBIParams{Email: "alice@example.com"},
			checkReq: func(t *testing.T, body map[string]any) {
				for _, absent := range []string{"dashboard", "datasourcefilters", "dashboardparameters", "customattributes"} {
					if _, ok := body[absent]; ok {
						t.Errorf("body sets %s although the request does not", absent)
					}
				}
				if body["serverurl"] == nil || body["siteidentifier"] != vendorsim.DefaultBoldBISite || body["embedsecret"] != embedSecret {
					t.Errorf("body = %v", body)
				}
			}},
		{name: "success from the JWT exp", opts: vendorsim.Options{BoldBIOmitExpiresIn: true}, params: v1alpha1.BoldBIParams{Email: "alice@example.com"}},
		{name: "dashboard and lists", params: v1alpha1.BoldBIParams{Email: "bob@example.com", DashboardID: "d-1",
			DatasourceFilters:   []v1alpha1.NameValue{{Name: "Region", Value: value(`["EU","US"]`)}},
			DashboardParameters: []v1alpha1.NameValue{{Name: "Year", Value: value(`"2030"`)}},
			CustomAttributes:    []v1alpha1.NameValue{{Name: "tenant", Value: value(`"acme"`), Operator: "IN"}}},
			checkReq: func(t *testing.T, body map[string]any) {
				d, _ := body["dashboard"].(map[string]any)
				attrs, _ := body["customattributes"].([]any)
				if d["id"] != "d-1" || len(attrs) != 1 || attrs[0].(map[string]any)["operator"] != "IN" {
					t.Errorf("body = %v", body)
				}
			}},
		{name: "numbers and booleans, as in Bold BI's row-level security examples", params: v1alpha1.BoldBIParams{Email: "bob@example.com",
			DatasourceFilters:   []v1alpha1.NameValue{{Name: "Active", Value: value(`true`)}},
			DashboardParameters: []v1alpha1.NameValue{{Name: "CustomerId", Value: value(`[1001, 1002]`), Operator: "NOT IN"}},
			CustomAttributes:    []v1alpha1.NameValue{{Name: "tenant", Value: value(`42`)}}},
			checkReq: func(t *testing.T, body map[string]any) {
				params, _ := body["dashboardparameters"].([]any)
				filters, _ := body["datasourcefilters"].([]any)
				attrs, _ := body["customattributes"].([]any)
				if len(params) != 1 || len(filters) != 1 || len(attrs) != 1 ||
					!reflect.DeepEqual(params[0].(map[string]any)["value"], []any{1001.0, 1002.0}) ||
					filters[0].(map[string]any)["value"] != true || attrs[0].(map[string]any)["value"] != 42.0 {
					t.Errorf("body = %v", body)
				}
			}},
		{name: "wrong embed secret answers 200 with ApiStatus false", opts: vendorsim.Options{BoldBIEmbedSecret: "another"},
			params: v1alpha1.BoldBIParams{Email: "a@example.com"},
			want:   pt.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "Invalid embed secret"}},
		{name: "401", fault: &vendorsim.Fault{Status: 401}, params: v1alpha1.BoldBIParams{Email: "a@example.com"},
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "HTTP 401: simulated fault"}},
		{name: "403", fault: &vendorsim.Fault{Status: 403}, params: v1alpha1.BoldBIParams{Email: "a@example.com"},
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true}},
		{name: "429 with Retry-After", fault: &vendorsim.Fault{Status: 429, RetryAfter: 7 * time.Second}, params: v1alpha1.BoldBIParams{Email: "a@example.com"},
			want: pt.Want{Reason: v1alpha1.ReasonVendorQuotaExceeded, RetryAfter: 7 * time.Second}},
		{name: "503", fault: &vendorsim.Fault{Status: 503}, params: v1alpha1.BoldBIParams{Email: "a@example.com"},
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnavailable}},
		{name: "HTML page", fault: &vendorsim.Fault{Garbage: true}, params: v1alpha1.BoldBIParams{Email: "a@example.com"},
			want: pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "HTML"}},
		{name: "empty token", fault: &vendorsim.Fault{EmptyToken: true}, params: v1alpha1.BoldBIParams{Email: "a@example.com"},
			want: pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "no access_token"}},
		{name: "timeout", fault: &vendorsim.Fault{Delay: time.Hour}, timeout: 100 * time.Millisecond, params: v1alpha1.BoldBIParams{Email: "a@example.com"},
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "did not answer"}},
		{name: "object value", params: v1alpha1.BoldBIParams{Email: "a@example.com",
			DashboardParameters: []v1alpha1.NameValue{{Name: "p", Value: value(`{"x":1}`)}}},
			want: pt.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true, Message: "dashboardParameters[0] (p)"}},
		{name: "null value", params: v1alpha1.BoldBIParams{Email: "a@example.com",
			CustomAttributes: []v1alpha1.NameValue{{Name: "a", Value: value(`null`)}}},
			want: pt.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true, Message: "customAttributes[0] (a): value must be a string, number or boolean, or a list of them"}},
		{name: "list of lists", params: v1alpha1.BoldBIParams{Email: "a@example.com",
			DatasourceFilters: []v1alpha1.NameValue{{Name: "f", Value: value(`[[1]]`)}}},
			want: pt.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true, Message: "datasourceFilters[0] (f)"}},
		{name: "no email", params: v1alpha1.BoldBIParams{},
			want: pt.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.BoldBIEmbedSecret == "" {
				tc.opts.BoldBIEmbedSecret = embedSecret
			}
			sim := pt.StartSim(t, tc.opts)
			if tc.fault != nil {
				sim.SetFault(*tc.fault)
			}
			tok, err := boldbi.New().Issue(context.Background(), request(t, sim.URL()+vendorsim.BoldBIServerPath, &tc.params, tc.timeout))
			pt.CheckError(t, err, tc.want, embedSecret, tok.Value)
			for _, c := range sim.Calls() {
				if tc.checkReq != nil {
					tc.checkReq(t, c.Body)
				}
				pt.CheckError(t, err, tc.want, c.Token)
			}
			if err != nil {
				return
			}
			if sim.Validate(tok.Value) != vendorsim.ValidityValid || tok.Type != "bearer" {
				t.Fatalf("token %v not valid in the simulator (type %q)", tok, tok.Type)
			}
			if want := epoch.Add(vendorsim.BoldBITokenLifetime); !tok.ExpiresAt.Equal(want) || !tok.IssuedAt.Equal(epoch) {
				t.Errorf("token = %v, want expiry %v", tok, want)
			}
		})
	}
}

func TestIssueMisconfigured(t *testing.T) {
	req := request(t, "http://127.0.0.1:1/bi", &v1alpha1.BoldBIParams{Email: "a@example.com"}, 0)
	req.Credentials = pt.Creds{}
	_, err := boldbi.New().Issue(context.Background(), req)
	pt.CheckError(t, err, pt.Want{Reason: v1alpha1.ReasonCredentialsNotFound})

	req.Params.BoldBI = nil
	_, err = boldbi.New().Issue(context.Background(), req)
	pt.CheckError(t, err, pt.Want{Reason: v1alpha1.ReasonVendorMismatch, Permanent: true})
}

func TestAuthorizeURL(t *testing.T) {
	for _, tc := range []struct{ server, site, want string }{
		{"https://h/bi", "site/site1", "https://h/bi/api/site/site1/embed/authorize"},
		{"https://h/bi/", "/site/site1/", "https://h/bi/api/site/site1/embed/authorize"},
		// Bold BI Cloud: no site identifier, and an empty path segment, as
		// Bold BI's own samples build it.
		{"https://acme.boldbi.com/bi", "", "https://acme.boldbi.com/bi/api//embed/authorize"},
	} {
		if got := boldbi.AuthorizeURL(tc.server, tc.site); got != tc.want {
			t.Errorf("AuthorizeURL(%q, %q) = %q", tc.server, tc.site, got)
		}
	}
}

func TestParseResponse(t *testing.T) {
	exp := epoch.Add(2 * time.Hour)
	token := pt.JWTWithExp(t, exp)
	ok := func(data string) string { return `{"ApiStatus":true,"Status":true,"Data":` + data + `}` }
	tests := []struct {
		name, body string
		wantExp    time.Time
		want       pt.Want
	}{
		{"expires_in number", ok(`{"access_token":"` + token + `","token_type":"bearer","expires_in":600}`), epoch.Add(10 * time.Minute), pt.Want{}},
		{"expires_in string", ok(`{"access_token":"` + token + `","expires_in":"600"}`), epoch.Add(10 * time.Minute), pt.Want{}},
		{"JWT exp, locale .expires ignored", ok(`{"access_token":"` + token + `",".expires":"02.01.2030 05:04:05"}`), exp, pt.Want{}},
		{"expires_in null falls back to JWT", ok(`{"access_token":"` + token + `","expires_in":null}`), exp, pt.Want{}},
		{"bad expires_in", ok(`{"access_token":"` + token + `","expires_in":"soon"}`), time.Time{},
			pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "expires_in"}},
		{"opaque token without expires_in", ok(`{"access_token":"opaque-token-value"}`), time.Time{},
			pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "expiry is unknown"}},
		{"ApiStatus false with Message", `{"ApiStatus":false,"Data":null,"Message":"User not found"}`, time.Time{},
			pt.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "User not found"}},
		{"ApiStatus false with StatusMessage", `{"ApiStatus":false,"StatusMessage":"Site disabled"}`, time.Time{},
			pt.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "Site disabled"}},
		{"ApiStatus false, token present", `{"ApiStatus":false,"Data":{"access_token":"` + token + `"}}`, time.Time{},
			pt.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true}},
		{"no ApiStatus", `{"Data":{"access_token":"` + token + `"}}`, time.Time{}, pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "no ApiStatus"}},
		{"no Data", `{"ApiStatus":true}`, time.Time{}, pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "no Data"}},
		{"Data is a string", `{"ApiStatus":true,"Data":"` + token + `"}`, time.Time{}, pt.Want{Reason: v1alpha1.ReasonInvalidResponse}},
		{"JSON without token", ok(`{"token_type":"bearer","expires_in":60}`), time.Time{}, pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "no access_token"}},
		{"truncated JSON", ok(`{"access_token":"` + token + `","expires_in":6`)[:60], time.Time{}, pt.Want{Reason: v1alpha1.ReasonInvalidResponse}},
		{"HTML", `<html><body>` + token + `</body></html>`, time.Time{}, pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "HTML"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := boldbi.ParseResponse([]byte(tc.body), epoch)
			pt.CheckError(t, err, tc.want, token)
			if err == nil && (tok.Value != token || !tok.ExpiresAt.Equal(tc.wantExp)) {
				t.Fatalf("token = %v, want expiry %v", tok, tc.wantExp)
			}
		})
	}
}

// TestIssueOddAnswers covers answers the simulator does not give, through a
// real HTTP round trip.
func TestIssueOddAnswers(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   pt.Want
	}{
		{"expires_in as string", 200, `{"ApiStatus":true,"Data":{"access_token":"opaque","expires_in":"3600"}}`, pt.Want{}},
		{"500 with Bold BI message", 500, `{"ApiStatus":false,"Message":"Internal error"}`, pt.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "Internal error"}},
		{"400 echoing the secret", 400, `{"Message":"bad secret ` + embedSecret + `"}`, pt.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "[redacted]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !strings.HasSuffix(r.URL.Path, "/api/site/site1/embed/authorize") {
					http.NotFound(w, r)
					return
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			tok, err := boldbi.New().Issue(context.Background(), request(t, srv.URL+"/bi", &v1alpha1.BoldBIParams{Email: "a@example.com"}, 0))
			pt.CheckError(t, err, tc.want, embedSecret)
			if err == nil && !tok.ExpiresAt.Equal(epoch.Add(time.Hour)) {
				t.Errorf("token = %v", tok)
			}
		})
	}
}

func FuzzParseResponse(f *testing.F) {
	token := pt.JWTWithExp(f, epoch.Add(time.Hour))
	for _, seed := range []string{
		`{"ApiStatus":true,"Data":{"access_token":"` + token + `","expires_in":3600}}`,
		`{"ApiStatus":true,"Data":{"access_token":"` + token + `","expires_in":"3600"}}`,
		`{"ApiStatus":true,"Data":{"access_token":"` + token + `"}}`,
		`{"ApiStatus":false,"Message":"Invalid embed secret"}`,
		`{"ApiStatus":true,"Data":null}`,
		`<html></html>`, `{"ApiStatus":tr`, ``, `null`, `[]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, err := boldbi.ParseResponse(body, epoch)
		if err == nil {
			if tok.Value == "" || tok.ExpiresAt.IsZero() {
				t.Fatalf("success without token or expiry: %v", tok)
			}
			return
		}
		if provider.Classify(err).Reason == "" {
			t.Fatalf("unclassified error %v", err)
		}
		pt.NoLeak(t, err.Error(), token)
	})
}

// TestSample runs the documented sample, unchanged but for the host.
func TestSample(t *testing.T) {
	sim := pt.StartSim(t, vendorsim.Options{BoldBIEmbedSecret: embedSecret})
	spec, reqSpec := pt.Sample(t, "embedtokens_v1alpha1_embedprovider_boldbi.yaml")
	spec.BoldBI.ServerURL = pt.Rebase(t, spec.BoldBI.ServerURL, sim.URL())
	req := pt.Request(t, pt.Creds{"boldbi-credentials/embedSecret": embedSecret}, 0)
	req.Config, req.Params = &spec, &reqSpec.VendorParams
	tok, err := boldbi.New().Issue(context.Background(), req)
	pt.CheckError(t, err, pt.Want{}, embedSecret)
	if sim.Validate(tok.Value) != vendorsim.ValidityValid {
		t.Fatalf("token %v is not valid in the simulator", tok)
	}
	body := sim.Calls()[0].Body
	filters, _ := body["datasourcefilters"].([]any)
	params, _ := body["dashboardparameters"].([]any)
	if d, _ := body["dashboard"].(map[string]any); d["id"] != reqSpec.BoldBI.DashboardID || len(filters) != 1 ||
		len(params) != 1 || !reflect.DeepEqual(params[0].(map[string]any)["value"], []any{1001.0, 1002.0}) {
		t.Errorf("body = %v", body)
	}
}

// TestIssueBoldBICloud issues a token with Bold BI Cloud's empty site
// identifier: the path keeps its empty segment and the body says "".
func TestIssueBoldBICloud(t *testing.T) {
	sim := pt.StartSim(t, vendorsim.Options{BoldBIEmbedSecret: embedSecret})
	req := request(t, sim.URL()+vendorsim.BoldBIServerPath, &v1alpha1.BoldBIParams{Email: "a@example.com"}, 0)
	req.Config.BoldBI.SiteIdentifier = ""
	tok, err := boldbi.New().Issue(context.Background(), req)
	pt.CheckError(t, err, pt.Want{}, embedSecret)
	call := sim.Calls()[0]
	if sim.Validate(tok.Value) != vendorsim.ValidityValid || call.Path != "/bi/api//embed/authorize" || call.Body["siteidentifier"] != "" {
		t.Fatalf("token %v, call %s %v", tok, call.Path, call.Body)
	}
}

// TestValuesAreSentAsWritten checks the wire: numbers keep their literal
// form, booleans stay booleans, strings stay strings.
func TestValuesAreSentAsWritten(t *testing.T) {
	var sent string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		sent = string(raw)
		_, _ = w.Write([]byte(`{"ApiStatus":true,"Data":{"access_token":"opaque","expires_in":60}}`))
	}))
	defer srv.Close()
	params := &v1alpha1.BoldBIParams{Email: "a@example.com", DashboardParameters: []v1alpha1.NameValue{
		{Name: "CustomerId", Value: value(`[1001, 1002, 12345678901234567890]`), Operator: "NOT IN"},
		{Name: "Ratio", Value: value(`0.5`)}, {Name: "Active", Value: value(`false`)}, {Name: "Region", Value: value(`"EU"`)}}}
	_, err := boldbi.New().Issue(context.Background(), request(t, srv.URL+"/bi", params, 0))
	pt.CheckError(t, err, pt.Want{}, embedSecret)
	want := `"dashboardparameters":[{"name":"CustomerId","value":[1001,1002,12345678901234567890],"operator":"NOT IN"},` +
		`{"name":"Ratio","value":0.5},{"name":"Active","value":false},{"name":"Region","value":"EU"}]`
	if !strings.Contains(sent, want) {
		t.Errorf("sent %s\nwant it to hold %s", sent, want)
	}
}
