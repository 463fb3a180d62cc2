package superset_test

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/superset"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// TestWireFormat checks each of the three calls field by field as Superset
// receives them.
func TestWireFormat(t *testing.T) {
	w := newWire(t, vendorsim.Options{})
	p := params()
	p.RLS = append(p.RLS, v1alpha1.SupersetRLSRule{Clause: "region = 'EU'", Dataset: ptrTo[int64](42)},
		v1alpha1.SupersetRLSRule{Clause: "year > 2020", Dataset: ptrTo[int64](7)})
	tok, err := superset.New().Issue(context.Background(), request(t, w.url, p))
	pt.CheckError(t, err, pt.Want{}, password)

	logins, csrfs, guests := w.to(superset.LoginPath), w.to(superset.CSRFPath), w.to(superset.GuestTokenPath)
	if len(logins) != 1 || len(csrfs) != 1 || len(guests) != 1 {
		t.Fatalf("calls: %d logins, %d CSRF, %d guest", len(logins), len(csrfs), len(guests))
	}
	login := logins[0]
	wantLogin := map[string]any{"username": vendorsim.DefaultSupersetUsername, "password": password, "provider": "db", "refresh": true}
	if login.method != http.MethodPost || !reflect.DeepEqual(login.body, wantLogin) ||
		login.header.Get("Content-Type") != "application/json" || login.header.Get("Authorization") != "" {
		t.Errorf("login = %s %v %v", login.method, login.body, login.header)
	}
	access, _ := w.sim.Calls()[0].Body["password"].(string)
	if access != password {
		t.Fatalf("the simulator logged %q", access)
	}

	csrf := csrfs[0]
	bearer := csrf.header.Get("Authorization")
	if csrf.method != http.MethodGet || !strings.HasPrefix(bearer, "Bearer ey") || csrf.header.Get("Cookie") != "" || csrf.header.Get("X-CSRFToken") != "" {
		t.Errorf("csrf = %s %v", csrf.method, csrf.header)
	}

	guest := guests[0]
	cookie, err := http.ParseCookie(guest.header.Get("Cookie"))
	if err != nil || len(cookie) != 1 || cookie[0].Name != vendorsim.SupersetSessionCookie || cookie[0].Value == "" {
		t.Errorf("guest Cookie = %q", guest.header.Get("Cookie"))
	}
	if guest.method != http.MethodPost || guest.header.Get("Authorization") != bearer || guest.header.Get("X-CSRFToken") == "" ||
		guest.header.Get("Referer") != w.url+"/" || guest.header.Get("Content-Type") != "application/json" {
		t.Errorf("guest headers = %v", guest.header)
	}
	wantGuest := map[string]any{
		"user":      map[string]any{"username": "guest-alice", "first_name": "Alice", "last_name": "Liddell"},
		"resources": []any{map[string]any{"type": "dashboard", "id": "7b3e-dash"}},
		"rls": []any{map[string]any{"clause": "tenant_id = 'acme'"}, map[string]any{"clause": "region = 'EU'", "dataset": 42.0},
			map[string]any{"clause": "year > 2020", "dataset": 7.0}},
	}
	if !reflect.DeepEqual(guest.body, wantGuest) {
		t.Errorf("guest body = %v\nwant %v", guest.body, wantGuest)
	}

	if w.sim.Validate(tok.Value) != vendorsim.ValidityValid {
		t.Errorf("the simulator does not know the token")
	}
	pt.CheckWindow(t, tok, vendorsim.DefaultSupersetGuestTokenLifetime)
}

// TestWireFormatDefaults leaves out what may be left out: the names, the
// resource type, the rules (rls is still sent) and the auth provider.
func TestWireFormatDefaults(t *testing.T) {
	w := newWire(t, vendorsim.Options{})
	req := request(t, w.url, &v1alpha1.SupersetParams{User: v1alpha1.SupersetGuestUser{Username: "g"},
		Resources: []v1alpha1.SupersetResource{{ID: "d"}}})
	req.Config.Superset.Provider = ""
	_, err := superset.New().Issue(context.Background(), req)
	pt.CheckError(t, err, pt.Want{}, password)
	want := map[string]any{"user": map[string]any{"username": "g"}, "resources": []any{map[string]any{"type": "dashboard", "id": "d"}}, "rls": []any{}}
	if got := w.to(superset.GuestTokenPath)[0].body; !reflect.DeepEqual(got, want) {
		t.Errorf("guest body = %v, want %v", got, want)
	}
	if got := w.to(superset.LoginPath)[0].body["provider"]; got != superset.DefaultAuthProvider {
		t.Errorf("login provider = %v", got)
	}
}

// TestExpiryIsTheGuestTokensExp: Superset decides the lifetime, whatever
// the request asks for.
func TestExpiryIsTheGuestTokensExp(t *testing.T) {
	w := newWire(t, vendorsim.Options{Superset: vendorsim.SupersetOptions{GuestTokenLifetime: 90 * time.Minute}})
	req := request(t, w.url, params())
	req.Lifetime = 10 * time.Minute
	tok, err := superset.New().Issue(context.Background(), req)
	pt.CheckError(t, err, pt.Want{})
	pt.CheckWindow(t, tok, 90*time.Minute)
}

func TestIssueErrors(t *testing.T) {
	tests := []struct {
		name    string
		opts    vendorsim.Options
		fault   *vendorsim.Fault
		edit    func(*provider.Request)
		timeout time.Duration
		want    pt.Want
	}{
		{name: "wrong password", edit: func(r *provider.Request) { r.Credentials = pt.Creds{"superset/password": "wrong"} },
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "Superset login: vendor answered HTTP 401: Not authorized"}},
		{name: "unknown user", edit: func(r *provider.Request) { r.Config.Superset.Username = "nobody" },
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "Superset login"}},
		{name: "503", fault: &vendorsim.Fault{Status: 503}, want: pt.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "simulated fault"}},
		{name: "429 with Retry-After", fault: &vendorsim.Fault{Status: 429, RetryAfter: 7 * time.Second},
			want: pt.Want{Reason: v1alpha1.ReasonVendorQuotaExceeded, RetryAfter: 7 * time.Second}},
		{name: "HTML page", fault: &vendorsim.Fault{Garbage: true}, want: pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "Superset login: vendor response is not the expected JSON (an HTML"}},
		{name: "empty access token", fault: &vendorsim.Fault{EmptyToken: true, Count: 1}, want: pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "no access_token"}},
		{name: "timeout", fault: &vendorsim.Fault{Delay: time.Hour}, timeout: 100 * time.Millisecond,
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "did not answer"}},
		{name: "no resources", edit: func(r *provider.Request) { r.Params.Superset.Resources = nil },
			want: pt.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true, Message: "resources"}},
		{name: "chart resource", edit: func(r *provider.Request) { r.Params.Superset.Resources[0].Type = "chart" },
			want: pt.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true, Message: "resources[0]"}},
		{name: "dataset not positive", edit: func(r *provider.Request) { r.Params.Superset.RLS[0].Dataset = ptrTo[int64](0) },
			want: pt.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true, Message: "rls[0].dataset"}},
		{name: "no username", edit: func(r *provider.Request) { r.Params.Superset.User.Username = "" },
			want: pt.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true, Message: "username"}},
		{name: "no password", edit: func(r *provider.Request) { r.Credentials = pt.Creds{} },
			want: pt.Want{Reason: v1alpha1.ReasonCredentialsNotFound}},
		{name: "request of another vendor", edit: func(r *provider.Request) { r.Params.Superset = nil },
			want: pt.Want{Reason: v1alpha1.ReasonVendorMismatch, Permanent: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWire(t, tc.opts)
			if tc.fault != nil {
				w.sim.SetFault(*tc.fault)
			}
			req := request(t, w.url, params())
			if tc.timeout > 0 {
				req.HTTPClient.Timeout = tc.timeout
			}
			if tc.edit != nil {
				tc.edit(&req)
			}
			tok, err := superset.New().Issue(context.Background(), req)
			pt.CheckError(t, err, tc.want, password, "wrong")
			if tok.Value != "" {
				t.Errorf("a failed call returned a token")
			}
		})
	}
}

// TestVendorAnswers covers answers the simulator does not give, from a
// fake Superset.
func TestVendorAnswers(t *testing.T) {
	access := pt.JWTWithExp(t, pt.Epoch.Add(time.Hour))
	loginOK := answer{status: 200, body: `{"access_token":"` + access + `"}`}
	csrfOK := answer{status: 200, body: `{"result":"csrf-value-123"}`, header: http.Header{"Set-Cookie": {"session=sess-value-456; Path=/; HttpOnly"}}}
	guestToken := pt.JWTWithExp(t, pt.Epoch.Add(5*time.Minute))
	tests := []struct {
		name    string
		answers map[string]answer
		want    pt.Want
	}{
		{"validation errors", map[string]answer{superset.LoginPath: loginOK, superset.CSRFPath: csrfOK, superset.GuestTokenPath: {status: 400,
			body: `{"message":{"rls":{"0":{"clause":["Missing data for required field."]}},"resources":["Not a list."]}}`}},
			pt.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true,
				Message: "Superset guest token: vendor answered HTTP 400: resources: Not a list.; rls.0.clause: Missing data for required field."}},
		{"errors list", map[string]answer{superset.LoginPath: loginOK, superset.CSRFPath: csrfOK, superset.GuestTokenPath: {status: 403,
			body: `{"errors":[{"message":"Forbidden: can_grant_guest_token","error_type":"GENERIC_BACKEND_ERROR"}]}`}},
			pt.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "Superset guest token: vendor answered HTTP 403: Forbidden: can_grant_guest_token"}},
		{"CSRF refused", map[string]answer{superset.LoginPath: loginOK, superset.CSRFPath: {status: 500, body: `{"message":"Fatal error"}`}},
			pt.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "Superset CSRF token: vendor answered HTTP 500: Fatal error"}},
		{"CSRF answer without result", map[string]answer{superset.LoginPath: loginOK, superset.CSRFPath: {status: 200, body: `{}`}},
			pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "no result"}},
		{"guest token without exp", map[string]answer{superset.LoginPath: loginOK, superset.CSRFPath: csrfOK,
			superset.GuestTokenPath: {status: 200, body: `{"token":"opaque-guest-token"}`}},
			pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "expiry is unknown"}},
		{"guest answer without token", map[string]answer{superset.LoginPath: loginOK, superset.CSRFPath: csrfOK,
			superset.GuestTokenPath: {status: 200, body: `{"result":"x"}`}},
			pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "no token"}},
		{"no cookie is still tried", map[string]answer{superset.LoginPath: loginOK, superset.CSRFPath: {status: 200, body: `{"result":"c"}`},
			superset.GuestTokenPath: {status: 200, body: `{"token":"` + guestToken + `"}`}}, pt.Want{}},
		{"a short cookie value is not redacted", map[string]answer{superset.LoginPath: loginOK,
			superset.CSRFPath:       {status: 200, body: `{"result":"csrf-value-123"}`, header: http.Header{"Set-Cookie": {"session=sess-value-456", "lang=en"}}},
			superset.GuestTokenPath: {status: 400, body: `{"message":"embedding is not enabled"}`}},
			pt.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "HTTP 400: embedding is not enabled"}},
		{"login answer with msg", map[string]answer{superset.LoginPath: {status: 401, body: `{"msg":"Bad credentials"}`}},
			pt.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "Superset login: vendor answered HTTP 401: Bad credentials"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := serve(t, tc.answers)
			tok, err := superset.New().Issue(context.Background(), request(t, url, params()))
			pt.CheckError(t, err, tc.want, password, access, "csrf-value-123", "sess-value-456", "opaque-guest-token")
			if err == nil && tok.Value != guestToken {
				t.Errorf("token = %v", tok)
			}
		})
	}
}

func TestSecretRefs(t *testing.T) {
	spec := &v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{Superset: &v1alpha1.SupersetProvider{PasswordSecretRef: pt.Ref("s/k")}}}
	if got := superset.New().SecretRefs(spec); len(got) != 1 || got[0] != pt.Ref("s/k") {
		t.Errorf("SecretRefs = %v", got)
	}
}

func TestErrorDetail(t *testing.T) {
	for body, want := range map[string]string{
		`{"message":"Not authorized"}`:                                    "Not authorized",
		`{"message":["Guest token validation failed"]}`:                   "Guest token validation failed",
		`{"message":["one","two","three","four","five"]}`:                 "one; two; three; four",
		`{"message":{"user":{"username":["Not a valid string."]}}}`:       "user.username: Not a valid string.",
		`{"errors":[{"message":""},{"message":"second"}]}`:                "second",
		`{"msg":"Token has expired"}`:                                     "Token has expired",
		`{"message":{"a":["1"],"b":["2"],"c":["3"],"d":["4"],"e":["5"]}}`: "a: 1; b: 2; c: 3; d: 4",
		`<html>`:                  "",
		`{"message":42}`:          "",
		`{"message":[]}`:          "",
		`{"message":[7]}`:         "",
		`{"message":"a\u0000b"}`:  "a b",
		`{"errors":"not a list"}`: "",
	} {
		if got := superset.ErrorDetail([]byte(body)); got != want {
			t.Errorf("ErrorDetail(%s) = %q, want %q", body, got, want)
		}
	}
}

func FuzzParseGuest(f *testing.F) {
	f.Add(200, []byte(`{"token":"`), []byte(`"}`))
	f.Add(400, []byte(`{"message":{"rls":["`), []byte(`"]}}`))
	f.Add(403, []byte(`{"errors":[{"message":"`), []byte(`"}]}`))
	f.Add(401, []byte(`{"msg":"`), []byte(`"}`))
	f.Add(400, []byte(`{"message":["`), []byte(`"]}`))
	pt.FuzzParser(f, func(r *provider.Response) (provider.Token, error) { return superset.ParseGuest(r, pt.Epoch) }, func(body []byte) string {
		return superset.ErrorDetail(body)
	})
}

func ptrTo[T any](v T) *T { return &v }

// TestSample runs the documented sample, unchanged but for the host.
func TestSample(t *testing.T) {
	spec, reqSpec := pt.Sample(t, "embedtokens_v1alpha1_embedprovider_superset.yaml")
	w := newWire(t, vendorsim.Options{Superset: vendorsim.SupersetOptions{Username: spec.Superset.Username}})
	spec.Superset.URL = pt.Rebase(t, spec.Superset.URL, w.url)
	req := pt.Request(t, pt.Creds{"superset-credentials/password": password}, 0)
	req.Config, req.Params = &spec, &reqSpec.VendorParams
	tok, err := superset.New().Issue(context.Background(), req)
	pt.CheckError(t, err, pt.Want{}, password)
	if w.sim.Validate(tok.Value) != vendorsim.ValidityValid {
		t.Fatalf("token %v is not valid in the simulator", tok)
	}
	rls, _ := w.to(superset.GuestTokenPath)[0].body["rls"].([]any)
	if len(rls) != 2 || rls[1].(map[string]any)["dataset"] != 12.0 {
		t.Errorf("rls = %v", rls)
	}
}
