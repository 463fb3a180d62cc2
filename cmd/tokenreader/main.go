// Command tokenreader is the demo and end-to-end workload: what an app pod
// that consumes an embed token sees. Every interval it reads the token from a
// mounted Secret (keys "token" and "expiresAt") or from an environment
// variable and prints one line with the token's short SHA-256 digest (never
// the token), its remaining lifetime, and, when given the vendor simulator's
// validate URL, whether the vendor still accepts it:
//
//	time=2026-11-21T14:00:02.001Z digest=3f2a9c0b1d4e remaining=85s verdict=valid
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// reading is what one look at the token found; it never holds the token.
type reading struct {
	digest    string
	remaining time.Duration
	hasExpiry bool
	verdict   string
	err       error
}

// String renders the reading as one logfmt line, the format the e2e suite parses.
func (r reading) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "time=%s", time.Now().UTC().Format(time.RFC3339Nano))
	if r.err != nil {
		fmt.Fprintf(&b, " error=%q", r.err.Error())
		return b.String()
	}
	fmt.Fprintf(&b, " digest=%s", r.digest)
	if r.hasExpiry {
		fmt.Fprintf(&b, " remaining=%s", r.remaining.Round(time.Second))
	}
	if r.verdict != "" {
		fmt.Fprintf(&b, " verdict=%s", r.verdict)
	}
	return b.String()
}

// reader produces readings from one source.
type reader struct {
	dir         string
	envVar      string
	validateURL string
	client      *http.Client
}

func main() {
	r := reader{client: &http.Client{Timeout: 2 * time.Second}}
	flag.StringVar(&r.dir, "dir", "", "directory where the token Secret is mounted")
	flag.StringVar(&r.envVar, "env", "", "environment variable that holds the token (instead of -dir)")
	flag.StringVar(&r.validateURL, "validate-url", "", "vendor simulator's /_sim/validate URL; empty: do not validate")
	interval := flag.Duration("interval", 2*time.Second, "time between readings")
	flag.Parse()
	if (r.dir == "") == (r.envVar == "") {
		fmt.Fprintln(os.Stderr, "tokenreader: exactly one of -dir and -env is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		fmt.Println(r.read(ctx))
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (r reader) read(ctx context.Context) reading {
	token, expiresAt, err := r.load()
	if err != nil {
		return reading{err: err}
	}
	rd := reading{digest: provider.Digest(token)}
	if !expiresAt.IsZero() {
		rd.hasExpiry, rd.remaining = true, time.Until(expiresAt)
	}
	if r.validateURL != "" {
		rd.verdict = r.validate(ctx, token)
	}
	return rd
}

// load returns the token and, from a mounted Secret, its expiry.
func (r reader) load() (string, time.Time, error) {
	if r.envVar != "" {
		token := os.Getenv(r.envVar)
		if token == "" {
			return "", time.Time{}, fmt.Errorf("environment variable %s is empty", r.envVar)
		}
		return token, time.Time{}, nil
	}
	token, err := os.ReadFile(filepath.Join(r.dir, v1alpha1.SecretTokenKey))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("reading the token file: %w", err)
	}
	raw, err := os.ReadFile(filepath.Join(r.dir, v1alpha1.SecretExpiresAtKey))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("reading the expiry file: %w", err)
	}
	expiresAt, err := time.Parse(time.RFC3339, strings.TrimSpace(string(raw)))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("parsing the expiry: %w", err)
	}
	return string(token), expiresAt, nil
}

// validate asks the simulator about the token; the token goes in a POST body,
// never in a URL, and the answer is one of valid, expired, unknown, or
// "error" when the simulator cannot be asked.
func (r reader) validate(ctx context.Context, token string) string {
	body, err := json.Marshal(map[string]string{"token": token})
	if err != nil {
		return "error"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.validateURL, bytes.NewReader(body))
	if err != nil {
		return "error"
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return "error"
	}
	defer resp.Body.Close()
	var out struct {
		Validity string `json:"validity"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&out); err != nil || out.Validity == "" {
		return "error"
	}
	return out.Validity
}
