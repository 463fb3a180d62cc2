// Package superset issues Apache Superset guest tokens for embedded
// dashboards. A Superset user allowed to grant them logs in through
// Superset's security API; its access token, a CSRF token and the session
// cookie that goes with it then buy one guest token per request. Logins are
// cached per provider until shortly before the access token expires, so
// many requests on one provider cost one login.
package superset

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// Superset's security API, relative to the provider's url.
const (
	// LoginPath trades a user's password for an access token.
	LoginPath = "/api/v1/security/login"
	// CSRFPath returns a CSRF token and sets the session cookie it belongs to.
	CSRFPath = "/api/v1/security/csrf_token/"
	// GuestTokenPath issues guest tokens.
	GuestTokenPath = "/api/v1/security/guest_token/"
	// DefaultAuthProvider logs in as one of Superset's own users.
	DefaultAuthProvider = "db"
	// DefaultResourceType is the only resource Superset grants guest tokens for.
	DefaultResourceType = "dashboard"
)

// minSecretCookie is the shortest cookie value redacted from messages: a
// session is long, while redacting a short value (a language, a flag) would
// cut it out of every word that holds it.
const minSecretCookie = 8

// maxCachedLogins bounds the login cache: one entry per provider object, so
// a cluster with more Superset providers than this logs in more often but
// never holds more.
const maxCachedLogins = 256

// Provider is the Superset implementation of provider.Provider. Unlike most
// vendors it keeps state: the cache of logins, which is safe for concurrent
// use and holds nothing a person can read.
type Provider struct {
	logins *loginCache
}

// New returns a Superset provider with an empty login cache.
func New() *Provider { return &Provider{logins: newLoginCache(maxCachedLogins)} }

// SecretRefs implements provider.Provider: the references of spec.superset.
func (p *Provider) SecretRefs(config *v1alpha1.EmbedProviderSpec) []v1alpha1.SecretKeySelector {
	return provider.SecretRefsIn(config.Superset)
}

// Issue implements provider.Provider: a login (cached), a CSRF token and a
// guest token. A cached login Superset no longer accepts (HTTP 401) is
// dropped and the call is made once more with a new one.
func (p *Provider) Issue(ctx context.Context, req provider.Request) (provider.Token, error) {
	ctx = provider.WithVendor(ctx, v1alpha1.VendorSuperset)
	cfg, params := req.Config.Superset, req.Params.Superset
	if cfg == nil || params == nil {
		return provider.Token{}, provider.Permanent(v1alpha1.ReasonVendorMismatch, "superset provider needs spec.superset on both provider and request")
	}
	body, err := guestBody(params)
	if err != nil {
		return provider.Token{}, err
	}
	raw, err := req.Credentials.Read(ctx, cfg.PasswordSecretRef)
	if err != nil {
		return provider.Token{}, err
	}
	f := &flow{req: req, base: strings.TrimRight(cfg.URL, "/"), username: cfg.Username,
		authProvider: cfg.Provider, password: strings.TrimSpace(string(raw))}
	if f.authProvider == "" {
		f.authProvider = DefaultAuthProvider
	}
	f.secrets = append(f.secrets, f.password)
	tok, err := f.issue(ctx, p.logins, body)
	return tok, provider.Redact(err, f.secrets...)
}

// flow is one Issue call. secrets collects every value it learns that must
// not reach a message: the password, access tokens, the CSRF token, cookie
// values and the guest token.
type flow struct {
	req                          provider.Request
	base, username, authProvider string
	password                     string
	secrets                      []string
}

func (f *flow) issue(ctx context.Context, logins *loginCache, body []byte) (provider.Token, error) {
	key := logins.key(f.req.HTTPClient, f.base, f.username, f.authProvider, f.password)
	access, cached, err := logins.get(ctx, key, f.req.Now, f.login)
	if err != nil {
		return provider.Token{}, err
	}
	f.secrets = append(f.secrets, access)
	tok, err := f.guest(ctx, access, body)
	if !cached || !unauthorized(err) {
		return tok, err
	}
	// Superset refused a cached login (revoked, a secret key rotated, a
	// restart with another key): forget it and try once with a new one.
	logins.drop(key, access)
	if access, _, err = logins.get(ctx, key, f.req.Now, f.login); err != nil {
		return provider.Token{}, err
	}
	f.secrets = append(f.secrets, access)
	return f.guest(ctx, access, body)
}

// login calls LoginPath. Its error is shared by concurrent callers of the
// same key, which hold the same password, so it is redacted here.
func (f *flow) login(ctx context.Context) (login, error) {
	body, err := loginBody(f.username, f.password, f.authProvider)
	if err != nil {
		return login{}, err
	}
	resp, err := f.call(ctx, http.MethodPost, LoginPath, "", body, nil)
	if err != nil {
		return login{}, provider.Redact(stepError("login", err), f.password)
	}
	l, err := parseLogin(resp, f.req.Now)
	return l, provider.Redact(err, f.password, l.accessToken)
}

// guest gets a CSRF token and its session cookie, then the guest token.
func (f *flow) guest(ctx context.Context, access string, body []byte) (provider.Token, error) {
	resp, err := f.call(ctx, http.MethodGet, CSRFPath, access, nil, nil)
	if err != nil {
		return provider.Token{}, stepError("CSRF token", err)
	}
	csrf, cookies, err := parseCSRF(resp)
	f.secrets = append(f.secrets, csrf)
	for _, c := range cookies {
		if len(c.Value) >= minSecretCookie {
			f.secrets = append(f.secrets, c.Value)
		}
	}
	if err != nil {
		return provider.Token{}, err
	}
	resp, err = f.call(ctx, http.MethodPost, GuestTokenPath, access, body, func(r *http.Request) {
		r.Header.Set("X-CSRFToken", csrf)
		// Flask-WTF refuses a CSRF-protected call over https without a
		// same-origin Referer.
		r.Header.Set("Referer", f.base+"/")
		for _, c := range cookies {
			r.AddCookie(c)
		}
	})
	if err != nil {
		return provider.Token{}, stepError("guest token", err)
	}
	tok, err := parseGuest(resp, f.req.Now)
	f.secrets = append(f.secrets, tok.Value)
	return tok, err
}

// call sends one request to Superset through the provider's client, with
// the access token as a Bearer token when there is one, and classifies a
// non-2xx answer by its status and Superset's message.
func (f *flow) call(ctx context.Context, method, path, access string, body []byte, edit func(*http.Request)) (*provider.Response, error) {
	httpReq, err := http.NewRequest(method, f.base+path, bodyReader(body))
	if err != nil {
		return nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "invalid superset url")
	}
	httpReq.Header.Set("Accept", "application/json")
	if body != nil {
		httpReq.Header.Set("Content-Type", "application/json")
	}
	if access != "" {
		httpReq.Header.Set("Authorization", "Bearer "+access)
	}
	if edit != nil {
		edit(httpReq)
	}
	resp, err := provider.Do(ctx, f.req.HTTPClient, httpReq)
	if err != nil {
		return nil, err
	}
	if err := provider.CheckStatus(resp, errorDetail(resp.Body)); err != nil {
		return nil, &statusError{status: resp.Status, err: err}
	}
	return resp, nil
}

// statusError is a classified non-2xx answer that remembers its status, so
// a refused access token (401) is told apart from a refused permission (403).
type statusError struct {
	status int
	err    error
}

func (e *statusError) Error() string { return e.err.Error() }

func (e *statusError) Unwrap() error { return e.err }

// stepError names the call that failed in a classified error's message, so
// "HTTP 400" says whether the login, the CSRF token or the guest token
// was refused.
func stepError(step string, err error) error {
	var e *provider.Error
	if errors.As(err, &e) {
		e.Message = "Superset " + step + ": " + e.Message
		return err // keeps a statusError around e
	}
	return &provider.Error{Reason: v1alpha1.ReasonVendorUnavailable, Message: "Superset " + step + " failed", Err: err}
}

// unauthorized reports whether err is Superset refusing the access token.
func unauthorized(err error) bool {
	var se *statusError
	return errors.As(err, &se) && se.status == http.StatusUnauthorized
}

// expiry is when a JWT stops being valid by its unverified exp claim, or
// false when it has none: Superset's tokens state no lifetime elsewhere.
func expiry(token string, now time.Time) (time.Time, bool) {
	exp, ok := provider.JWTExpiry(token)
	return exp, ok && exp.After(now)
}
