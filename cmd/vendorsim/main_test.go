package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

func TestRunServesAndShutsDown(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     string
		wantKey string
	}{
		{"key from flag", []string{"--listen", "127.0.0.1:0", "--qrvey-api-key", "flag-key"}, "env-key", "flag-key"},
		{"key from env", []string{"--listen", "127.0.0.1:0"}, "env-key", "env-key"},
		{"demo key", []string{"--listen=127.0.0.1:0"}, "", vendorsim.DefaultQrveyAPIKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pr, pw := io.Pipe()
			done := make(chan error, 1)
			getenv := func(k string) string {
				if k == "VENDORSIM_QRVEY_API_KEY" {
					return tc.env
				}
				return ""
			}
			go func() {
				err := run(ctx, tc.args, getenv, pw)
				_ = pw.Close()
				done <- err
			}()

			logs := bufio.NewReader(pr)
			first, err := logs.ReadString('\n')
			if err != nil {
				t.Fatalf("read log: %v", err)
			}
			_, url, ok := strings.Cut(first, "Vendor simulator listening on ")
			if !ok {
				t.Fatalf("first log line = %q", first)
			}
			url = strings.TrimSpace(url)
			rest := make(chan string, 1)
			go func() { b, _ := io.ReadAll(logs); rest <- string(b) }()

			if resp, err := http.Get(url + "/healthz"); err != nil || resp.StatusCode != 200 {
				t.Fatalf("healthz: %v %v", resp, err)
			} else {
				_ = resp.Body.Close()
			}
			var issued string
			for _, call := range []struct {
				key  string
				want int
			}{{tc.wantKey, 200}, {"wrong", 401}} {
				req, _ := http.NewRequest(http.MethodPost, url+vendorsim.QrveyTokenPath, strings.NewReader(`{"userid":"u","appid":"a"}`))
				req.Header.Set("x-api-key", call.key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var body struct{ Token string }
				_ = json.NewDecoder(resp.Body).Decode(&body)
				_ = resp.Body.Close()
				if resp.StatusCode != call.want {
					t.Fatalf("key %q: status %d, want %d", call.key, resp.StatusCode, call.want)
				}
				if call.want == 200 {
					issued = body.Token
				}
			}

			cancel()
			if err := <-done; err != nil {
				t.Fatalf("run: %v", err)
			}
			all := first + <-rest
			if issued == "" || strings.Contains(all, issued) || strings.Contains(all, tc.wantKey) {
				t.Errorf("logs leak a secret (token %q): %s", issued, all)
			}
			if !strings.Contains(all, "Shutting down vendor simulator") {
				t.Errorf("no shutdown log: %s", all)
			}
		})
	}
}

func TestRunRejectsBadInvocations(t *testing.T) {
	for _, args := range [][]string{{"--nope"}, {"extra"}, {"--listen", "256.0.0.1:1"}} {
		err := run(context.Background(), args, func(string) string { return "" }, io.Discard)
		if err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
	var help strings.Builder
	err := run(context.Background(), []string{"-h"}, func(string) string { return "env-secret" }, &help)
	if !errors.Is(err, flag.ErrHelp) || strings.Contains(help.String(), "env-secret") || !strings.Contains(help.String(), "-qrvey-api-key") {
		t.Errorf("-h: %v\n%s", err, help.String())
	}
}
