package qrvey_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/qrvey"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

const apiKey = "qrvey-api-key-7f3c9a1e"

var epoch = pt.Epoch

// request builds an Issue request for the Qrvey instance at url. The API key
// is stored with surrounding blanks and a trailing newline, as `kubectl
// create secret --from-file` often leaves it, so every success also proves
// the key is trimmed.
func request(t *testing.T, url string, params v1alpha1.QrveyParams, timeout time.Duration) provider.Request {
	t.Helper()
	req := pt.Request(t, pt.Creds{"qrvey/apiKey": " \t" + apiKey + "\n"}, timeout)
	req.Config.Qrvey = &v1alpha1.QrveyProvider{URL: url, APIKeySecretRef: pt.Ref("qrvey/apiKey")}
	req.Params.Qrvey = &params
	return req
}

func raw(s string) *apiextensionsv1.JSON { return &apiextensionsv1.JSON{Raw: []byte(s)} }

func alice() v1alpha1.QrveyParams { return v1alpha1.QrveyParams{UserID: "alice", AppID: "app-123"} }

func TestIssueAgainstSimulator(t *testing.T) {
	full := alice()
	full.ClientID = "client-9"
	full.Permissions = raw(`[{"dataset_id":"d1","record_permissions":[{"security_name":"region","values":["EU"]}]}]`)
	full.Extra = raw(`{"orgId":"org-1","dashboardId":"dash-7","pageSize":25,"theme":{"mode":"dark"}}`)
	withExtra := func(extra string) v1alpha1.QrveyParams {
		p := alice()
		p.Extra = raw(extra)
		return p
	}
	tests := []struct {
		name     string
		opts     vendorsim.Options
		fault    *vendorsim.Fault
		params   v1alpha1.QrveyParams
		lifetime time.Duration
		timeout  time.Duration
		want     pt.Want
		// wantBody, when set, is exactly the JSON body the simulator must receive.
		wantBody map[string]any
		// noCall means the request is refused before the vendor is called.
		noCall bool
		// quoted are parts of the vendor's answer no message may repeat.
		quoted []string
	}{
		{name: "a token is issued for the requested lifetime with every field sent as given",
			params: full, lifetime: time.Hour,
			wantBody: map[string]any{
				"userid": "alice", "appid": "app-123", "clientid": "client-9", "expiresIn": "60m",
				"permissions": []any{map[string]any{"dataset_id": "d1", "record_permissions": []any{
					map[string]any{"security_name": "region", "values": []any{"EU"}}}}},
				"orgId": "org-1", "dashboardId": "dash-7", "pageSize": float64(25), "theme": map[string]any{"mode": "dark"},
			}},
		{name: "a lifetime of 90 seconds is sent in seconds and unset fields are left out",
			params: alice(), lifetime: 90 * time.Second,
			wantBody: map[string]any{"userid": "alice", "appid": "app-123", "expiresIn": "90s"}},
		{name: "a fractional lifetime is sent rounded up but recorded as requested",
			params: alice(), lifetime: 1500 * time.Millisecond,
			wantBody: map[string]any{"userid": "alice", "appid": "app-123", "expiresIn": "2s"}},
		{name: "extra setting a reserved field is refused before any call",
			params: withExtra(`{"orgId":"org-1","expiresIn":"52w"}`), noCall: true,
			want: pt.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true, Message: `must not set "expiresIn"`}},
		{name: "extra that is a list is refused before any call",
			params: withExtra(`["orgId"]`), noCall: true,
			want: pt.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true, Message: "must be a JSON object"}},
		{name: "extra that is null is refused before any call",
			params: withExtra(`null`), noCall: true,
			want: pt.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true, Message: "must be a JSON object"}},
		{name: "a wrong API key is a permanent authorization failure",
			opts: vendorsim.Options{QrveyAPIKey: "another-api-key"}, params: alice(),
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "HTTP 401"}},
		{name: "429 with Retry-After is transient and carries the delay",
			fault: &vendorsim.Fault{Status: http.StatusTooManyRequests, RetryAfter: 7 * time.Second}, params: alice(),
			want: pt.Want{Reason: v1alpha1.ReasonVendorQuotaExceeded, RetryAfter: 7 * time.Second, Message: "HTTP 429"}},
		{name: "500 is transient",
			fault: &vendorsim.Fault{Status: http.StatusInternalServerError}, params: alice(),
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "HTTP 500: simulated fault"}},
		{name: "503 is transient",
			fault: &vendorsim.Fault{Status: http.StatusServiceUnavailable}, params: alice(),
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "HTTP 503"}},
		{name: "404 is a permanent rejection",
			fault: &vendorsim.Fault{Status: http.StatusNotFound}, params: alice(),
			want: pt.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "HTTP 404"}},
		{name: "an HTML page is described without being quoted",
			fault: &vendorsim.Fault{Garbage: true}, params: alice(), quoted: []string{"<", "Maintenance", "right back"},
			want: pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "an HTML or XML document"}},
		{name: "an empty token is an invalid response",
			fault: &vendorsim.Fault{EmptyToken: true}, params: alice(),
			want: pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "qrvey response has no token"}},
		{name: "a vendor slower than the client timeout is unavailable",
			fault: &vendorsim.Fault{Delay: 2 * time.Second}, timeout: 200 * time.Millisecond, params: alice(),
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "did not answer within 200ms"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.QrveyAPIKey == "" {
				tc.opts.QrveyAPIKey = apiKey
			}
			sim := pt.StartSim(t, tc.opts)
			if tc.fault != nil {
				sim.SetFault(*tc.fault)
			}
			req := request(t, sim.URL(), tc.params, tc.timeout)
			if tc.lifetime != 0 {
				req.Lifetime = tc.lifetime
			}
			tok, err := qrvey.New().Issue(context.Background(), req)

			calls := sim.Calls()
			secrets := append([]string{apiKey, tok.Value}, tc.quoted...)
			for _, c := range calls {
				secrets = append(secrets, c.Token)
			}
			pt.CheckError(t, err, tc.want, secrets...)
			if tc.noCall && len(calls) != 0 {
				t.Fatalf("vendor called %d times, want none", len(calls))
			}
			if !tc.noCall && len(calls) != 1 {
				t.Fatalf("vendor called %d times, want once", len(calls))
			}
			if tc.wantBody != nil && !reflect.DeepEqual(calls[0].Body, tc.wantBody) {
				t.Errorf("request body = %v\nwant %v", calls[0].Body, tc.wantBody)
			}
			if err != nil {
				return
			}
			if tok.Value != calls[0].Token || sim.Validate(tok.Value) != vendorsim.ValidityValid {
				t.Fatalf("token %v is not the one the simulator issued, or not valid there", tok)
			}
			if !tok.IssuedAt.Equal(epoch) || !tok.ExpiresAt.Equal(epoch.Add(req.Lifetime)) {
				t.Errorf("token = %v issued %v, want issued %v expiring %v", tok, tok.IssuedAt, epoch, epoch.Add(req.Lifetime))
			}
		})
	}
}

// TestIssueRefusedBeforeTheCall covers requests that must fail without
// reaching the vendor.
func TestIssueRefusedBeforeTheCall(t *testing.T) {
	sentinel := provider.Transient(v1alpha1.ReasonCredentialsNotFound, "credential Secret qrvey has no key %q", "apiKey")
	tests := []struct {
		name   string
		mutate func(req *provider.Request)
		want   pt.Want
		// same, when set, is the exact error Issue must return.
		same error
	}{
		{name: "a missing API key passes the reader's error through",
			mutate: func(req *provider.Request) { req.Credentials = failingReader{sentinel} },
			same:   sentinel, want: pt.Want{Reason: v1alpha1.ReasonCredentialsNotFound, Message: `has no key "apiKey"`}},
		{name: "a provider without a qrvey block is a vendor mismatch",
			mutate: func(req *provider.Request) { req.Config.Qrvey = nil },
			want:   pt.Want{Reason: v1alpha1.ReasonVendorMismatch, Permanent: true}},
		{name: "a request without qrvey parameters is a vendor mismatch",
			mutate: func(req *provider.Request) { req.Params.Qrvey = nil },
			want:   pt.Want{Reason: v1alpha1.ReasonVendorMismatch, Permanent: true}},
		{name: "an unparseable URL is an invalid provider",
			mutate: func(req *provider.Request) { req.Config.Qrvey.URL = "http://[::1" },
			want:   pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true}},
		{name: "permissions that are not JSON are refused",
			mutate: func(req *provider.Request) { req.Params.Qrvey.Permissions = raw(`[{"dataset_id":`) },
			want:   pt.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true, Message: "spec.qrvey.permissions"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sim := pt.StartSim(t, vendorsim.Options{QrveyAPIKey: apiKey})
			req := request(t, sim.URL(), alice(), 0)
			tc.mutate(&req)
			_, err := qrvey.New().Issue(context.Background(), req)
			pt.CheckError(t, err, tc.want, apiKey)
			if tc.same != nil && err != tc.same { //nolint:errorlint // the very error must pass through
				t.Errorf("error = %v, want the reader's own error", err)
			}
			if n := sim.CallCount(); n != 0 {
				t.Errorf("vendor called %d times, want none", n)
			}
		})
	}
}

// failingReader is a CredentialReader whose every read fails with err.
type failingReader struct{ err error }

func (r failingReader) Read(context.Context, v1alpha1.SecretKeySelector) ([]byte, error) {
	return nil, r.err
}

func (r failingReader) ServiceAccountToken(context.Context, v1alpha1.ServiceAccountReference, string) (string, error) {
	return "", r.err
}

// TestIssueOddAnswers covers what the simulator cannot do, over a real HTTP
// round trip: checks of the raw request and vendor answers of other shapes.
func TestIssueOddAnswers(t *testing.T) {
	tests := []struct {
		name   string
		params v1alpha1.QrveyParams
		status int
		body   string
		want   pt.Want
		// check inspects the raw request the vendor received.
		check func(t *testing.T, r *http.Request, body []byte)
	}{
		{name: "the API key is sent trimmed of whitespace and newline, with JSON headers",
			params: alice(), status: 200, body: `{"token":"qrv_odd-token-1"}`,
			check: func(t *testing.T, r *http.Request, _ []byte) {
				if got := r.Header.Get("x-api-key"); got != apiKey {
					t.Errorf("x-api-key = %q, want the trimmed key", got)
				}
				if r.Method != http.MethodPost || r.URL.Path != qrvey.TokenPath ||
					r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Accept") != "application/json" {
					t.Errorf("request = %s %s with headers %v", r.Method, r.URL.Path, r.Header)
				}
			}},
		{name: "large numbers in extra are sent digit for digit",
			params: func() v1alpha1.QrveyParams {
				p := alice()
				p.Extra = raw(`{"orgId":12345678901234567890,"ratio":0.1}`)
				return p
			}(), status: 200, body: `{"token":"qrv_odd-token-2"}`,
			check: func(t *testing.T, _ *http.Request, body []byte) {
				if !strings.Contains(string(body), `"orgId":12345678901234567890`) || !strings.Contains(string(body), `"ratio":0.1`) {
					t.Errorf("body = %s, want the numbers of extra as written", body)
				}
			}},
		{name: "answer fields besides the token are ignored",
			params: alice(), status: 200, body: `{"token":"qrv_odd-token-3","expiresIn":"1d","user":{"id":"alice"}}`},
		{name: "a token that is not a string is an invalid response",
			params: alice(), status: 200, body: `{"token":12}`,
			want: pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "JSON of another shape"}},
		{name: "a vendor echoing the API key in its error has it redacted",
			params: alice(), status: 400, body: `{"statusCode":400,"message":"x-api-key ` + apiKey + ` is disabled"}`,
			want: pt.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "x-api-key [redacted] is disabled"}},
		{name: "a message nested in an error object is reported",
			params: alice(), status: 403, body: `{"error":{"message":"app-123 is not shared with alice"}}`,
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "HTTP 403: app-123 is not shared with alice"}},
		{name: "a long multi-line vendor message is cut to one short valid line",
			params: alice(), status: 500, body: `{"message":"upstream failed\nretry later ` + strings.Repeat("é", 300) + `"}`,
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "HTTP 500: upstream failed retry later é"}},
		{name: "an error body that is not JSON is not quoted",
			params: alice(), status: 502, body: `<html><body>Bad Gateway ` + apiKey + `</body></html>`,
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "vendor answered HTTP 502"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu    sync.Mutex
				got   *http.Request
				sent  []byte
				calls int
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				got, sent, calls = r, b, calls+1
				mu.Unlock()
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			tok, err := qrvey.New().Issue(context.Background(), request(t, srv.URL+"/", tc.params, 0))
			pt.CheckError(t, err, tc.want, apiKey, "Bad Gateway")
			if err != nil {
				if msg := err.Error(); !utf8.ValidString(msg) || strings.ContainsAny(msg, "\n\r") || utf8.RuneCountInString(msg) > 300 {
					t.Errorf("message is not one short valid line: %q", msg)
				}
			} else if !strings.HasPrefix(tok.Value, "qrv_odd-token-") || !tok.ExpiresAt.Equal(epoch.Add(time.Hour)) {
				t.Errorf("token = %v", tok)
			}
			mu.Lock()
			defer mu.Unlock()
			if calls != 1 {
				t.Fatalf("vendor called %d times, want once", calls)
			}
			if tc.check != nil {
				tc.check(t, got, sent)
			}
		})
	}
}

// TestDocumentedSampleIssuesAToken runs config/samples' Qrvey provider and
// request against the simulator, so the documented configuration works.
func TestDocumentedSampleIssuesAToken(t *testing.T) {
	prov, _ := pt.Sample(t, "embedtokens_v1alpha1_embedprovider_qrvey.yaml")
	_, spec := pt.Sample(t, "embedtokens_v1alpha1_embedtokenrequest_qrvey.yaml")
	if prov.Qrvey == nil || spec.Qrvey == nil || spec.Lifetime == nil {
		t.Fatalf("samples lack a qrvey block or lifetime: %+v %+v", prov, spec)
	}
	sim := pt.StartSim(t, vendorsim.Options{QrveyAPIKey: apiKey})
	req := pt.Request(t, pt.Creds{prov.Qrvey.APIKeySecretRef.Name + "/" + prov.Qrvey.APIKeySecretRef.Key: apiKey}, 0)
	prov.Qrvey.URL = pt.Rebase(t, prov.Qrvey.URL, sim.URL())
	req.Config, req.Params, req.Lifetime = &prov, &spec.VendorParams, spec.Lifetime.Duration
	tok, err := qrvey.New().Issue(context.Background(), req)
	pt.CheckError(t, err, pt.Want{}, apiKey)
	if sim.Validate(tok.Value) != vendorsim.ValidityValid || !tok.ExpiresAt.Equal(epoch.Add(time.Hour)) {
		t.Errorf("token = %v, want a valid one for an hour", tok)
	}
}

func TestFormatExpiresIn(t *testing.T) {
	tests := []struct {
		name string
		in   time.Duration
		want string
	}{
		{"one hour is written in minutes", time.Hour, "60m"},
		{"ten minutes stay in minutes", 10 * time.Minute, "10m"},
		{"a day is written in minutes", 24 * time.Hour, "1440m"},
		{"90 seconds are not whole minutes", 90 * time.Second, "90s"},
		{"61 seconds stay in seconds", 61 * time.Second, "61s"},
		{"1.5 seconds round up", 1500 * time.Millisecond, "2s"},
		{"a minute and a millisecond round up to seconds", time.Minute + time.Millisecond, "61s"},
		{"half a second is at least one second", 500 * time.Millisecond, "1s"},
		{"zero is at least one second", 0, "1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := qrvey.FormatExpiresIn(tc.in); got != tc.want {
				t.Errorf("FormatExpiresIn(%v) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

const parsedToken = "qrv_parse-me-0123456789abcdef"

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name string
		body string
		want pt.Want
	}{
		{"the token of a well-formed answer", `{"token":"` + parsedToken + `"}`, pt.Want{}},
		{"the token among other fields", `{"status":"ok","token":"` + parsedToken + `","expiresIn":"60m"}`, pt.Want{}},
		{"an empty token", `{"token":""}`, pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "no token"}},
		{"a null token", `{"token":null}`, pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "no token"}},
		{"no token field", `{"tokens":["` + parsedToken + `"]}`, pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "no token"}},
		{"a token that is a number", `{"token":42}`, pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "JSON of another shape"}},
		{"a list holding the token", `["` + parsedToken + `"]`, pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "JSON of another shape"}},
		{"truncated JSON holding the token", `{"token":"` + parsedToken, pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "JSON of another shape"}},
		{"an HTML page holding the token", `<html><body>` + parsedToken + `</body></html>`, pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "HTML"}},
		{"plain text that is the token", parsedToken, pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "text, 29 bytes"}},
		{"an empty body", ``, pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "empty body"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := qrvey.ParseResponse([]byte(tc.body))
			pt.CheckError(t, err, tc.want, parsedToken)
			if err == nil && tok != parsedToken {
				t.Errorf("token = %q, want %q", tok, parsedToken)
			}
		})
	}
}

// parseErrorRE is every message ParseResponse may give: a closed vocabulary
// and a byte count, so no part of a body (and no token in it) can leak.
var parseErrorRE = regexp.MustCompile(`^(qrvey response has no token|vendor response is not the expected JSON \((empty body|(text|binary data|an HTML or XML document|JSON of another shape), [0-9]+ bytes)\))$`)

func FuzzQrveyResponse(f *testing.F) {
	for _, seed := range []string{
		`{"token":"` + parsedToken + `"}`,
		`{"token":"qrv_AbC-_123","expiresIn":"60m","user":{"id":"alice"}}`,
		`{"TOKEN":"upper-case-key"}`,
		`{"token":"first","token":""}`,
		`{"token":"\u00e9t\u00e9\n"}`,
		`{"token":""}`, `{"token":null}`, `{"token":42}`, `{"token":["a"]}`,
		`{"statusCode":401,"message":"invalid or missing x-api-key"}`,
		`<!DOCTYPE html><html><body>We'll be right back</body></html>`,
		`{"token":"` + parsedToken, "\x00\x01\x02binary", ``, ` `, `null`, `[]`, `"token"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, err := qrvey.ParseResponse(body)
		var probe struct {
			Token string `json:"token"`
		}
		decoded := json.Unmarshal(body, &probe) == nil
		if err == nil {
			if tok == "" || !decoded || tok != probe.Token {
				t.Fatalf("ParseResponse(%q) = %q, want the body's own non-empty token", body, tok)
			}
			return
		}
		if decoded && probe.Token != "" {
			t.Fatalf("ParseResponse(%q) failed although the body holds a token: %v", body, err)
		}
		e := provider.Classify(err)
		if e.Reason != v1alpha1.ReasonInvalidResponse || e.Permanent || !parseErrorRE.MatchString(err.Error()) {
			t.Fatalf("ParseResponse(%q) error %q (reason %s, permanent %v) is outside the closed vocabulary",
				body, err, e.Reason, e.Permanent)
		}
	})
}
