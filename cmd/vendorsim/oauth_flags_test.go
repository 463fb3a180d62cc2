package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

// TestQlikAndOAuth2Credentials checks the Qlik Cloud and OAuth2 credentials
// come from flags, then the environment, and never reach the logs.
func TestQlikAndOAuth2Credentials(t *testing.T) {
	env := map[string]string{"VENDORSIM_QLIK_CLIENT_SECRET": "qlik-env-secret", "VENDORSIM_OAUTH2_CLIENT_ID": "oauth-env-id"}
	args := []string{"--listen", "127.0.0.1:0", "--qlik-client-id", "qlik-flag-id", "--oauth2-client-secret", "oauth-flag-secret", "--qlik-max-tokens-per-user", "1"}
	base, stop := startRun(t, args, env)

	qlik := `{"client_id":"qlik-flag-id","client_secret":"qlik-env-secret","grant_type":"urn:qlik:oauth:user-impersonation","user_lookup":{"field":"subject","value":"a"}}`
	for i, want := range []int{200, 403} {
		resp, err := http.Post(base+vendorsim.QlikTokenPath, "application/json", strings.NewReader(qlik))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Qlik call %d: %d, want %d", i, resp.StatusCode, want)
		}
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"oauth-env-id"}, "client_secret": {"oauth-flag-secret"}}
	resp, err := http.PostForm(base+vendorsim.OAuth2TokenPath, form)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("OAuth2: %d", resp.StatusCode)
	}

	all := stop()
	if strings.Contains(all, "qlik-env-secret") || strings.Contains(all, "oauth-flag-secret") || !strings.Contains(all, vendorsim.OAuth2TokenPath) {
		t.Errorf("logs: %s", all)
	}
}
