// Package httpprovider issues tokens from any vendor whose token endpoint is
// one HTTP call with a JSON answer, described declaratively in spec.http: a
// body template, headers, and paths to the token and its expiry. It covers
// vendors without a dedicated package (ThoughtSpot, say) with no code change.
// An optional auth step (auth.go) first obtains an access token, cached per
// provider, for vendors that issue embed tokens only to an authenticated
// client. docs/vendors/http.md describes the path syntax, template
// functions, expiry rules and the auth step.
package httpprovider

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// headerNameRE is an RFC 9110 field name.
var headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// Provider is the generic HTTP implementation of provider.Provider and
// provider.ConfigValidator. Its only state is the cache of auth-step access
// tokens, so many embed tokens cost one auth call; the zero value is ready
// to use, and a Provider must not be copied.
type Provider struct {
	auth authCache
}

// New returns the generic HTTP provider with an empty auth token cache.
func New() *Provider { return &Provider{} }

// Validate implements provider.ConfigValidator: it parses the body template
// and the paths and reads every Secret the headers and template name, so
// mistakes show on the provider's Ready condition before any request uses it.
func (p *Provider) Validate(ctx context.Context, config *v1alpha1.EmbedProviderSpec, creds provider.CredentialReader) error {
	if config.HTTP == nil {
		return nil
	}
	if _, err := compile(config.HTTP, "spec.http"); err != nil {
		return err
	}
	for _, ref := range p.SecretRefs(config) {
		if _, err := creds.Read(ctx, ref); err != nil {
			return err
		}
	}
	return nil
}

// SecretRefs implements provider.Provider: every Secret key the provider
// reads, header valueFrom references, the auth step's client secret and the
// secret calls of the body templates.
func (p *Provider) SecretRefs(config *v1alpha1.EmbedProviderSpec) []v1alpha1.SecretKeySelector {
	refs := provider.SecretRefsIn(config.HTTP)
	if config.HTTP != nil {
		body, _ := BodySecretRefs(config.HTTP.Body) // a bad template is Validate's to report
		refs = append(refs, body...)
	}
	if config.HTTP != nil && config.HTTP.Auth != nil && config.HTTP.Auth.Login != nil {
		body, _ := BodySecretRefs(config.HTTP.Auth.Login.Body)
		refs = append(refs, body...)
	}
	return refs
}

// Issue implements provider.Provider.
func (p *Provider) Issue(ctx context.Context, req provider.Request) (provider.Token, error) {
	ctx = provider.WithVendor(ctx, v1alpha1.VendorHTTP)
	cfg, params := req.Config.HTTP, req.Params.HTTP
	if cfg == nil || params == nil {
		return provider.Token{}, provider.Permanent(v1alpha1.ReasonVendorMismatch, "http provider needs spec.http on both provider and request")
	}
	c, err := compile(cfg, "spec.http")
	if err != nil {
		return provider.Token{}, err
	}
	var secrets []string // every credential and auth token, redacted from any error
	keep := func(s ...string) { secrets = append(secrets, s...) }
	read := func(ref v1alpha1.SecretKeySelector) (string, error) {
		v, err := req.Credentials.Read(ctx, ref)
		if err != nil {
			return "", err
		}
		s := strings.TrimSpace(string(v))
		keep(s)
		return s, nil
	}
	data := TemplateData{Vars: params.Variables, LifetimeSeconds: int64(math.Ceil(req.Lifetime.Seconds()))}
	var tok provider.Token
	if c.auth == nil {
		tok, _, err = c.issue(ctx, req, data, read)
	} else {
		tok, err = p.issueChained(ctx, c, req, data, read, keep)
	}
	return tok, provider.Redact(err, secrets...)
}

// issue sends one request and reads the answer, returning the HTTP status
// too (0 without an answer); Issue redacts its errors.
func (c *compiled) issue(ctx context.Context, req provider.Request, data TemplateData, read SecretFunc) (provider.Token, int, error) {
	httpReq, err := c.request(data, read)
	if err != nil {
		return provider.Token{}, 0, err
	}
	return c.send(ctx, req.HTTPClient, httpReq, req.Now)
}

// send sends a built request and reads the answer.
func (c *compiled) send(ctx context.Context, client *http.Client, httpReq *http.Request, now time.Time) (provider.Token, int, error) {
	resp, err := provider.Do(ctx, client, httpReq)
	if err != nil {
		return provider.Token{}, 0, err
	}
	if err := provider.CheckStatus(resp, provider.ErrorDetail(resp.Body)); err != nil {
		return provider.Token{}, resp.Status, err
	}
	tok, err := c.parseResponse(resp.Body, now)
	return tok, resp.Status, err
}

// request builds the HTTP request: rendered body, then default headers,
// then the configured ones, which win, then the auth step's token.
func (c *compiled) request(data TemplateData, read SecretFunc) (*http.Request, error) {
	body, err := renderBody(c.spec.Body, c.field+".body", data, read)
	if err != nil {
		return nil, err
	}
	header, err := c.headers(read, len(body) > 0)
	if err != nil {
		return nil, err
	}
	if c.auth != nil && c.auth.header != "" {
		header.Set(c.auth.header, c.auth.prefix+data.Auth.AccessToken)
	}
	if len(body) > 0 && strings.Contains(header.Get("Content-Type"), "json") && !json.Valid(body) {
		return nil, provider.Permanent(v1alpha1.ReasonInvalidRequest,
			"%s.body rendered to invalid JSON; quote string values (\"{{ .Vars.x }}\") or use the json function", c.field)
	}
	var r io.Reader
	if len(body) > 0 {
		r = bytes.NewReader(body)
	}
	httpReq, err := http.NewRequest(c.method, c.spec.URL, r)
	if err != nil {
		return nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "invalid %s.url", c.field)
	}
	httpReq.Header = header
	return httpReq, nil
}

// headers returns the request headers with values read from Secrets.
func (c *compiled) headers(read SecretFunc, hasBody bool) (http.Header, error) {
	h := http.Header{"Accept": {"application/json"}}
	if hasBody {
		h.Set("Content-Type", "application/json")
	}
	for _, hd := range c.spec.Headers {
		v := ""
		if hd.Value != nil {
			v = *hd.Value
		} else {
			var err error
			if v, err = read(hd.ValueFrom.SecretKeyRef); err != nil {
				return nil, err
			}
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, provider.Permanent(v1alpha1.ReasonInvalidCredentials, "header %s: the value contains a line break or NUL", hd.Name)
		}
		h.Set(hd.Name, v)
	}
	return h, nil
}

// compiled is an HTTPProvider spec whose paths are parsed and whose rules are
// checked, ready to build requests and read answers. An auth step's login
// request is compiled the same way, with field naming it in messages.
type compiled struct {
	spec                              *v1alpha1.HTTPProvider
	field                             string // spec.http or spec.http.auth.login
	method                            string
	token, expiresIn, expiresAt, succ *Path
	// fields are the TemplateData fields the body template reads.
	fields map[string]bool
	// auth is the first step of a chained flow; nil without spec.http.auth.
	auth *authStep
	// fallback applies when the answer states no expiry.
	fallback func(token string, now time.Time) (time.Time, error)
}

// compile checks an HTTPProvider spec beyond the CRD schema and parses its
// paths, body template and auth step. Errors are permanent ProviderInvalid.
func compile(spec *v1alpha1.HTTPProvider, field string) (*compiled, error) {
	c := &compiled{spec: spec, field: field, method: cmp.Or(spec.Method, http.MethodPost)}
	c.fallback = c.specFallback
	invalid := func(format string, args ...any) (*compiled, error) {
		return nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, field+": "+format, args...)
	}
	if !validURL(spec.URL) {
		return invalid("url must be an absolute http(s) URL")
	}
	if c.method != http.MethodGet && c.method != http.MethodPost && c.method != http.MethodPut {
		return invalid("method must be GET, POST or PUT")
	}
	if err := checkHeaders(spec.Headers); err != nil {
		return invalid("%v", err)
	}
	if err := c.parsePaths(); err != nil {
		return invalid("%v", err)
	}
	if err := checkExpiry(spec); err != nil {
		return invalid("%v", err)
	}
	if spec.SuccessValue != "" && spec.SuccessPath == "" {
		return invalid("successValue needs successPath")
	}
	var err error
	if c.fields, err = checkBody(spec.Body, field+".body"); err != nil {
		return nil, err
	}
	if spec.Auth != nil {
		if c.auth, err = compileAuth(spec, c.fields[fieldAuth]); err != nil {
			return nil, err
		}
	} else if c.fields[fieldAuth] {
		return invalid("the body uses .Auth but spec.http.auth is not set")
	}
	return c, nil
}

// validURL reports whether s is an absolute http(s) URL.
func validURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// checkHeaders checks header names and sources; values may be secret, so
// they are checked only when read.
func checkHeaders(headers []v1alpha1.HTTPHeader) error {
	for _, h := range headers {
		if !headerNameRE.MatchString(h.Name) {
			return fmt.Errorf("header name %q is not a valid HTTP field name", h.Name)
		}
		if (h.Value == nil) == (h.ValueFrom == nil) {
			return fmt.Errorf("header %s must set exactly one of value and valueFrom", h.Name)
		}
	}
	return nil
}

// parsePaths parses every configured path; optional ones stay nil.
func (c *compiled) parsePaths() error {
	for _, p := range []struct {
		expr string
		dst  **Path
	}{{c.spec.TokenPath, &c.token}, {c.spec.ExpiresInPath, &c.expiresIn}, {c.spec.ExpiresAtPath, &c.expiresAt}, {c.spec.SuccessPath, &c.succ}} {
		if p.expr == "" && p.dst != &c.token {
			continue
		}
		parsed, err := ParsePath(p.expr)
		if err != nil {
			return err
		}
		*p.dst = &parsed
	}
	return nil
}

// checkExpiry requires some way to learn the expiry, and only one path.
func checkExpiry(spec *v1alpha1.HTTPProvider) error {
	fallback := spec.Expiry != nil && (spec.Expiry.FromJWT != nil && *spec.Expiry.FromJWT || spec.Expiry.Duration != nil)
	switch {
	case spec.ExpiresInPath != "" && spec.ExpiresAtPath != "":
		return errors.New("expiresInPath and expiresAtPath are mutually exclusive")
	case spec.ExpiresAtFormat != "" && spec.ExpiresAtPath == "":
		return errors.New("expiresAtFormat needs expiresAtPath")
	case spec.ExpiresInPath == "" && spec.ExpiresAtPath == "" && !fallback:
		return errors.New("set expiresInPath, expiresAtPath or expiry, or the token's expiry is unknown")
	case spec.Expiry != nil && spec.Expiry.Duration != nil && spec.Expiry.Duration.Duration <= 0:
		return errors.New("expiry.duration must be positive")
	}
	switch spec.ExpiresAtFormat {
	case provider.ExpiresAtDetect, provider.ExpiresAtEpochSeconds, provider.ExpiresAtEpochMilliseconds, provider.ExpiresAtRFC3339:
		return nil
	}
	return fmt.Errorf("expiresAtFormat %q is not EpochSeconds, EpochMilliseconds or RFC3339", spec.ExpiresAtFormat)
}

// parseResponse reads a 2xx answer: the optional success check, the token at
// tokenPath and its expiry. Errors never quote the token or other response
// values: a misconfigured path might point at the token.
func (c *compiled) parseResponse(body []byte, now time.Time) (provider.Token, error) {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil || dec.More() {
		return provider.Token{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "vendor response is not JSON (%s)", provider.DescribeBody(body))
	}
	if err := c.checkSuccess(doc, body); err != nil {
		return provider.Token{}, err
	}
	v, ok := c.token.Lookup(doc)
	token, isString := v.(string)
	switch {
	case !ok || v == nil:
		return provider.Token{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "vendor response has no token at tokenPath %s (%s)", c.token, provider.DescribeBody(body))
	case !isString:
		return provider.Token{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "the value at tokenPath %s is a %s, not a string", c.token, provider.JSONKind(v))
	case token == "":
		return provider.Token{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "the token at tokenPath %s is empty", c.token)
	}
	if err := provider.CheckTokenSize(fmt.Sprintf("the token at tokenPath %s", c.token), token); err != nil {
		return provider.Token{}, err
	}
	if err := provider.CheckJWTClaims(fmt.Sprintf("the token at tokenPath %s", c.token), token, c.spec.RequiredJWTClaims); err != nil {
		return provider.Token{}, err
	}
	exp, err := c.expiry(doc, token, now)
	if err != nil {
		return provider.Token{}, err
	}
	return provider.Token{Value: token, IssuedAt: now, ExpiresAt: exp}, nil
}

// checkSuccess applies successPath/successValue, for vendors that answer
// HTTP 200 on failure.
func (c *compiled) checkSuccess(doc any, body []byte) error {
	if c.succ == nil {
		return nil
	}
	if v, ok := c.succ.Lookup(doc); ok && matches(v, c.spec.SuccessValue) {
		return nil
	}
	msg := fmt.Sprintf("vendor reported failure: the value at successPath %s is not %q", c.succ, c.spec.SuccessValue)
	if d := provider.ErrorDetail(body); d != "" {
		msg += ": " + d
	}
	return provider.Permanent(v1alpha1.ReasonVendorRejected, "%s", msg)
}

// matches compares a decoded JSON value with a configured text: strings
// exactly, booleans as true/false (any case), numbers by value (so "1"
// matches 1.0), null as "null". Objects and lists never match.
func matches(v any, want string) bool {
	want = strings.TrimSpace(want)
	switch x := v.(type) {
	case string:
		return x == want
	case bool:
		return strings.EqualFold(strconv.FormatBool(x), want)
	case json.Number:
		a, errA := strconv.ParseFloat(x.String(), 64)
		b, errB := strconv.ParseFloat(want, 64)
		return x.String() == want || errA == nil && errB == nil && a == b
	case nil:
		return want == "null"
	}
	return false
}

// expiry reads expiresInPath or expiresAtPath when the response has that
// value, else applies the configured fallback.
func (c *compiled) expiry(doc any, token string, now time.Time) (time.Time, error) {
	if v, ok := lookup(c.expiresIn, doc); ok {
		raw, _ := json.Marshal(v) // v came from JSON, so it encodes again
		d, _, err := provider.ExpiresIn(raw)
		if err != nil {
			return time.Time{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "the value at expiresInPath %s is not a positive number of seconds", c.expiresIn)
		}
		return now.Add(d), nil
	}
	if v, ok := lookup(c.expiresAt, doc); ok {
		t, err := provider.ParseExpiresAt(v, c.spec.ExpiresAtFormat)
		if err != nil {
			return time.Time{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "the value at expiresAtPath %s: %v", c.expiresAt, err)
		}
		return t, nil
	}
	return c.fallback(token, now)
}

// specFallback applies spec.http.expiry when the response states no expiry.
func (c *compiled) specFallback(token string, now time.Time) (time.Time, error) {
	e := c.spec.Expiry
	switch {
	case e != nil && e.FromJWT != nil && *e.FromJWT:
		if exp, ok := provider.JWTExpiry(token); ok {
			return exp, nil
		}
		return time.Time{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "expiry.fromJWT is set but the token is not a JWT with an exp claim")
	case e != nil && e.Duration != nil:
		return now.Add(e.Duration.Duration), nil
	}
	path := cmp.Or(c.spec.ExpiresInPath, c.spec.ExpiresAtPath)
	return time.Time{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "vendor response has no expiry at %s and spec.http.expiry sets no fallback", path)
}

// lookup is Path.Lookup for an optional path; null counts as absent.
func lookup(p *Path, doc any) (any, bool) {
	if p == nil {
		return nil, false
	}
	v, ok := p.Lookup(doc)
	return v, ok && v != nil
}
