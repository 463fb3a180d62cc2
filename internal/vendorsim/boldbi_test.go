package vendorsim_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

const boldBISecret = "bold-secret"

func boldBIBody(extra string) string {
	return `{"email":"alice@example.com","embedsecret":"` + boldBISecret + `","serverurl":"http://x/bi","siteidentifier":"site/site1"` + extra + `}`
}

func TestBoldBIAuthorize(t *testing.T) {
	authorize := vendorsim.BoldBIAuthorizePath(vendorsim.DefaultBoldBISite)
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantAPIStatus            bool
		wantMessage              string
	}{
		{"success", http.MethodPost, authorize, boldBIBody(`,"dashboard":{"id":"d1"},"datasourcefilters":[{"name":"R","value":["EU"]}],"customattributes":[{"name":"t","value":"a","operator":"IN"}]`), 200, true, ""},
		{"wrong secret answers 200", http.MethodPost, authorize, `{"email":"a@b","embedsecret":"nope"}`, 200, false, "Invalid embed secret"},
		{"missing email answers 200", http.MethodPost, authorize, `{"embedsecret":"` + boldBISecret + `"}`, 200, false, "email"},
		{"site mismatch", http.MethodPost, authorize, boldBIBody(`,"siteidentifier":"site/other"`), 400, false, "siteidentifier"},
		{"numbers and booleans", http.MethodPost, authorize, boldBIBody(`,"dashboardparameters":[{"name":"CustomerId","value":[1001,1002],"operator":"NOT IN"},{"name":"Active","value":true},{"name":"Year","value":2030}]`), 200, true, ""},
		{"Bold BI Cloud, no site", http.MethodPost, vendorsim.BoldBIAuthorizePath(""), boldBIBody(`,"siteidentifier":""`), 200, true, ""},
		{"bad filter value", http.MethodPost, authorize, boldBIBody(`,"datasourcefilters":[{"name":"R","value":{"x":1}}]`), 400, false, "datasourcefilters"},
		{"null filter value", http.MethodPost, authorize, boldBIBody(`,"datasourcefilters":[{"name":"R","value":null}]`), 400, false, "datasourcefilters"},
		{"list in a list", http.MethodPost, authorize, boldBIBody(`,"customattributes":[{"name":"R","value":[["EU"]]}]`), 400, false, "customattributes"},
		{"Cloud path, site in the body", http.MethodPost, vendorsim.BoldBIAuthorizePath(""), boldBIBody(""), 400, false, "siteidentifier"},
		{"bad dashboard", http.MethodPost, authorize, boldBIBody(`,"dashboard":"d1"`), 400, false, "dashboard"},
		{"non-string email", http.MethodPost, authorize, `{"email":1,"embedsecret":"` + boldBISecret + `"}`, 400, false, "email"},
		{"not JSON", http.MethodPost, authorize, `email=a`, 400, false, "JSON"},
		{"unknown route", http.MethodPost, vendorsim.BoldBIAPIPrefix + "site/site1/other", boldBIBody(""), 404, false, "route"},
		{"no site", http.MethodPost, vendorsim.BoldBIAPIPrefix + "embed/authorize", boldBIBody(""), 404, false, "route"},
		{"wrong method", http.MethodGet, authorize, "", 405, false, "method"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startWith(t, vendorsim.Options{BoldBIEmbedSecret: boldBISecret})
			r := do(t, http.DefaultClient, tc.method, s.URL()+tc.path, "", tc.body)
			msg, _ := r.json["Message"].(string)
			if r.status != tc.wantStatus || r.json["ApiStatus"] != tc.wantAPIStatus || !strings.Contains(msg, tc.wantMessage) {
				t.Fatalf("got %d %s", r.status, r.raw)
			}
			if !tc.wantAPIStatus {
				if s.IssuedCount() != 0 {
					t.Errorf("a failed call issued a token")
				}
				return
			}
			data, _ := r.json["Data"].(map[string]any)
			token, _ := data["access_token"].(string)
			if data["expires_in"] != 3600.0 || data["token_type"] != "bearer" || data[".expires"] == nil || s.Validate(token) != vendorsim.ValidityValid {
				t.Fatalf("data = %v", data)
			}
			claims := jwt.MapClaims{}
			if _, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return []byte(vendorsim.BoldBISigningKey), nil },
				jwt.WithTimeFunc(func() time.Time { return epoch })); err != nil {
				t.Fatalf("token does not verify: %v", err)
			}
			if exp, _ := claims.GetExpirationTime(); !exp.Equal(epoch.Add(vendorsim.BoldBITokenLifetime)) || claims["email"] != "alice@example.com" {
				t.Errorf("claims = %v", claims)
			}
		})
	}
}

func TestBoldBIOmitExpiresIn(t *testing.T) {
	s := startWith(t, vendorsim.Options{BoldBIEmbedSecret: boldBISecret, BoldBIOmitExpiresIn: true})
	r := do(t, http.DefaultClient, http.MethodPost, s.URL()+vendorsim.BoldBIAuthorizePath("site/site1"), "", boldBIBody(""))
	data, _ := r.json["Data"].(map[string]any)
	if _, ok := data["expires_in"]; ok || r.status != 200 || data["access_token"] == "" {
		t.Fatalf("got %d %s", r.status, r.raw)
	}
	if calls := do(t, http.DefaultClient, http.MethodGet, s.URL()+"/_sim/calls", "", ""); strings.Contains(calls.raw, boldBISecret) {
		t.Errorf("admin API reveals the embed secret: %s", calls.raw)
	}
}
