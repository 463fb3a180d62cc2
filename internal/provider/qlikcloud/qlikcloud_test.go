package qlikcloud_test

import (
	"cmp"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/qlikcloud"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

const (
	clientID = "qlik-client"
	secret   = "qlik-s3cret-value"
)

var (
	creds   = providertest.Creds{"qlik/secret": secret, "qlik/wrong": "not-the-secret"}
	alice   = &v1alpha1.QlikUserLookup{Value: "alice@example.com"}
	success = providertest.Want{}
)

// serve answers one fixed response, for shapes the simulator never sends.
func serve(status int, body string) func(t *testing.T) string {
	return func(t *testing.T) string { return providertest.Serve(t, status, body) }
}

// request builds a Qlik request against url for user (nil: client_credentials).
func request(t *testing.T, url string, user *v1alpha1.QlikUserLookup, secretKey string, timeout time.Duration) provider.Request {
	req := providertest.Request(t, creds, timeout)
	req.Config.QlikCloud = &v1alpha1.QlikCloudProvider{TenantURL: url + "/", ClientID: clientID, ClientSecretSecretRef: providertest.Ref("qlik/" + secretKey), RevokeReplacedTokens: true}
	req.Params.QlikCloud = &v1alpha1.QlikCloudParams{UserLookup: user}
	return req
}

func sim(t *testing.T, opts vendorsim.Options) *vendorsim.Server {
	opts.QlikClientID, opts.QlikClientSecret = clientID, secret
	return providertest.StartSim(t, opts)
}

func TestIssue(t *testing.T) {
	tests := []struct {
		name      string
		opts      vendorsim.Options
		fault     *vendorsim.Fault
		url       func(t *testing.T) string // instead of the simulator
		user      *v1alpha1.QlikUserLookup
		secretKey string
		timeout   time.Duration
		want      providertest.Want
		wantTTL   time.Duration
	}{
		{name: "impersonation, expires_in", user: alice, wantTTL: vendorsim.QlikTokenLifetime},
		{name: "client_credentials", wantTTL: vendorsim.QlikTokenLifetime},
		{name: "expires_at", opts: vendorsim.Options{QlikExpiresAt: true}, user: alice, wantTTL: vendorsim.QlikTokenLifetime},
		{name: "userId lookup", user: &v1alpha1.QlikUserLookup{Field: "userId", Value: "u-1"}, wantTTL: vendorsim.QlikTokenLifetime},
		{name: "expires_in as string", url: serve(200, `{"access_token":"opaque-tok","token_type":"Bearer","expires_in":"600"}`), wantTTL: 10 * time.Minute},
		{name: "fractional expires_at", url: serve(200, `{"access_token":"opaque-tok","expires_at":"2030-01-02T04:04:05.5+01:00"}`), wantTTL: 500 * time.Millisecond},
		{name: "no expiry", url: serve(200, `{"access_token":"opaque-tok"}`),
			want: providertest.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "neither expires_in nor expires_at"}},
		{name: "bad expires_at", url: serve(200, `{"access_token":"opaque-tok","expires_at":"tomorrow"}`),
			want: providertest.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "RFC 3339"}},
		{name: "bad expires_in", url: serve(200, `{"access_token":"opaque-tok","expires_in":-1}`),
			want: providertest.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "expires_in"}},
		{name: "truncated JSON", url: serve(200, `{"access_token":"opaque-tok","expi`),
			want: providertest.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "not the expected JSON"}},
		{name: "HTML", fault: &vendorsim.Fault{Garbage: true}, user: alice,
			want: providertest.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "HTML"}},
		{name: "no token", fault: &vendorsim.Fault{EmptyToken: true}, user: alice,
			want: providertest.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "no access_token"}},
		{name: "wrong secret", user: alice, secretKey: "wrong",
			want: providertest.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "HTTP 401: OAUTH-1: invalid_client: client authentication failed"}},
		{name: "missing secret", user: alice, secretKey: "absent",
			want: providertest.Want{Reason: v1alpha1.ReasonCredentialsNotFound}},
		{name: "403", fault: &vendorsim.Fault{Status: 403}, user: alice,
			want: providertest.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "HTTP 403"}},
		{name: "429 with Retry-After", fault: &vendorsim.Fault{Status: 429, RetryAfter: 3 * time.Second}, user: alice,
			want: providertest.Want{Reason: v1alpha1.ReasonVendorQuotaExceeded, RetryAfter: 3 * time.Second}},
		{name: "500", fault: &vendorsim.Fault{Status: 500}, user: alice,
			want: providertest.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "HTTP 500"}},
		{name: "503", fault: &vendorsim.Fault{Status: 503, RetryAfter: time.Second}, user: alice,
			want: providertest.Want{Reason: v1alpha1.ReasonVendorUnavailable, RetryAfter: time.Second}},
		{name: "timeout", fault: &vendorsim.Fault{Delay: time.Minute}, user: alice, timeout: 100 * time.Millisecond,
			want: providertest.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "did not answer within 100ms"}},
		{name: "bad user field", user: &v1alpha1.QlikUserLookup{Field: "name", Value: "x"},
			want: providertest.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "user_lookup"}},
		{name: "errors[] at HTTP 200, with its status", fault: &vendorsim.Fault{OKWithError: 401}, user: alice,
			want: providertest.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "qlikCloud answered HTTP 200 with an error of status 401: HTTP-401: simulated fault"}},
		{name: "errors[] at HTTP 200, without status", url: serve(200, `{"errors":[{"code":"OAUTH-1","title":"invalid_client","detail":"client authentication failed"}]}`),
			want: providertest.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "qlikCloud answered HTTP 200 with an error: OAUTH-1: invalid_client: client authentication failed"}},
		{name: "errors[] at HTTP 200, numeric 429 status", url: serve(200, `{"errors":[{"title":"Too many requests","status":429}]}`),
			want: providertest.Want{Reason: v1alpha1.ReasonVendorQuotaExceeded, Message: "error of status 429: Too many requests"}},
		{name: "errors[] at HTTP 200, token limit", url: serve(200, `{"errors":[{"code":"OAUTH-14","title":"Too many tokens","status":"403"}]}`),
			want: providertest.Want{Reason: v1alpha1.ReasonTokenLimitReached, Permanent: true, Message: "OAUTH-14: Too many tokens"}},
		{name: "errors[] at HTTP 200 beside a token", url: serve(200, `{"errors":[{"title":1}],"access_token":"opaque-tok","expires_in":60}`),
			want: providertest.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "HTTP 200 with an error"}},
		{name: "empty errors[] at HTTP 200", url: serve(200, `{"errors":[],"access_token":"opaque-tok","expires_in":60}`), wantTTL: time.Minute},
		{name: "OAuth-style error body", url: serve(401, `{"error":"invalid_client","error_description":"client secret expired"}`),
			want: providertest.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "HTTP 401: client secret expired"}},
		{name: "secret echoed by vendor", url: serve(400, `{"errors":[{"code":"X","title":"bad client_secret `+secret+`"}]}`), want: providertest.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "[redacted]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s *vendorsim.Server
			var url string
			if tc.url != nil {
				url = tc.url(t)
			} else {
				s = sim(t, tc.opts)
				url = s.URL()
				if tc.fault != nil {
					s.SetFault(*tc.fault)
				}
			}
			tok, err := qlikcloud.New().Issue(context.Background(), request(t, url, tc.user, cmp.Or(tc.secretKey, "secret"), tc.timeout))
			providertest.CheckError(t, err, tc.want, secret, tok.Value, "opaque-tok")
			if err != nil {
				return
			}
			providertest.CheckWindow(t, tok, tc.wantTTL)
			if s != nil {
				checkSimCall(t, s, tok, tc.user)
			}
		})
	}
}

// checkSimCall asserts the simulator issued tok for what the request asked.
func checkSimCall(t *testing.T, s *vendorsim.Server, tok provider.Token, user *v1alpha1.QlikUserLookup) {
	t.Helper()
	if s.Validate(tok.Value) != vendorsim.ValidityValid || tok.Type != "Bearer" {
		t.Errorf("token %v (type %q) not valid at the simulator", tok, tok.Type)
	}
	body := s.Calls()[0].Body
	if body["client_id"] != clientID || body["client_secret"] != secret || body["scope"] != qlikcloud.DefaultScope {
		t.Errorf("request body = %v", body)
	}
	lookup, hasLookup := body["user_lookup"].(map[string]any)
	switch {
	case user == nil && (body["grant_type"] != qlikcloud.ClientCredentialsGrant || hasLookup):
		t.Errorf("client_credentials body = %v", body)
	case user != nil && (body["grant_type"] != qlikcloud.ImpersonationGrant || lookup["value"] != user.Value || lookup["field"] != cmp.Or(user.Field, "subject")):
		t.Errorf("impersonation body = %v", body)
	}
}

func TestTokenLimitAndRevoke(t *testing.T) {
	s := sim(t, vendorsim.Options{QlikMaxTokensPerUser: 2})
	p := qlikcloud.New()
	req := request(t, s.URL(), alice, "secret", 0)
	first, err := p.Issue(context.Background(), req)
	providertest.CheckError(t, err, success)
	if _, err := p.Issue(context.Background(), request(t, s.URL(), &v1alpha1.QlikUserLookup{Value: "bob"}, "secret", 0)); err != nil {
		t.Fatalf("another user is not limited: %v", err)
	}
	_, err = p.Issue(context.Background(), req)
	providertest.CheckError(t, err, success)
	_, err = p.Issue(context.Background(), req)
	providertest.CheckError(t, err, providertest.Want{Reason: v1alpha1.ReasonTokenLimitReached, Permanent: true, Message: "Too many tokens"}, secret)

	err = p.Revoke(context.Background(), request(t, s.URL(), nil, "wrong", 0), first.Value)
	providertest.CheckError(t, err, providertest.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true}, secret, first.Value)
	if s.Validate(first.Value) != vendorsim.ValidityValid {
		t.Fatal("a rejected revoke revoked the token")
	}
	providertest.CheckError(t, p.Revoke(context.Background(), req, first.Value), success)
	if s.Validate(first.Value) != vendorsim.ValidityUnknown {
		t.Error("revoked token is still known to the simulator")
	}
	if _, err := p.Issue(context.Background(), req); err != nil {
		t.Fatalf("revoking did not free a slot: %v", err)
	}
	calls := s.Calls()
	revoke := calls[len(calls)-2]
	if revoke.Path != qlikcloud.RevokePath || revoke.Body["token"] != first.Value || revoke.Body["token_type_hint"] != "access_token" || revoke.Body["client_secret"] != secret {
		t.Errorf("revoke call = %+v", revoke)
	}
}

// TestSample runs config/samples against the simulator: the documented
// manifests issue a token and revoke it.
func TestSample(t *testing.T) {
	prov, etr := providertest.Sample(t, "embedtokens_v1alpha1_embedprovider_qlikcloud.yaml")
	s := providertest.StartSim(t, vendorsim.Options{QlikClientID: prov.QlikCloud.ClientID, QlikClientSecret: secret})
	prov.QlikCloud.TenantURL = providertest.Rebase(t, prov.QlikCloud.TenantURL, s.URL())
	req := providertest.Request(t, providertest.Creds{"qlik-credentials/clientSecret": secret}, 0)
	req.Config, req.Params = &prov, &etr.VendorParams
	tok, err := qlikcloud.New().Issue(context.Background(), req)
	providertest.CheckError(t, err, success, secret)
	if lookup, _ := s.Calls()[0].Body["user_lookup"].(map[string]any); lookup["field"] != "email" || !prov.QlikCloud.RevokeReplacedTokens {
		t.Errorf("sample sent %v", s.Calls()[0].Body)
	}
	providertest.CheckError(t, qlikcloud.New().Revoke(context.Background(), req, tok.Value), success)
	if s.Validate(tok.Value) != vendorsim.ValidityUnknown {
		t.Error("the sample's token was not revoked")
	}
}

func TestRevokeErrors(t *testing.T) {
	const token = "qlk_the-token-being-revoked"
	for _, tc := range []struct {
		name  string
		fault vendorsim.Fault
		want  providertest.Want
	}{
		{"503", vendorsim.Fault{Status: 503}, providertest.Want{Reason: v1alpha1.ReasonVendorUnavailable}},
		{"timeout", vendorsim.Fault{Delay: time.Minute}, providertest.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "did not answer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sim(t, vendorsim.Options{})
			s.SetFault(tc.fault)
			err := qlikcloud.New().Revoke(context.Background(), request(t, s.URL(), nil, "secret", 100*time.Millisecond), token)
			providertest.CheckError(t, err, tc.want, secret, token)
		})
	}
}

func TestMismatch(t *testing.T) {
	req := providertest.Request(t, creds, 0)
	_, err := qlikcloud.New().Issue(context.Background(), req)
	providertest.CheckError(t, err, providertest.Want{Reason: v1alpha1.ReasonVendorMismatch, Permanent: true})
	providertest.CheckError(t, qlikcloud.New().Revoke(context.Background(), req, "t"), providertest.Want{Reason: v1alpha1.ReasonVendorMismatch, Permanent: true})
}

func TestErrorDetail(t *testing.T) {
	tests := []struct {
		body      string
		want      string
		wantLimit bool
	}{
		{`{"errors":[{"code":"OAUTH-14","title":"Too many tokens"}]}`, "OAUTH-14: Too many tokens", true},
		{`{"errors":[{"code":"X","title":"Forbidden","detail":"User reached the maximum number of tokens"}]}`, "X: Forbidden: User reached the maximum number of tokens", true},
		{`{"errors":[{"code":"TOKEN_LIMIT","title":"Forbidden"}]}`, "TOKEN_LIMIT: Forbidden", true},
		{`{"errors":[{"code":"OAUTH-1","title":"invalid_client"}]}`, "OAUTH-1: invalid_client", false},
		{`{"errors":[{"code":"OAUTH-1","title":"invalid_client","detail":"client authentication failed","status":"401"}]}`, "OAUTH-1: invalid_client: client authentication failed", false},
		{`{"errors":[{"code":7,"title":"Forbidden"}]}`, "Forbidden", false},
		{`{"errors":[]}`, "", false},
		{`<html>`, "", false},
		// Not Qlik's format: a proxy's or an OAuth-style error is quoted too.
		{`{"message":"Bad gateway"}`, "Bad gateway", false},
		{`{"error":"invalid_client"}`, "invalid_client", false},
	}
	for _, tc := range tests {
		got, limit := qlikcloud.ErrorDetail([]byte(tc.body))
		if got != tc.want || limit != tc.wantLimit {
			t.Errorf("ErrorDetail(%s) = %q, %v; want %q, %v", tc.body, got, limit, tc.want, tc.wantLimit)
		}
	}
	// A rate limit is not the token limit, even if it says "too many".
	_, err := qlikcloud.ParseToken(&provider.Response{Status: 429, Header: http.Header{}, Body: []byte(`{"errors":[{"title":"Too many requests"}]}`)}, providertest.Epoch)
	providertest.CheckError(t, err, providertest.Want{Reason: v1alpha1.ReasonVendorQuotaExceeded})
}

func FuzzParseToken(f *testing.F) {
	for _, seed := range []struct {
		status         int
		prefix, suffix string
	}{
		{200, `{"access_token":"`, `","expires_in":3600}`},
		{200, `{"access_token":"`, `","expires_at":"2030-01-02T04:04:05Z"}`},
		{200, `{"access_token":"`, `","expires_at":"bad"}`},
		{200, `{"access_token":"`, `","expires_in":"-1"}`},
		{200, `{"access_token":"`, `"}`},
		{200, `{"access_token":"`, ``},
		{200, `<html>`, `</html>`},
		{200, `{"errors":[{"status":"401","title":"`, `"}],"access_token":"t","expires_in":60}`},
		{403, `{"errors":[{"code":"OAUTH-14","title":"Too many tokens","detail":"`, `"}]}`},
		{401, `{"errors":[{"title":1}],"access_token":"`, `"}`},
		{503, `{"errors":"`, `"}`},
		{502, `{"message":"`, `"}`},
		{400, `{"error":"invalid_client","error_description":"`, `"}`},
	} {
		f.Add(seed.status, []byte(seed.prefix), []byte(seed.suffix))
	}
	providertest.FuzzParser(f, func(resp *provider.Response) (provider.Token, error) {
		return qlikcloud.ParseToken(resp, providertest.Epoch)
	}, func(body []byte) string {
		detail, _ := qlikcloud.ErrorDetail(body)
		return detail
	})
}

func TestRevokeIsANoOpUnlessEnabled(t *testing.T) {
	s := sim(t, vendorsim.Options{})
	req := request(t, s.URL(), nil, "good", 0)
	req.Config.QlikCloud.RevokeReplacedTokens = false
	if err := qlikcloud.New().Revoke(context.Background(), req, "some-token"); err != nil {
		t.Fatalf("Revoke with revokeReplacedTokens unset: %v", err)
	}
	if n := s.CallCount(); n != 0 {
		t.Fatalf("Revoke with revokeReplacedTokens unset called the vendor %d times", n)
	}
}
