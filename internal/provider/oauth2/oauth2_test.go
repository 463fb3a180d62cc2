package oauth2_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/oauth2"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// Credentials with characters RFC 6749 section 2.3.1 form-encodes before Basic.
const (
	clientID = "client id:1"
	secret   = "s3cr/t+&=:%value"
)

var creds = providertest.Creds{"oauth/secret": secret, "oauth/wrong": "nope"}

func raw(s string) *apiextensionsv1.JSON { return &apiextensionsv1.JSON{Raw: []byte(s)} }

// answer serves one fixed response, for shapes the simulator never sends.
func answer(status int, body string) func(t *testing.T) string {
	return func(t *testing.T) string { return providertest.Serve(t, status, body) }
}

// jwtWithExp is an access token whose only expiry is its exp claim.
func jwtWithExp(t *testing.T, exp time.Time) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": exp.Unix()}).SignedString([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIssue(t *testing.T) {
	invalid := providertest.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true}
	rejected := func(msg string) providertest.Want {
		return providertest.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: msg}
	}
	unauthorized := providertest.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "invalid_client"}
	invalidResponse := func(msg string) providertest.Want {
		return providertest.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: msg}
	}
	unavailable := providertest.Want{Reason: v1alpha1.ReasonVendorUnavailable}
	tests := []struct {
		name      string
		cfg       v1alpha1.OAuth2Provider // merged over the base provider
		params    v1alpha1.OAuth2Params
		opts      vendorsim.Options
		fault     *vendorsim.Fault
		url       func(t *testing.T) string // instead of the simulator
		timeout   time.Duration
		want      providertest.Want
		wantTTL   time.Duration
		wantBody  map[string]any
		wantNoKey []string
	}{
		{name: "defaults: basic auth, form", wantTTL: time.Hour,
			wantBody: map[string]any{"grant_type": "client_credentials"}, wantNoKey: []string{"client_id", "client_secret", "scope", "audience"}},
		{name: "post auth, form", cfg: v1alpha1.OAuth2Provider{ClientAuthMethod: oauth2.AuthPost}, wantTTL: time.Hour,
			wantBody: map[string]any{"client_id": clientID, "client_secret": secret}},
		{name: "basic auth, json", cfg: v1alpha1.OAuth2Provider{BodyEncoding: oauth2.EncodingJSON}, wantTTL: time.Hour,
			wantBody: map[string]any{"grant_type": "client_credentials"}, wantNoKey: []string{"client_secret"}},
		{name: "post auth, json", cfg: v1alpha1.OAuth2Provider{ClientAuthMethod: oauth2.AuthPost, BodyEncoding: oauth2.EncodingJSON}, wantTTL: time.Hour,
			wantBody: map[string]any{"client_id": clientID, "client_secret": secret}},
		{name: "scopes, audience and extras in a form",
			cfg:    v1alpha1.OAuth2Provider{Scopes: []string{"a", "b"}, Audience: "api", ExtraParameters: raw(`{"resource":"r","n":5,"flag":true,"drop":"x"}`)},
			params: v1alpha1.OAuth2Params{ExtraParameters: raw(`{"n":6.50,"drop":null}`)}, wantTTL: time.Hour,
			wantBody: map[string]any{"scope": "a b", "audience": "api", "resource": "r", "n": "6.50", "flag": "true"}, wantNoKey: []string{"drop"}},
		{name: "request replaces scopes and audience",
			cfg:    v1alpha1.OAuth2Provider{Scopes: []string{"a"}, Audience: "api"},
			params: v1alpha1.OAuth2Params{Scopes: []string{"c", "d"}, Audience: "other"}, wantTTL: time.Hour,
			wantBody: map[string]any{"scope": "c d", "audience": "other"}},
		{name: "nested extras in json", cfg: v1alpha1.OAuth2Provider{BodyEncoding: oauth2.EncodingJSON, ExtraParameters: raw(`{"claims":{"tier":["gold"]}}`)},
			params: v1alpha1.OAuth2Params{ExtraParameters: raw(`{"n":1}`)}, wantTTL: time.Hour,
			wantBody: map[string]any{"claims": map[string]any{"tier": []any{"gold"}}, "n": 1.0}},
		{name: "custom URN grant", cfg: v1alpha1.OAuth2Provider{GrantType: "urn:ietf:params:oauth:grant-type:token-exchange"}, wantTTL: time.Hour,
			wantBody: map[string]any{"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange"}},
		{name: "JWT exp fallback", opts: vendorsim.Options{OAuth2JWTAccessTokens: true}, wantTTL: vendorsim.OAuth2TokenLifetime},
		{name: "expires_in as string", url: answer(200, `{"access_token":"opaque-tok","token_type":"Bearer","expires_in":"120"}`), wantTTL: 2 * time.Minute},

		{name: "nested extras in a form", cfg: v1alpha1.OAuth2Provider{ExtraParameters: raw(`{"claims":{"a":1}}`)}, want: invalid},
		{name: "reserved extra in provider", cfg: v1alpha1.OAuth2Provider{ExtraParameters: raw(`{"scope":"x"}`)}, want: invalid},
		{name: "reserved extra in request", params: v1alpha1.OAuth2Params{ExtraParameters: raw(`{"client_secret":"x"}`)}, want: invalid},
		{name: "extras not an object", params: v1alpha1.OAuth2Params{ExtraParameters: raw(`[1]`)}, want: invalid},
		{name: "wrong secret", cfg: v1alpha1.OAuth2Provider{ClientSecretSecretRef: new(providertest.Ref("oauth/wrong"))}, want: unauthorized},
		{name: "wrong secret in body", cfg: v1alpha1.OAuth2Provider{ClientSecretSecretRef: new(providertest.Ref("oauth/wrong")), ClientAuthMethod: oauth2.AuthPost}, want: unauthorized},
		{name: "unsupported grant", cfg: v1alpha1.OAuth2Provider{GrantType: "password"}, want: rejected("unsupported_grant_type")},
		{name: "invalid scope", opts: vendorsim.Options{OAuth2AllowedScopes: []string{"a"}}, cfg: v1alpha1.OAuth2Provider{Scopes: []string{"a", "admin"}}, want: rejected("invalid_scope: scope admin is not allowed")},
		{name: "invalid_client on a 400", url: answer(400, `{"error":"invalid_client"}`), want: unauthorized},
		{name: "invalid_grant", url: answer(400, `{"error":"invalid_grant","error_description":"assertion expired"}`), want: rejected("HTTP 400: invalid_grant: assertion expired")},
		{name: "error on a 200", url: answer(200, `{"error":"unauthorized_client"}`), want: providertest.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "unauthorized_client"}},
		{name: "unknown error code", url: answer(400, `{"error":"slow_down"}`), want: rejected("slow_down")},
		{name: "secret echoed by vendor", url: answer(401, `{"error":"invalid_client","error_description":"bad secret `+secret+`"}`),
			want: providertest.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "[redacted]"}},
		{name: "403", fault: &vendorsim.Fault{Status: 403}, want: providertest.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "HTTP 403"}},
		{name: "429 with Retry-After", fault: &vendorsim.Fault{Status: 429, RetryAfter: 2 * time.Second},
			want: providertest.Want{Reason: v1alpha1.ReasonVendorQuotaExceeded, RetryAfter: 2 * time.Second, Message: "temporarily_unavailable"}},
		{name: "500", fault: &vendorsim.Fault{Status: 500}, want: unavailable},
		{name: "503", fault: &vendorsim.Fault{Status: 503}, want: unavailable},
		{name: "timeout", fault: &vendorsim.Fault{Delay: time.Minute}, timeout: 100 * time.Millisecond,
			want: providertest.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "did not answer within 100ms"}},
		{name: "HTML", fault: &vendorsim.Fault{Garbage: true}, want: invalidResponse("HTML")},
		{name: "no token", fault: &vendorsim.Fault{EmptyToken: true}, want: invalidResponse("no access_token")},
		{name: "truncated JSON", url: answer(200, `{"access_token":"opaque-tok","expires_in":36`), want: invalidResponse("not the expected JSON")},
		{name: "no expires_in, opaque token", url: answer(200, `{"access_token":"opaque-tok"}`), want: invalidResponse("no expires_in")},
		{name: "bad expires_in", url: answer(200, `{"access_token":"opaque-tok","expires_in":"soon"}`), want: invalidResponse("expires_in")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s *vendorsim.Server
			var url string
			if tc.url != nil {
				url = tc.url(t)
			} else {
				tc.opts.OAuth2ClientID, tc.opts.OAuth2ClientSecret = clientID, secret
				s = providertest.StartSim(t, tc.opts)
				url = s.URL() + vendorsim.OAuth2TokenPath
				if tc.fault != nil {
					s.SetFault(*tc.fault)
				}
			}
			cfg := tc.cfg
			cfg.TokenURL, cfg.ClientID = url, clientID
			if cfg.ClientSecretSecretRef == nil {
				cfg.ClientSecretSecretRef = new(providertest.Ref("oauth/secret"))
			}
			req := providertest.Request(t, creds, tc.timeout)
			req.Config.OAuth2, req.Params.OAuth2 = &cfg, &tc.params
			tok, err := oauth2.New().Issue(context.Background(), req)
			providertest.CheckError(t, err, tc.want, secret, tok.Value, "opaque-tok")
			if err != nil {
				return
			}
			providertest.CheckWindow(t, tok, tc.wantTTL)
			if s != nil {
				checkSimCall(t, s, tok, tc.wantBody, tc.wantNoKey)
			}
		})
	}
}

// checkSimCall asserts the simulator issued tok and what it was sent.
func checkSimCall(t *testing.T, s *vendorsim.Server, tok provider.Token, wantBody map[string]any, noKeys []string) {
	t.Helper()
	if s.Validate(tok.Value) != vendorsim.ValidityValid || tok.Type != "Bearer" {
		t.Errorf("token %v (type %q) not valid at the simulator", tok, tok.Type)
	}
	body := s.Calls()[0].Body
	for k, v := range wantBody {
		if !reflect.DeepEqual(body[k], v) {
			t.Errorf("body[%q] = %#v, want %#v (body %v)", k, body[k], v, body)
		}
	}
	for _, k := range noKeys {
		if _, ok := body[k]; ok {
			t.Errorf("body has %q: %v", k, body)
		}
	}
}

// TestSample runs config/samples against the simulator, so the documented
// manifests are known to work: post auth, a JSON body and nested extras.
func TestSample(t *testing.T) {
	prov, etr := providertest.Sample(t, "embedtokens_v1alpha1_embedprovider_oauth2.yaml")
	s := providertest.StartSim(t, vendorsim.Options{OAuth2ClientID: prov.OAuth2.ClientID, OAuth2ClientSecret: secret})
	prov.OAuth2.TokenURL = s.URL() + vendorsim.OAuth2TokenPath
	req := providertest.Request(t, providertest.Creds{"oauth2-credentials/clientSecret": secret}, 0)
	req.Config, req.Params = &prov, &etr.VendorParams
	tok, err := oauth2.New().Issue(context.Background(), req)
	providertest.CheckError(t, err, providertest.Want{}, secret)
	checkSimCall(t, s, tok, map[string]any{
		"scope": "dashboards:read dashboards:sales", "audience": "https://analytics.example.com/api", "organization": "acme",
		"client_secret": secret, "context": map[string]any{"tenant": "acme", "region": "eu"},
	}, nil)
}

func TestMismatch(t *testing.T) {
	_, err := oauth2.New().Issue(context.Background(), providertest.Request(t, creds, 0))
	providertest.CheckError(t, err, providertest.Want{Reason: v1alpha1.ReasonVendorMismatch, Permanent: true})
}

// TestExpiry covers every way an answer's expiry is learnt: expires_in, the
// token's JWT exp claim, spec.oauth2.expiry, and none of them.
func TestExpiry(t *testing.T) {
	exp := providertest.Epoch.Add(5 * time.Minute)
	token := jwtWithExp(t, exp)
	noExp := jwtWithoutExp(t)
	fifteen := &v1alpha1.ExpiryFallback{Duration: &metav1.Duration{Duration: 15 * time.Minute}}
	fromJWT := &v1alpha1.ExpiryFallback{FromJWT: ptr.To(true)}
	unknown := providertest.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "set spec.oauth2.expiry.duration"}
	tests := []struct {
		name     string
		body     string
		fallback *v1alpha1.ExpiryFallback
		want     time.Time
		err      providertest.Want
	}{
		{"expires_in", `{"access_token":"opaque","expires_in":60}`, nil, providertest.Epoch.Add(time.Minute), providertest.Want{}},
		{"expires_in wins over exp", `{"access_token":"` + token + `","expires_in":60}`, nil, providertest.Epoch.Add(time.Minute), providertest.Want{}},
		{"expires_in wins over the fallback", `{"access_token":"opaque","expires_in":"60"}`, fifteen, providertest.Epoch.Add(time.Minute), providertest.Want{}},
		{"JWT exp", `{"access_token":"` + token + `"}`, nil, exp, providertest.Want{}},
		{"JWT exp, expires_in null", `{"access_token":"` + token + `","expires_in":null}`, nil, exp, providertest.Want{}},
		{"JWT exp wins over the fallback", `{"access_token":"` + token + `"}`, fifteen, exp, providertest.Want{}},
		{"fromJWT stated", `{"access_token":"` + token + `"}`, fromJWT, exp, providertest.Want{}},
		{"opaque token, duration", `{"access_token":"opaque"}`, fifteen, providertest.Epoch.Add(15 * time.Minute), providertest.Want{}},
		{"JWT without exp, duration", `{"access_token":"` + noExp + `"}`, fifteen, providertest.Epoch.Add(15 * time.Minute), providertest.Want{}},
		{"opaque token, no fallback", `{"access_token":"opaque"}`, nil, time.Time{}, unknown},
		{"opaque token, fromJWT", `{"access_token":"opaque"}`, fromJWT, time.Time{}, unknown},
		{"JWT without exp, no fallback", `{"access_token":"` + noExp + `"}`, nil, time.Time{}, unknown},
		{"bad expires_in does not fall back", `{"access_token":"opaque","expires_in":"soon"}`, fifteen, time.Time{},
			providertest.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "expires_in"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			call := oauth2.Call{Config: &v1alpha1.OAuth2Provider{Expiry: tc.fallback}, Field: "spec.oauth2"}
			tok, err := call.ParseResponse(&provider.Response{Status: 200, Body: []byte(tc.body)}, providertest.Epoch)
			providertest.CheckError(t, err, tc.err, "opaque", token, noExp)
			if err == nil && !tok.ExpiresAt.Equal(tc.want) {
				t.Errorf("expiry = %v, want %v", tok.ExpiresAt, tc.want)
			}
		})
	}
}

// TestExpiryFallbackAgainstServer runs the provider against a server that
// answers without expires_in, as RFC 6749 allows, with spec.oauth2.expiry set.
func TestExpiryFallbackAgainstServer(t *testing.T) {
	url := providertest.Serve(t, 200, `{"access_token":"opaque-tok","token_type":"Bearer"}`)
	req := providertest.Request(t, creds, 0)
	req.Config.OAuth2 = &v1alpha1.OAuth2Provider{TokenURL: url, ClientID: clientID, ClientSecretSecretRef: new(providertest.Ref("oauth/secret")),
		Expiry: &v1alpha1.ExpiryFallback{Duration: &metav1.Duration{Duration: 10 * time.Minute}}}
	req.Params.OAuth2 = &v1alpha1.OAuth2Params{}
	tok, err := oauth2.New().Issue(context.Background(), req)
	providertest.CheckError(t, err, providertest.Want{}, secret)
	providertest.CheckWindow(t, tok, 10*time.Minute)
}

// jwtWithoutExp is a JWT that states no expiry.
func jwtWithoutExp(t *testing.T) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "x"}).SignedString([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func FuzzParseToken(f *testing.F) {
	for _, seed := range []struct {
		status         int
		prefix, suffix string
	}{
		{200, `{"access_token":"`, `","token_type":"Bearer","expires_in":3600}`},
		{200, `{"access_token":"`, `","expires_in":"3600"}`},
		{200, `{"access_token":"eyJhbGciOiJIUzI1NiJ9.`, `.sig"}`},
		{200, `{"access_token":"`, `","expires_in":true}`},
		{200, `{"access_token":"`, ``},
		{200, `<html>`, `</html>`},
		{400, `{"error":"invalid_grant","error_description":"`, `"}`},
		{401, `{"error":"invalid_client","access_token":"`, `"}`},
		{200, `{"error":"invalid_scope","access_token":"`, `"}`},
		{503, `{"error":["`, `"]}`},
	} {
		f.Add(seed.status, []byte(seed.prefix), []byte(seed.suffix))
	}
	providertest.FuzzParser(f, func(resp *provider.Response) (provider.Token, error) {
		return oauth2.Call{Config: &v1alpha1.OAuth2Provider{}}.ParseResponse(resp, providertest.Epoch)
	}, func(body []byte) string {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(body, &e) // fills what the parser fills, even on type errors
		return e.Error + " " + e.Description
	})
}

// TestCallGet checks the GET form of a token request, which the http
// vendor's auth step offers for vendors such as Domo: parameters in the
// query with spaces as %20, the client in HTTP Basic and nowhere else.
func TestCallGet(t *testing.T) {
	cfg := &v1alpha1.OAuth2Provider{TokenURL: "https://auth.example.com/oauth/token?tenant=a+b", ClientID: clientID,
		Scopes: []string{"data", "dashboard"}}
	httpReq, err := oauth2.Call{Config: cfg, Method: http.MethodGet}.NewRequest(secret)
	if err != nil {
		t.Fatal(err)
	}
	user, pass, ok := httpReq.BasicAuth()
	if httpReq.Method != http.MethodGet || httpReq.Body != nil || !ok || user != url.QueryEscape(clientID) || pass != url.QueryEscape(secret) {
		t.Errorf("request = %s, body %v, basic %q %q %v", httpReq.Method, httpReq.Body, user, pass, ok)
	}
	if got, want := httpReq.URL.RawQuery, "grant_type=client_credentials&scope=data%20dashboard&tenant=a%20b"; got != want {
		t.Errorf("query = %s, want %s", got, want)
	}
	if strings.Contains(httpReq.URL.String(), url.QueryEscape(secret)) {
		t.Errorf("the URL carries the secret: %s", httpReq.URL)
	}

	cfg.ClientAuthMethod = oauth2.AuthPost
	_, err = oauth2.Call{Config: cfg, Method: http.MethodGet}.NewRequest(secret)
	providertest.CheckError(t, err, providertest.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "client_secret_basic"}, secret)
}
