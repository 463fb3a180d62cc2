package main

import (
	"context"
	"encoding/json"
	"io"
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
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || out.ExpiresIn != 600 {
		t.Errorf("Entra ID: %d, expires_in %d", resp.StatusCode, out.ExpiresIn)
	}

	all := stop()
	if strings.Contains(all, "pbi-env-secret") || !strings.Contains(all, vendorsim.PowerBIGenerateTokenPath) {
		t.Errorf("logs: %s", all)
	}
}

// TestPowerBICloudAndProfiles checks that --powerbi-cloud decides the scope
// the simulated Entra ID grants, that an unknown cloud is refused at start,
// and that --powerbi-profiles lists the profiles GenerateToken accepts.
func TestPowerBICloudAndProfiles(t *testing.T) {
	if err := run(context.Background(), []string{"--powerbi-cloud", "Germany"}, func(string) string { return "" }, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "--powerbi-cloud") {
		t.Errorf("an unknown cloud: %v", err)
	}
	const profile = "8d7a6c1e-2b3f-4a5d-9e8f-0a1b2c3d4e5f"
	args := []string{"--listen", "127.0.0.1:0", "--powerbi-cloud", "China", "--powerbi-profiles", " " + profile + " ,"}
	base, stop := startRun(t, args, nil)
	defer stop()
	token := func(scope string) (int, string) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {vendorsim.DefaultPowerBIClientID},
			"client_secret": {vendorsim.DefaultPowerBIClientSecret}, "scope": {scope}}
		resp, err := http.PostForm(base+vendorsim.PowerBIEntraTokenPath(vendorsim.DefaultPowerBITenantID), form)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var out struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out.AccessToken
	}
	if status, _ := token(vendorsim.PowerBIScope); status != http.StatusBadRequest {
		t.Errorf("the public scope in China: %d", status)
	}
	chinaScope, _ := vendorsim.PowerBICloudScope("China")
	status, access := token(chinaScope)
	if status != http.StatusOK {
		t.Fatalf("China's scope: %d", status)
	}
	generate := func(profileID string) int {
		req, _ := http.NewRequest(http.MethodPost, base+vendorsim.PowerBIGenerateTokenPath,
			strings.NewReader(`{"reports":[{"id":"5b218778-e7a5-4d73-8187-f10824047715"}]}`))
		req.Header.Set("Authorization", "Bearer "+access)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(vendorsim.PowerBIProfileHeader, profileID)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if got := generate(profile); got != http.StatusOK {
		t.Errorf("a listed profile: %d", got)
	}
	if got := generate("11111111-2222-4333-8444-555555555555"); got != http.StatusNotFound {
		t.Errorf("another profile: %d", got)
	}
}
