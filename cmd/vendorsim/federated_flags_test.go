package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// TestFederatedFlags configures the simulated Entra ID's federated
// credential from flags, with the issuer's JWKS in a file as kubectl get
// --raw /openid/v1/jwks writes it, and signs in with an assertion of the
// trusted ServiceAccount; a subject without an issuer is refused at start.
func TestFederatedFlags(t *testing.T) {
	if err := run(context.Background(), []string{"--powerbi-federated-subject", "system:serviceaccount:a:b"},
		func(string) string { return "" }, io.Discard); err == nil || !strings.Contains(err.Error(), "--federated-issuer") {
		t.Errorf("a subject without an issuer: %v", err)
	}
	issuer := providertest.NewIssuer(t)
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwks, issuer.JWKS(t), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--listen", "127.0.0.1:0", "--federated-issuer", providertest.IssuerURL, "--federated-jwks-file", jwks,
		"--powerbi-federated-subject", providertest.Subject("analytics", "powerbi-identity")}
	base, stop := startRun(t, args, nil)
	defer stop()
	for _, tc := range []struct {
		name   string
		sa     string
		status int
	}{
		{"the trusted ServiceAccount signs in", "powerbi-identity", http.StatusOK},
		{"another ServiceAccount is refused", "other", http.StatusUnauthorized},
	} {
		assertion := issuer.Token(t, "analytics", tc.sa, vendorsim.DefaultFederatedAudience, time.Now().Add(10*time.Minute))
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {vendorsim.DefaultPowerBIClientID},
			"client_assertion_type": {vendorsim.ClientAssertionType}, "client_assertion": {assertion}, "scope": {vendorsim.PowerBIScope}}
		resp, err := http.PostForm(base+vendorsim.PowerBIEntraTokenPath(vendorsim.DefaultPowerBITenantID), form)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: HTTP %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
	}
}
