package tokenclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"k8s.io/utils/clock"
	"k8s.io/utils/lru"
)

// Defaults for Options, matching the mounts the operator's docs show: one
// projected volume at /var/run/secrets/embedtokens.io holding the
// ServiceAccount token and the embedtokens-ca.crt ConfigMap's ca.crt.
const (
	// DefaultTokenFile is where the pod's projected ServiceAccount token of
	// audience embedtokens.io is mounted.
	DefaultTokenFile = "/var/run/secrets/embedtokens.io/token" //nolint:gosec // G101: a file path, not a credential
	// DefaultCAFile is where the operator's CA (ConfigMap embedtokens-ca.crt,
	// key ca.crt) is mounted.
	DefaultCAFile = "/var/run/secrets/embedtokens.io/ca.crt"
	// DefaultMaxAttempts bounds the calls one Token makes when the endpoint
	// answers 429 or 503 with Retry-After.
	DefaultMaxAttempts = 3
	// DefaultMaxRetryAfter is the longest Retry-After the client waits; a
	// longer one is returned to the caller, whose page view cannot wait.
	DefaultMaxRetryAfter = 10 * time.Second
	// DefaultMaxCacheEntries bounds the tokens kept in memory, one per
	// (namespace, template, parameters).
	DefaultMaxCacheEntries = 10000
	// RefreshFloor is the least lifetime a token served from the client's
	// cache has left: the cache fetches a new token when less than a third
	// of a token's lifetime, or this, is left.
	RefreshFloor = 30 * time.Second
)

// Bounds on what the client reads, so a misbehaving endpoint or mount cannot
// make it allocate without limit.
const (
	maxTokenFileBytes = 64 << 10
	maxCAFileBytes    = 1 << 20
	maxAnswerBytes    = 1 << 20
	maxErrorBytes     = 16 << 10
)

// Options configure a Client. Only Endpoint is required.
type Options struct {
	// Endpoint is the endpoint's base URL, https://<service>.<namespace>.svc:8443.
	Endpoint string
	// TokenFile is the projected ServiceAccount token (audience
	// embedtokens.io), re-read on every call; DefaultTokenFile when empty.
	TokenFile string
	// TokenSource, when set, is called for each call instead of reading
	// TokenFile, for callers that hold the token in memory (the kubectl
	// plugin mints one per run).
	TokenSource func(ctx context.Context) (string, error)
	// CAData, when set, is the PEM CA certificates used instead of CAFile.
	CAData []byte
	// CAFile holds the PEM CA certificates the endpoint's certificate must
	// chain to; DefaultCAFile when empty. It is the only trust the client
	// uses, and it is re-read when its content changes.
	CAFile string
	// HTTPClient supplies the timeout and transport settings. Its Transport
	// must be nil or an *http.Transport; the client clones it and sets the
	// CA file's certificates as its only roots.
	HTTPClient *http.Client
	// Clock measures token lifetimes and Retry-After waits; the real clock
	// when nil.
	Clock clock.Clock
	// MinValidFor is sent with each call, so the endpoint's shared cache
	// answers only with a token that has at least this long left; it also
	// raises the client's own refresh point. Zero leaves the endpoint's
	// default (a third of the lifetime).
	MinValidFor time.Duration
	// MaxAttempts bounds the calls per Token; DefaultMaxAttempts when zero.
	MaxAttempts int
	// MaxRetryAfter is the longest Retry-After waited for;
	// DefaultMaxRetryAfter when zero.
	MaxRetryAfter time.Duration
	// MaxCacheEntries bounds the in-memory cache (least recently used
	// entries go first); DefaultMaxCacheEntries when zero.
	MaxCacheEntries int
}

// Token is one answer of the endpoint. Its String form shows the digest
// only, so logging a Token never leaks it.
type Token struct {
	// Value is the vendor's token, to hand to the browser's embedding SDK.
	Value string
	// ExpiresAt is when the vendor stops accepting the token.
	ExpiresAt time.Time
	// Digest identifies the token in logs and status without revealing it.
	Digest string
	// Cached reports whether the endpoint answered from its shared cache.
	Cached bool
}

// String shows the token's digest and expiry, never the token.
func (t Token) String() string {
	return fmt.Sprintf("token digest=%s expiresAt=%s", t.Digest, t.ExpiresAt.UTC().Format(time.RFC3339))
}

// GoString keeps %#v from printing the token.
func (t Token) GoString() string { return t.String() }

// Error is a refusal from the endpoint, with its HTTP status and the reason
// it gave (InvalidParameters, Forbidden, RequestDenied, TemplateNotReady,
// RateLimited, or a vendor reason), so callers can branch with errors.As.
type Error struct {
	// StatusCode is the HTTP status, 400 to 504.
	StatusCode int
	// Reason is the endpoint's machine-readable reason; may be empty for 401
	// and 404 answers from proxies.
	Reason string
	// Message is the endpoint's explanation for humans.
	Message string
	// RetryAfter is the endpoint's Retry-After, zero when it sent none.
	RetryAfter time.Duration
}

// Error renders status, reason and message; the endpoint never puts a
// token or credential in them.
func (e *Error) Error() string {
	s := fmt.Sprintf("token endpoint answered %d", e.StatusCode)
	if e.Reason != "" {
		s += " " + e.Reason
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Client calls the token endpoint and caches its tokens in memory. It is
// safe for concurrent use; build one per process.
type Client struct {
	opts  Options
	base  *url.URL
	clock clock.Clock
	calls singleflight.Group
	cache *lru.Cache
	mu    sync.Mutex
	caPEM []byte
	httpc *http.Client
	// joined, when set by tests, is called once a caller waits on an
	// endpoint call, its own or a shared one.
	joined func()
}

// New checks opts and returns a Client. It reads the CA file once to fail
// early on a missing mount.
func New(opts Options) (*Client, error) {
	if opts.Endpoint == "" {
		return nil, errors.New("tokenclient: Options.Endpoint is required")
	}
	base, err := url.Parse(opts.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("tokenclient: parsing Options.Endpoint: %w", err)
	}
	if base.Scheme != "https" || base.Host == "" {
		return nil, fmt.Errorf("tokenclient: Options.Endpoint must be an https URL with a host, not %q", base.Redacted())
	}
	if base.User != nil || base.RawQuery != "" || base.Fragment != "" {
		return nil, errors.New("tokenclient: Options.Endpoint must not carry user info, a query or a fragment")
	}
	if opts.HTTPClient != nil && opts.HTTPClient.Transport != nil {
		if _, ok := opts.HTTPClient.Transport.(*http.Transport); !ok {
			return nil, fmt.Errorf("tokenclient: Options.HTTPClient.Transport must be an *http.Transport, not %T", opts.HTTPClient.Transport)
		}
	}
	if opts.TokenFile == "" {
		opts.TokenFile = DefaultTokenFile
	}
	if opts.CAFile == "" {
		opts.CAFile = DefaultCAFile
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if opts.MaxCacheEntries <= 0 {
		opts.MaxCacheEntries = DefaultMaxCacheEntries
	}
	if opts.MinValidFor < 0 {
		return nil, errors.New("tokenclient: Options.MinValidFor must not be negative")
	}
	c := &Client{opts: opts, base: base, clock: opts.Clock, cache: lru.New(opts.MaxCacheEntries)}
	if _, err := c.httpClient(); err != nil {
		return nil, err
	}
	return c, nil
}

// cached is a token in the client's cache with the time it was received.
type cached struct {
	token    Token
	received time.Time
}

// fresh reports whether the cached token still has enough life for a page
// view: more than a third of its lifetime, RefreshFloor and MinValidFor.
func (e cached) fresh(now time.Time, minValidFor time.Duration) bool {
	left := e.token.ExpiresAt.Sub(now)
	need := max(e.token.ExpiresAt.Sub(e.received)/3, RefreshFloor, minValidFor)
	return left > need
}

// Token returns a token of template in namespace for params, from the
// client's cache while it is fresh, else from the endpoint. Concurrent
// identical calls share one endpoint call.
func (c *Client) Token(ctx context.Context, namespace, template string, params map[string]string) (Token, error) {
	key, err := cacheKey(namespace, template, params)
	if err != nil {
		return Token{}, err
	}
	if v, ok := c.cache.Get(key); ok && v.(cached).fresh(c.clock.Now(), c.opts.MinValidFor) {
		return v.(cached).token, nil
	}
	ch := c.calls.DoChan(key, func() (any, error) {
		// The shared call outlives a cancelled first caller, bounded by
		// its deadline or sharedCallTimeout; every caller still stops
		// waiting when its own context ends.
		shared, cancel := sharedContext(ctx)
		defer cancel()
		t, err := c.Fetch(shared, namespace, template, params)
		if err != nil {
			return Token{}, err
		}
		c.cache.Add(key, cached{token: t, received: c.clock.Now()})
		return t, nil
	})
	if c.joined != nil {
		c.joined()
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			return Token{}, r.Err
		}
		return r.Val.(Token), nil
	case <-ctx.Done():
		return Token{}, fmt.Errorf("tokenclient: waiting for a token of %s/%s: %w", namespace, template, ctx.Err())
	}
}

// sharedCallTimeout bounds an endpoint call shared by concurrent callers
// when the first caller's context has no deadline.
const sharedCallTimeout = 30 * time.Second

// sharedContext keeps ctx's values and deadline but not its cancellation.
func sharedContext(ctx context.Context) (context.Context, context.CancelFunc) {
	shared := context.WithoutCancel(ctx)
	if deadline, ok := ctx.Deadline(); ok {
		return context.WithDeadline(shared, deadline)
	}
	return context.WithTimeout(shared, sharedCallTimeout)
}

// Forget drops the cached token of (namespace, template, params), e.g. when
// the vendor refused it.
func (c *Client) Forget(namespace, template string, params map[string]string) {
	if key, err := cacheKey(namespace, template, params); err == nil {
		c.cache.Remove(key)
	}
}

// Fetch asks the endpoint for a token, bypassing the client's cache; use it
// for templates whose vendor tokens are single-use (cache: None). It
// retries 429 and 503 answers after their Retry-After.
func (c *Client) Fetch(ctx context.Context, namespace, template string, params map[string]string) (Token, error) {
	if namespace == "" || template == "" {
		return Token{}, errors.New("tokenclient: namespace and template are required")
	}
	u := c.base.JoinPath("apis/embedtokens.io/v1alpha1/namespaces", namespace, "embedtokentemplates", template, "token")
	body, err := json.Marshal(requestBody{Parameters: params, MinValidFor: durationString(c.opts.MinValidFor)})
	if err != nil {
		return Token{}, fmt.Errorf("tokenclient: encoding the parameters: %w", err)
	}
	for attempt := 1; ; attempt++ {
		t, err := c.call(ctx, u.String(), body)
		var e *Error
		if err == nil || !errors.As(err, &e) || !retryable(e) || attempt >= c.opts.MaxAttempts || e.RetryAfter > c.opts.MaxRetryAfter {
			return t, err
		}
		select {
		case <-c.clock.After(e.RetryAfter):
		case <-ctx.Done():
			return Token{}, fmt.Errorf("tokenclient: waiting %s to retry after %w: %w", e.RetryAfter, e, ctx.Err())
		}
	}
}

// retryable reports whether the answer asks to call again later.
func retryable(e *Error) bool {
	return (e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusServiceUnavailable) && e.RetryAfter > 0
}

// requestBody is the endpoint's request body.
type requestBody struct {
	Parameters  map[string]string `json:"parameters,omitempty"`
	MinValidFor string            `json:"minValidFor,omitempty"`
}

// answer is the endpoint's 200 body.
type answer struct {
	Token       string    `json:"token"`
	ExpiresAt   time.Time `json:"expiresAt"`
	TokenDigest string    `json:"tokenDigest"`
	Cached      bool      `json:"cached"`
}

// refusal is the endpoint's error body.
type refusal struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// call makes one POST with the current projected token.
func (c *Client) call(ctx context.Context, target string, body []byte) (Token, error) {
	sa, err := c.bearer(ctx)
	if err != nil {
		return Token{}, err
	}
	hc, err := c.httpClient()
	if err != nil {
		return Token{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return Token{}, fmt.Errorf("tokenclient: building the request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+sa)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return Token{}, fmt.Errorf("tokenclient: calling the token endpoint: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return Token{}, refusalOf(resp, c.clock.Now())
	}
	var a answer
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswerBytes)).Decode(&a); err != nil {
		return Token{}, fmt.Errorf("tokenclient: decoding the endpoint's answer: %w", err)
	}
	if a.Token == "" || a.ExpiresAt.IsZero() {
		return Token{}, errors.New("tokenclient: the endpoint's answer lacks token or expiresAt")
	}
	return Token{Value: a.Token, ExpiresAt: a.ExpiresAt, Digest: a.TokenDigest, Cached: a.Cached}, nil
}

// bearer returns the current ServiceAccount token.
func (c *Client) bearer(ctx context.Context) (string, error) {
	if c.opts.TokenSource != nil {
		sa, err := c.opts.TokenSource(ctx)
		if err != nil {
			return "", fmt.Errorf("tokenclient: getting the ServiceAccount token: %w", err)
		}
		if sa = strings.TrimSpace(sa); sa == "" {
			return "", errors.New("tokenclient: the token source returned an empty token")
		}
		return sa, nil
	}
	data, err := readBounded(c.opts.TokenFile, maxTokenFileBytes)
	if err != nil {
		return "", fmt.Errorf("tokenclient: reading the ServiceAccount token: %w", err)
	}
	sa := strings.TrimSpace(string(data))
	if sa == "" {
		return "", fmt.Errorf("tokenclient: the ServiceAccount token file %s is empty", c.opts.TokenFile)
	}
	return sa, nil
}

// refusalOf reads a non-200 answer into an *Error.
func refusalOf(resp *http.Response, now time.Time) *Error {
	e := &Error{StatusCode: resp.StatusCode}
	var r refusal
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	if json.Unmarshal(data, &r) == nil {
		e.Reason, e.Message = r.Reason, r.Message
	}
	if e.Reason == "" && e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), now)
	return e
}

// retryAfter reads a Retry-After header, in seconds or as an HTTP date;
// zero when absent, unreadable or past.
func retryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if s, err := strconv.ParseInt(value, 10, 32); err == nil {
		return time.Duration(max(s, 0)) * time.Second
	}
	if at, err := http.ParseTime(value); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}

// httpClient returns the HTTP client trusting the CA file's current
// content, building a new one when the content changed.
func (c *Client) httpClient() (*http.Client, error) {
	pem := c.opts.CAData
	if pem == nil {
		var err error
		if pem, err = readBounded(c.opts.CAFile, maxCAFileBytes); err != nil {
			return nil, fmt.Errorf("tokenclient: reading the CA file: %w", err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.httpc != nil && bytes.Equal(pem, c.caPEM) {
		return c.httpc, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("tokenclient: the CA holds no PEM certificate")
	}
	hc := &http.Client{}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if c.opts.HTTPClient != nil {
		*hc = *c.opts.HTTPClient
		if t, ok := c.opts.HTTPClient.Transport.(*http.Transport); ok {
			transport = t.Clone()
		}
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if transport.TLSClientConfig != nil {
		tlsConfig = transport.TLSClientConfig.Clone()
	}
	tlsConfig.RootCAs = pool
	tlsConfig.InsecureSkipVerify = false
	transport.TLSClientConfig = tlsConfig
	hc.Transport = transport
	if c.httpc != nil {
		c.httpc.CloseIdleConnections()
	}
	c.httpc, c.caPEM = hc, pem
	return hc, nil
}

// readBounded reads at most limit bytes of path, refusing larger files.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path) //nolint:gosec // G304: path is the client's configured token or CA file
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}

// cacheKey is the canonical key of a call: namespace, template and the
// parameters sorted by name, JSON-encoded so no value can forge another key.
func cacheKey(namespace, template string, params map[string]string) (string, error) {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, 0, 2+2*len(names))
	parts = append(parts, namespace, template)
	for _, k := range names {
		parts = append(parts, k, params[k])
	}
	key, err := json.Marshal(parts)
	if err != nil {
		return "", fmt.Errorf("tokenclient: encoding the cache key: %w", err)
	}
	return string(key), nil
}

// durationString renders d for the request body, "" for zero.
func durationString(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return d.String()
}
