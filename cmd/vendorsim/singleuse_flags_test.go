package main

import (
	"context"
	"errors"
	"flag"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

func TestHelpListsSingleUseFlags(t *testing.T) {
	var help strings.Builder
	err := run(context.Background(), []string{"-h"}, func(string) string { return "env-secret" }, &help)
	if !errors.Is(err, flag.ErrHelp) || strings.Contains(help.String(), "env-secret") {
		t.Fatalf("-h: %v\n%s", err, help.String())
	}
	for _, f := range []string{"-looker-embed-secret", "-sigma-client-id", "-sigma-secret", "-tableau-client-id", "-tableau-secret-id", "-tableau-secret-value"} {
		if !strings.Contains(help.String(), f) {
			t.Errorf("help does not list %s", f)
		}
	}
}

// TestSigmaAndTableauCredentialsFromFlagsAndEnv redeems a Sigma and a
// Tableau token signed with the credentials the flags and the environment
// give, and refuses ones signed with the defaults.
func TestSigmaAndTableauCredentialsFromFlagsAndEnv(t *testing.T) {
	base, stop := startRun(t, []string{"--listen=127.0.0.1:0", "--sigma-client-id=sigma-flag", "--tableau-client-id=tab-flag", "--tableau-secret-id=tab-kid"},
		map[string]string{"VENDORSIM_SIGMA_SECRET": "sigma-env", "VENDORSIM_TABLEAU_SECRET_VALUE": "tab-env"})
	defer stop()
	now := time.Now()
	sign := func(kid, secret string, claims jwt.MapClaims) string {
		claims["iat"], claims["exp"], claims["jti"], claims["sub"] = now.Unix(), now.Add(5*time.Minute).Unix(), kid+secret, "alice@acme.example"
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		tok.Header["kid"] = kid
		s, err := tok.SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	get := func(u string) int {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	tableau := func(secret string) jwt.MapClaims {
		return jwt.MapClaims{"iss": "tab-flag", "aud": "tableau", "scp": []string{vendorsim.TableauEmbedScope}}
	}
	for _, tc := range []struct {
		name, url string
		want      int
	}{
		{"sigma, configured", base + vendorsim.SigmaEmbedPath + "w?:jwt=" + url.QueryEscape(sign("sigma-flag", "sigma-env", jwt.MapClaims{})), 200},
		{"sigma, defaults", base + vendorsim.SigmaEmbedPath + "w?:jwt=" + url.QueryEscape(sign(vendorsim.DefaultSigmaClientID, vendorsim.DefaultSigmaSecret, jwt.MapClaims{})), 401},
		{"tableau, configured", base + vendorsim.TableauSessionPath + "?token=" + url.QueryEscape(sign("tab-kid", "tab-env", tableau("tab-env"))), 200},
		{"tableau, defaults", base + vendorsim.TableauSessionPath + "?token=" + url.QueryEscape(sign(vendorsim.DefaultTableauSecretID, vendorsim.DefaultTableauSecretValue, tableau(""))), 401},
	} {
		if got := get(tc.url); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
}
