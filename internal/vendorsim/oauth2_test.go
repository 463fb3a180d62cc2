package vendorsim_test

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

// Credentials with characters RFC 6749 section 2.3.1 form-encodes before Basic.
const (
	oauthID     = "my client:1"
	oauthSecret = "s/cr+t&=%"
)

const (
	form     = "application/x-www-form-urlencoded"
	jsonType = "application/json"
)

// basic is an RFC 6749 Authorization header: each part form-encoded first.
func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

func TestOAuth2Token(t *testing.T) {
	postCreds := url.Values{"client_id": {oauthID}, "client_secret": {oauthSecret}}.Encode()
	tests := []struct {
		name, contentType, body, auth string
		wantStatus                    int
		wantError                     string
	}{
		{"basic, form", form, "grant_type=client_credentials&scope=read+write", basic(oauthID, oauthSecret), 200, ""},
		{"basic, json", jsonType, `{"grant_type":"client_credentials","scope":"read"}`, basic(oauthID, oauthSecret), 200, ""},
		{"post, form", form, "grant_type=client_credentials&" + postCreds, "", 200, ""},
		{"post, json", jsonType, `{"grant_type":"client_credentials","client_id":"my client:1","client_secret":"s/cr+t&=%"}`, "", 200, ""},
		{"URN grant", form, "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer", basic(oauthID, oauthSecret), 200, ""},
		{"repeated fields", form, "grant_type=client_credentials&resource=a&resource=b", basic(oauthID, oauthSecret), 200, ""},
		{"basic without form-encoding", form, "grant_type=client_credentials", "Basic " + base64.StdEncoding.EncodeToString([]byte(oauthID+":"+oauthSecret)), 400, "invalid_request"},
		{"wrong secret", form, "grant_type=client_credentials", basic(oauthID, "nope"), 401, "invalid_client"},
		{"no credentials", form, "grant_type=client_credentials", "", 401, "invalid_client"},
		{"two auth methods", form, "grant_type=client_credentials&" + postCreds, basic(oauthID, oauthSecret), 400, "invalid_request"},
		{"bearer auth", form, "grant_type=client_credentials", "Bearer x", 400, "invalid_request"},
		{"no grant", form, "scope=read", basic(oauthID, oauthSecret), 400, "invalid_request"},
		{"password grant", form, "grant_type=password", basic(oauthID, oauthSecret), 400, "unsupported_grant_type"},
		{"scope not allowed", form, "grant_type=client_credentials&scope=read+admin", basic(oauthID, oauthSecret), 400, "invalid_scope"},
		{"malformed form", form, "grant_type=%zz", basic(oauthID, oauthSecret), 400, "invalid_request"},
		{"text body", "text/plain", "grant_type=client_credentials", basic(oauthID, oauthSecret), 400, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startWith(t, vendorsim.Options{OAuth2ClientID: oauthID, OAuth2ClientSecret: oauthSecret, OAuth2AllowedScopes: []string{"read", "write"}})
			r := post(t, s.URL()+vendorsim.OAuth2TokenPath, tc.contentType, tc.body, "Authorization", tc.auth)
			if r.status != tc.wantStatus || (tc.wantError != "" && r.json["error"] != tc.wantError) {
				t.Fatalf("got %d %s, want %d %s", r.status, r.raw, tc.wantStatus, tc.wantError)
			}
			if tc.wantStatus != 200 {
				return
			}
			token, _ := r.json["access_token"].(string)
			if !strings.HasPrefix(token, vendorsim.OAuth2TokenPrefix) || r.json["expires_in"] != 3600.0 || s.Validate(token) != vendorsim.ValidityValid {
				t.Fatalf("answer %s", r.raw)
			}
			if body := s.Calls()[0].Body; body["grant_type"] == nil || (tc.name == "repeated fields" && len(body["resource"].([]any)) != 2) {
				t.Errorf("recorded body %v", body)
			}
		})
	}
}

func TestOAuth2JWTAccessTokens(t *testing.T) {
	s := startWith(t, vendorsim.Options{OAuth2JWTAccessTokens: true})
	r := post(t, s.URL()+vendorsim.OAuth2TokenPath, form, "grant_type=client_credentials", "Authorization", basic(vendorsim.DefaultOAuth2ClientID, vendorsim.DefaultOAuth2ClientSecret))
	token, _ := r.json["access_token"].(string)
	if r.status != 200 || r.json["expires_in"] != nil || s.Validate(token) != vendorsim.ValidityValid {
		t.Fatalf("answer %d %s", r.status, r.raw)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		t.Fatalf("not a JWT: %v", err)
	}
	if exp, err := claims.GetExpirationTime(); err != nil || !exp.Equal(epoch.Add(vendorsim.OAuth2TokenLifetime)) {
		t.Errorf("exp = %v, %v", exp, err)
	}
}

func TestOAuth2FaultShape(t *testing.T) {
	s := startWith(t, vendorsim.Options{})
	s.SetFault(vendorsim.Fault{Status: 503, RetryAfter: time.Second, Count: 1})
	r := post(t, s.URL()+vendorsim.OAuth2TokenPath, form, "grant_type=client_credentials")
	if r.status != 503 || r.json["error"] != "temporarily_unavailable" || r.header.Get("Retry-After") != "1" {
		t.Errorf("fault answer %d %s", r.status, r.raw)
	}
}

// Form bodies are an OAuth2 feature: Qrvey still takes JSON only.
func TestQrveyRejectsFormBodies(t *testing.T) {
	s := startWith(t, vendorsim.Options{QrveyAPIKey: apiKey})
	if r := post(t, s.URL()+vendorsim.QrveyTokenPath, form, "userid=u&appid=a", "x-api-key", apiKey); r.status != 400 {
		t.Errorf("Qrvey form body: %d %s", r.status, r.raw)
	}
}
