package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

// TestPowerBICredentials checks the Power BI tenant and service principal
// come from flags, then the environment, that the access token lifetime is
// a flag, and that the secret never reaches the logs.
func TestPowerBICredentials(t *testing.T) {
	env := map[string]string{"VENDORSIM_POWERBI_CLIENT_SECRET": "pbi-env-secret", "VENDORSIM_POWERBI_TENANT_ID": "env-tenant"}
	args := []string{"--listen", "127.0.0.1:0", "--powerbi-client-id", "pbi-flag-id", "--powerbi-access-token-lifetime", "10m"}
	base, stop := startRun(t, args, env)

	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"pbi-flag-id"}, "client_secret": {"pbi-env-secret"}, "scope": {vendorsim.PowerBIScope}}
	resp, err := http.PostForm(base+vendorsim.PowerBIEntraTokenPath("env-tenant"), form)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		ExpiresIn int `json:"expires_in"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 200 || out.ExpiresIn != 600 {
		t.Errorf("Entra ID: %d, expires_in %d", resp.StatusCode, out.ExpiresIn)
	}

	all := stop()
	if strings.Contains(all, "pbi-env-secret") || !strings.Contains(all, vendorsim.PowerBIGenerateTokenPath) {
		t.Errorf("logs: %s", all)
	}
}
