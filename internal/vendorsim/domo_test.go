package vendorsim_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

const (
	domoID     = "domo-id"
	domoSecret = "domo-s3cret"
	domoScopes = "grant_type=client_credentials&scope=data%20audit%20user%20dashboard"
)

// domoGet asks the Domo token endpoint for an access token with query and
// the Authorization header auth.
func domoGet(t *testing.T, s *vendorsim.Server, query, auth string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL()+vendorsim.DomoTokenPath+"?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
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

func domoBasic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

func TestDomoAccessToken(t *testing.T) {
	tests := []struct {
		name, query, auth string
		wantStatus        int
	}{
		{"success", domoScopes, domoBasic(domoID, domoSecret), 200},
		{"wrong secret", domoScopes, domoBasic(domoID, "nope"), 401},
		{"no credentials", domoScopes, "", 401},
		{"Bearer instead of Basic", domoScopes, "Bearer " + domoSecret, 401},
		{"no grant_type", "scope=dashboard", domoBasic(domoID, domoSecret), 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startWith(t, vendorsim.Options{DomoClientID: domoID, DomoClientSecret: domoSecret})
			r := domoGet(t, s, tc.query, tc.auth)
			if r.status != tc.wantStatus {
				t.Fatalf("got %d %s", r.status, r.raw)
			}
			if tc.wantStatus != 200 {
				if r.json["message"] == nil || s.IssuedCount() != 0 {
					t.Errorf("error answer %s", r.raw)
				}
				return
			}
			token, _ := r.json["access_token"].(string)
			if !strings.HasPrefix(token, vendorsim.DomoAccessTokenPrefix) || r.json["expires_in"] != 3600.0 || r.json["scope"] != "data audit user dashboard" {
				t.Fatalf("answer %s", r.raw)
			}
			if c := s.Calls(); len(c) != 1 || c[0].Vendor != "domo" || c[0].Path != vendorsim.DomoTokenPath || c[0].Body["grant_type"] != "client_credentials" {
				t.Errorf("call log %+v", c)
			}
		})
	}
}

// TestDomoTokenPathSharedWithQlik checks that Qlik Cloud's POST
// /oauth/token still reaches Qlik beside Domo's GET on the same path.
func TestDomoTokenPathSharedWithQlik(t *testing.T) {
	s := startWith(t, vendorsim.Options{})
	r := post(t, s.URL()+vendorsim.QlikTokenPath, jsonType, `{}`)
	if c := s.Calls(); r.status == http.StatusMethodNotAllowed || len(c) != 1 || c[0].Vendor != "qlikCloud" {
		t.Fatalf("POST %s reached %+v: %d %s", vendorsim.QlikTokenPath, c, r.status, r.raw)
	}
}

func TestDomoEmbedToken(t *testing.T) {
	authz := `"authorizations":[{"token":"K2Okl","permissions":["READ","FILTER","EXPORT"],"filters":[{"column":"region","operator":"IN","values":["EU"]}]}]`
	tests := []struct {
		name, scope, body string
		bearer            func(access string) string
		wantStatus        int
		wantTTL           time.Duration
	}{
		{"success", domoScopes, `{"sessionLength":60,` + authz + `}`, nil, 200, time.Hour},
		{"default session", domoScopes, `{` + authz + `}`, nil, 200, 8 * time.Hour},
		{"no filters", domoScopes, `{"sessionLength":5,"authorizations":[{"token":"K2Okl","permissions":["READ"]}]}`, nil, 200, 5 * time.Minute},
		{"no Bearer", domoScopes, `{` + authz + `}`, func(string) string { return "" }, 401, 0},
		{"unknown token", domoScopes, `{` + authz + `}`, func(string) string { return "Bearer " + vendorsim.DomoAccessTokenPrefix + "forged" }, 401, 0},
		{"no dashboard scope", "grant_type=client_credentials&scope=data", `{` + authz + `}`, nil, 403, 0},
		{"session too long", domoScopes, `{"sessionLength":481,` + authz + `}`, nil, 400, 0},
		{"session in seconds as a string", domoScopes, `{"sessionLength":"3600",` + authz + `}`, nil, 400, 0},
		{"no authorizations", domoScopes, `{"sessionLength":60}`, nil, 400, 0},
		{"unknown permission", domoScopes, `{"authorizations":[{"token":"K2Okl","permissions":["WRITE"]}]}`, nil, 400, 0},
		{"bad filter", domoScopes, `{"authorizations":[{"token":"K2Okl","permissions":["READ"],"filters":[{"column":"region","operator":"LIKE","values":["EU"]}]}]}`, nil, 400, 0},
		{"not JSON", domoScopes, `sessionLength=60`, nil, 400, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startWith(t, vendorsim.Options{DomoClientID: domoID, DomoClientSecret: domoSecret})
			access, _ := domoGet(t, s, tc.scope, domoBasic(domoID, domoSecret)).json["access_token"].(string)
			auth := "Bearer " + access
			if tc.bearer != nil {
				auth = tc.bearer(access)
			}
			r := post(t, s.URL()+vendorsim.DomoEmbedAuthPath, jsonType, tc.body, "Authorization", auth)
			if r.status != tc.wantStatus {
				t.Fatalf("got %d %s", r.status, r.raw)
			}
			if tc.wantStatus != 200 {
				if r.json["message"] == nil || s.IssuedCount() != 1 {
					t.Errorf("error answer %s", r.raw)
				}
				return
			}
			token, _ := r.json["authentication"].(string)
			if s.Validate(token) != vendorsim.ValidityValid {
				t.Fatalf("answer %s", r.raw)
			}
			claims := jwt.MapClaims{}
			if _, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return []byte(vendorsim.DomoEmbedSigningKey), nil },
				jwt.WithValidMethods([]string{"HS256"}), jwt.WithoutClaimsValidation()); err != nil {
				t.Fatalf("embed token is not a JWT signed by the simulator: %v", err)
			}
			exp, _ := claims.GetExpirationTime()
			iat, _ := claims.GetIssuedAt()
			if got := exp.Sub(iat.Time); got != tc.wantTTL {
				t.Errorf("exp - iat = %s, want the session's %s", got, tc.wantTTL)
			}
			if emb, _ := claims["emb"].([]any); len(emb) != 1 || emb[0] != "K2Okl" {
				t.Errorf("emb = %v, want [K2Okl]", claims["emb"])
			}
		})
	}
}

// TestDomoExpiredAccessToken checks that an access token past its lifetime
// no longer makes embed tokens, and that embed tokens live sessionLength.
func TestDomoExpiredAccessToken(t *testing.T) {
	clk := clocktesting.NewFakeClock(epoch)
	s := vendorsim.New(vendorsim.Options{Clock: clk})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	access, _ := domoGet(t, s, domoScopes, domoBasic(vendorsim.DefaultDomoClientID, vendorsim.DefaultDomoClientSecret)).json["access_token"].(string)
	body := `{"sessionLength":10,"authorizations":[{"token":"K2Okl","permissions":["READ"]}]}`
	r := post(t, s.URL()+vendorsim.DomoEmbedAuthPath, jsonType, body, "Authorization", "Bearer "+access)
	embed, _ := r.json["authentication"].(string)
	clk.Step(10 * time.Minute)
	if v := s.Validate(embed); v != vendorsim.ValidityExpired {
		t.Errorf("embed token after sessionLength: %s", v)
	}
	clk.Step(vendorsim.DomoAccessTokenLifetime)
	if r := post(t, s.URL()+vendorsim.DomoEmbedAuthPath, jsonType, body, "Authorization", "Bearer "+access); r.status != 401 {
		t.Errorf("expired access token: %d %s", r.status, r.raw)
	}
}
