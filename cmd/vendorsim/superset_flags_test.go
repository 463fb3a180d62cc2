package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

func TestHelpListsSupersetFlags(t *testing.T) {
	var help strings.Builder
	err := run(context.Background(), []string{"-h"}, func(string) string { return "env-secret" }, &help)
	if !errors.Is(err, flag.ErrHelp) || strings.Contains(help.String(), "env-secret") {
		t.Fatalf("-h: %v\n%s", err, help.String())
	}
	for _, f := range []string{"-superset-username", "-superset-password", "-superset-guest-token-lifetime"} {
		if !strings.Contains(help.String(), f) {
			t.Errorf("help does not list %s", f)
		}
	}
}

func TestSupersetGuestTokenLifetimeMustBePositive(t *testing.T) {
	err := run(context.Background(), []string{"--listen=127.0.0.1:0", "--superset-guest-token-lifetime=0s"}, func(string) string { return "" }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "superset-guest-token-lifetime") {
		t.Fatalf("run = %v", err)
	}
}

// TestSupersetLoginFromEnv logs in with the user the flag names and the
// password the environment gives.
func TestSupersetLoginFromEnv(t *testing.T) {
	url, stop := startRun(t, []string{"--listen=127.0.0.1:0", "--superset-username=granter"},
		map[string]string{"VENDORSIM_SUPERSET_PASSWORD": "env-pass"})
	for password, want := range map[string]int{"env-pass": 200, vendorsim.DefaultSupersetPassword: 401} {
		resp, err := http.Post(url+vendorsim.SupersetLoginPath, "application/json",
			strings.NewReader(`{"username":"granter","password":"`+password+`","provider":"db","refresh":true}`))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("login with %q: status %d, want %d", password, resp.StatusCode, want)
		}
	}
	stop()
}
