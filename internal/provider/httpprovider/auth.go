package httpprovider

// The auth step of a chained flow (spec.http.auth): one call that returns an
// access token, which the main request carries in a header or its body. The
// token is cached per provider (authcache.go), so ten embed tokens cost one
// auth call; a 401 to the main request drops it and tries once more.

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"k8s.io/utils/ptr"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/oauth2"
)

// authField names the auth block in messages.
const authField = "spec.http.auth"

// authStep is a compiled spec.http.auth: exactly one of login and call is
// set, and header (when not empty) is where the main request carries the
// token, after prefix.
type authStep struct {
	login          *compiled
	call           *oauth2.Call
	header, prefix string
}

// compileAuth checks spec.Auth beyond the CRD schema. bodyUsesAuth says
// whether the main body template prints .Auth, the token's other way in.
func compileAuth(spec *v1alpha1.HTTPProvider, bodyUsesAuth bool) (*authStep, error) {
	a := spec.Auth
	invalid := func(format string, args ...any) (*authStep, error) {
		return nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, authField+": "+format, args...)
	}
	step := &authStep{}
	if a.Header != nil {
		step.header, step.prefix = cmp.Or(a.Header.Name, "Authorization"), a.Header.Prefix
		if !headerNameRE.MatchString(step.header) {
			return invalid("header name %q is not a valid HTTP field name", step.header)
		}
		if strings.ContainsAny(step.prefix, "\r\n\x00") {
			return invalid("header prefix contains a line break or NUL")
		}
		for _, h := range spec.Headers {
			if strings.EqualFold(h.Name, step.header) {
				return invalid("header %s is also set in spec.http.headers; set it in one place", h.Name)
			}
		}
	} else if !bodyUsesAuth {
		return invalid("the access token is not used: set header, or print {{ .Auth.AccessToken }} in spec.http.body")
	}
	var err error
	switch {
	case (a.ClientCredentials == nil) == (a.Login == nil):
		return invalid("set exactly one of clientCredentials and login")
	case a.ClientCredentials != nil:
		step.call, err = compileClientCredentials(a.ClientCredentials)
	default:
		step.login, err = compileLogin(a.Login)
	}
	if err != nil {
		return nil, err
	}
	return step, nil
}

// compileClientCredentials turns the block into the oauth2 vendor's call.
func compileClientCredentials(cc *v1alpha1.HTTPAuthClientCredentials) (*oauth2.Call, error) {
	const field = authField + ".clientCredentials"
	method := cmp.Or(cc.Method, http.MethodPost)
	switch {
	case !validURL(cc.TokenURL):
		return nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "%s: tokenURL must be an absolute http(s) URL", field)
	case method != http.MethodGet && method != http.MethodPost:
		return nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "%s: method must be GET or POST", field)
	case method == http.MethodGet && cmp.Or(cc.ClientAuthMethod, oauth2.AuthBasic) != oauth2.AuthBasic:
		return nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "%s: method GET sends the parameters in the URL, so it needs clientAuthMethod %s", field, oauth2.AuthBasic)
	}
	if err := checkAuthExpiry(cc.Expiry, field); err != nil {
		return nil, err
	}
	return &oauth2.Call{Method: method, Field: field, Config: &v1alpha1.OAuth2Provider{
		TokenURL: cc.TokenURL, ClientID: cc.ClientID, ClientSecretSecretRef: &cc.ClientSecretSecretRef,
		ClientAuthMethod: cc.ClientAuthMethod, Scopes: cc.Scopes, Audience: cc.Audience, Expiry: cc.Expiry,
	}}, nil
}

// compileLogin compiles the login request like a main request whose body
// may read Secrets and nothing else: its token is shared by every request.
func compileLogin(l *v1alpha1.HTTPAuthLogin) (*compiled, error) {
	const field = authField + ".login"
	if err := checkAuthExpiry(l.Expiry, field); err != nil {
		return nil, err
	}
	spec := &v1alpha1.HTTPProvider{URL: l.URL, Method: l.Method, Headers: l.Headers, Body: l.Body,
		TokenPath: l.TokenPath, ExpiresInPath: l.ExpiresInPath, Expiry: &v1alpha1.ExpiryFallback{FromJWT: ptr.To(true)}}
	c, err := compile(spec, field)
	if err != nil {
		return nil, err
	}
	if c.fields[fieldVars] || c.fields[fieldLifetime] || c.fields[fieldAuth] {
		return nil, provider.Permanent(v1alpha1.ReasonProviderInvalid,
			"%s.body may only read Secrets, not .Vars, .LifetimeSeconds or .Auth: its token is shared by every request of the provider", field)
	}
	c.fallback = func(token string, now time.Time) (time.Time, error) { return authFallback(token, now, l.Expiry, field) }
	return c, nil
}

// checkAuthExpiry refuses what the CRD refuses: an expiry fallback must be
// fromJWT: true or a positive duration.
func checkAuthExpiry(e *v1alpha1.ExpiryFallback, field string) error {
	if e != nil && (e.FromJWT != nil && !*e.FromJWT || e.Duration != nil && e.Duration.Duration <= 0 || (e.FromJWT == nil) == (e.Duration == nil)) {
		return provider.Permanent(v1alpha1.ReasonProviderInvalid, "%s.expiry must set fromJWT: true or a positive duration", field)
	}
	return nil
}

// authFallback is the expiry of a login token whose answer has no value at
// expiresInPath: its JWT exp claim, else the configured duration.
func authFallback(token string, now time.Time, e *v1alpha1.ExpiryFallback, field string) (time.Time, error) {
	if exp, ok := provider.JWTExpiry(token); ok {
		return exp, nil
	}
	if e != nil && e.Duration != nil {
		return now.Add(e.Duration.Duration), nil
	}
	return time.Time{}, provider.Transient(v1alpha1.ReasonInvalidResponse,
		"the login answer states no expiry and its token is not a JWT with an exp claim; set expiresInPath or %s.expiry.duration", field)
}

// prepare builds the auth request, reading its Secrets with read and
// passing every credential form to keep for redaction. key identifies the
// token the request would get: the provider's whole spec and the values of
// the Secrets read, so a changed spec or a rotated credential never reuses
// a cached token.
func (a *authStep) prepare(config *v1alpha1.EmbedProviderSpec, read SecretFunc, keep func(...string)) (*http.Request, string, error) {
	var values []string
	record := func(ref v1alpha1.SecretKeySelector) (string, error) {
		v, err := read(ref)
		values = append(values, v)
		return v, err
	}
	var httpReq *http.Request
	var err error
	if a.call != nil {
		var secret string
		if secret, err = record(*a.call.Config.ClientSecretSecretRef); err != nil {
			return nil, "", err
		}
		keep(provider.BasicCredentials(a.call.Config.ClientID, secret)...)
		httpReq, err = a.call.NewRequest(secret)
	} else {
		httpReq, err = a.login.request(TemplateData{}, record)
	}
	if err != nil {
		return nil, "", err
	}
	return httpReq, cacheKey(config, values), nil
}

// cacheKey hashes the spec and the Secret values, each length-prefixed so
// no two lists hash alike.
func cacheKey(config *v1alpha1.EmbedProviderSpec, values []string) string {
	h := sha256.New()
	spec, _ := json.Marshal(config) // a spec decoded from JSON always encodes
	for _, part := range append([]string{string(spec)}, values...) {
		_ = binary.Write(h, binary.BigEndian, uint64(len(part))) // hashes never fail to write
		h.Write([]byte(part))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fetch sends a prepared auth request and reads its token.
func (a *authStep) fetch(ctx context.Context, client *http.Client, httpReq *http.Request, now time.Time) (provider.Token, error) {
	if a.login != nil {
		tok, _, err := a.login.send(ctx, client, httpReq, now)
		return tok, err
	}
	resp, err := provider.Do(ctx, client, httpReq)
	if err != nil {
		return provider.Token{}, err
	}
	return a.call.ParseResponse(resp, now)
}

// issueChained obtains the auth token, from the cache or one auth call
// shared by every concurrent request with the same key, then sends the main
// request with it. A 401 to the main request drops the token from the
// cache; when the token came from the cache, both calls are tried once more.
func (p *Provider) issueChained(ctx context.Context, c *compiled, req provider.Request, data TemplateData, read SecretFunc, keep func(...string)) (provider.Token, error) {
	for attempt := 0; ; attempt++ {
		httpReq, key, err := c.auth.prepare(req.Config, read, keep)
		if err != nil {
			return provider.Token{}, authError(err)
		}
		token, cached, err := p.auth.token(ctx, req.ProviderNamespace, key, req.Now, func(ctx context.Context) (provider.Token, error) {
			return c.auth.fetch(ctx, req.HTTPClient, httpReq, req.Now)
		})
		if err != nil {
			return provider.Token{}, authError(err)
		}
		keep(token)
		data.Auth = &AuthData{AccessToken: token}
		tok, status, err := c.issue(ctx, req, data, read)
		if status == http.StatusUnauthorized {
			p.auth.drop(req.ProviderNamespace, key, token)
			if cached && attempt == 0 {
				continue
			}
		}
		return tok, err
	}
}

// authError says that the auth step failed, keeping the error's class. It
// returns a copy: concurrent requests share one auth call's error, and each
// redacts its own.
func authError(err error) error {
	e := *provider.Classify(err)
	if !strings.HasPrefix(e.Message, authField) {
		e.Message = authField + ": " + e.Message
	}
	return &e
}
