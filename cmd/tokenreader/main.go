// Command tokenreader is the demo and end-to-end workload: what an app pod
// that consumes an embed token sees. Every interval it reads the token from a
// mounted Secret (keys "token" and "expiresAt") or from an environment
// variable and prints one line with the token's short SHA-256 digest (never
// the token), its remaining lifetime, and, when given the vendor simulator's
// validate URL, whether the vendor still accepts it:
//
//	time=2026-11-21T14:00:02.001Z digest=3f2a9c0b1d4e remaining=85s verdict=valid
//
// With -endpoint it is instead a backend that asks the operator's token
// endpoint for a per-user token (pkg/tokenclient, with the pod's projected
// token and the published CA) at each reading, and also prints whether the
// endpoint answered from its cache, or the endpoint's refusal:
//
//	time=... digest=3f2a9c0b1d4e remaining=3599s cached=false verdict=valid
//	time=... error="..." status=403 reason=Forbidden
//
// -vary-param NAME appends each reading's number to that parameter's value
// (user=alice becomes alice-1, alice-2, ...), so no cache answers a reading
// and the endpoint really serves every one.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	"github.com/embedtokens/embed-token-operator/pkg/tokenclient"
)

// reading is what one look at the token found; it never holds the token.
type reading struct {
	digest    string
	remaining time.Duration
	hasExpiry bool
	verdict   string
	// cached is set for a token from the endpoint: whether it answered
	// from its cache.
	cached *bool
	err    error
}

// String renders the reading as one logfmt line, the format the e2e suite parses.
func (r reading) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "time=%s", time.Now().UTC().Format(time.RFC3339Nano))
	if r.err != nil {
		fmt.Fprintf(&b, " error=%q", r.err.Error())
		if refusal, ok := errors.AsType[*tokenclient.Error](r.err); ok {
			fmt.Fprintf(&b, " status=%d reason=%s", refusal.StatusCode, refusal.Reason)
		}
		return b.String()
	}
	fmt.Fprintf(&b, " digest=%s", r.digest)
	if r.hasExpiry {
		fmt.Fprintf(&b, " remaining=%s", r.remaining.Round(time.Second))
	}
	if r.cached != nil {
		fmt.Fprintf(&b, " cached=%t", *r.cached)
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
	// endpoint is set in endpoint mode, with the template and parameters
	// to ask for.
	endpoint        *tokenclient.Client
	namespace, tmpl string
	params          map[string]string
	// vary names the parameter that varies per reading; empty: none.
	vary string
}

func main() {
	r := reader{client: &http.Client{Timeout: 2 * time.Second}}
	flag.StringVar(&r.dir, "dir", "", "directory where the token Secret is mounted")
	flag.StringVar(&r.envVar, "env", "", "environment variable that holds the token (instead of -dir)")
	flag.StringVar(&r.validateURL, "validate-url", "", "vendor simulator's /_sim/validate URL; empty: do not validate")
	interval := flag.Duration("interval", 2*time.Second, "time between readings")
	var ep endpointFlags
	flag.StringVar(&ep.url, "endpoint", "", "the operator's token endpoint URL (instead of -dir and -env)")
	flag.StringVar(&ep.template, "template", "", "with -endpoint: the template, NAMESPACE/NAME")
	flag.Var(&ep.params, "param", "with -endpoint: a template parameter, NAME=VALUE (repeatable)")
	flag.StringVar(&ep.tokenFile, "token-file", tokenclient.DefaultTokenFile, "with -endpoint: the projected ServiceAccount token")
	flag.StringVar(&ep.caFile, "ca-file", tokenclient.DefaultCAFile, "with -endpoint: the endpoint's CA bundle")
	flag.StringVar(&ep.vary, "vary-param", "", "with -endpoint: a -param whose value gets each reading's number appended, "+
		"so every reading is an uncached call")
	flag.Parse()
	sources := 0
	for _, set := range []bool{r.dir != "", r.envVar != "", ep.url != ""} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		fmt.Fprintln(os.Stderr, "tokenreader: exactly one of -dir, -env and -endpoint is required")
		os.Exit(2)
	}
	if ep.url != "" {
		if err := r.useEndpoint(ep); err != nil {
			fmt.Fprintln(os.Stderr, "tokenreader:", err)
			os.Exit(2)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for n := 1; ; n++ {
		fmt.Println(r.read(ctx, n))
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// read takes reading number n.
func (r reader) read(ctx context.Context, n int) reading {
	if r.endpoint != nil {
		return r.readEndpoint(ctx, n)
	}
	token, expiresAt, err := r.load()
	if err != nil {
		return reading{err: err}
	}
	return r.reading(ctx, token, expiresAt)
}

// reading describes token, which expires at expiresAt (zero: unknown).
func (r reader) reading(ctx context.Context, token string, expiresAt time.Time) reading {
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
	defer func() { _ = resp.Body.Close() }() // read-only
	var out struct {
		Validity string `json:"validity"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&out); err != nil || out.Validity == "" {
		return "error"
	}
	return out.Validity
}
