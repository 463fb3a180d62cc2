package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

func TestHelpListsQuickSightFlags(t *testing.T) {
	var help strings.Builder
	err := run(context.Background(), []string{"-h"}, func(string) string { return "env-secret" }, &help)
	if !errors.Is(err, flag.ErrHelp) || strings.Contains(help.String(), "env-secret") || strings.Contains(help.String(), vendorsim.DefaultQuickSightSecretAccessKey) {
		t.Fatalf("-h: %v\n%s", err, help.String())
	}
	for _, f := range []string{"-quicksight-account-id", "-quicksight-region", "-quicksight-access-key-id",
		"-quicksight-secret-access-key", "-quicksight-role-arn", "-quicksight-web-identity-token"} {
		if !strings.Contains(help.String(), f) {
			t.Errorf("help does not list %s", f)
		}
	}
}

// TestQuickSightKeysFromEnv signs a call with the keys the environment
// gives, for the account and region the flags name.
func TestQuickSightKeysFromEnv(t *testing.T) {
	url, stop := startRun(t, []string{"--listen=127.0.0.1:0", "--quicksight-account-id=444455556666", "--quicksight-region=eu-west-1"},
		map[string]string{"VENDORSIM_QUICKSIGHT_ACCESS_KEY_ID": "AKIAENVKEY", "VENDORSIM_QUICKSIGHT_SECRET_ACCESS_KEY": "env-secret"})
	defer stop()
	body := `{"ExperienceConfiguration":{"Dashboard":{"InitialDashboardId":"d1"}},"UserArn":"arn:aws:quicksight:eu-west-1:444455556666:user/default/a"}`
	for secret, want := range map[string]int{"env-secret": http.StatusOK, vendorsim.DefaultQuickSightSecretAccessKey: http.StatusForbidden} {
		req, err := http.NewRequest(http.MethodPost, url+vendorsim.QuickSightRegisteredUserPath("444455556666"), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		sum := sha256.Sum256([]byte(body))
		creds := aws.Credentials{AccessKeyID: "AKIAENVKEY", SecretAccessKey: secret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "quicksight", "eu-west-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("signed with %q: status %d, want %d", secret, resp.StatusCode, want)
		}
	}
}
