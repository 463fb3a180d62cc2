// Package oauth2 obtains tokens from any RFC 6749 token endpoint, for vendors
// whose embed tokens are plain OAuth access tokens (client_credentials or a
// vendor-specific grant). Everything vendor-specific is configuration:
// client authentication, body encoding, scopes, audience and extra parameters.
package oauth2

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// Defaults and values of the provider's enumerated fields.
const (
	// DefaultGrantType is sent when the provider sets no grantType.
	DefaultGrantType = "client_credentials"
	// AuthBasic sends the client credentials as HTTP Basic (the default).
	AuthBasic = "client_secret_basic"
	// AuthPost sends the client credentials in the body.
	AuthPost = "client_secret_post"
	// EncodingForm sends application/x-www-form-urlencoded (the default).
	EncodingForm = "form"
	// EncodingJSON sends application/json, which allows nested parameters.
	EncodingJSON = "json"
)

// reserved are parameters the operator sets from dedicated fields;
// extraParameters cannot replace them.
var reserved = []string{"grant_type", "client_id", "client_secret", "client_assertion", "client_assertion_type", "scope", "audience"}

// errorReasons maps RFC 6749 section 5.2 error codes to condition reasons;
// all of them need a person, so they are permanent.
var errorReasons = map[string]string{
	"invalid_client":         v1alpha1.ReasonVendorUnauthorized,
	"unauthorized_client":    v1alpha1.ReasonVendorUnauthorized,
	"invalid_grant":          v1alpha1.ReasonVendorRejected,
	"invalid_scope":          v1alpha1.ReasonVendorRejected,
	"invalid_request":        v1alpha1.ReasonVendorRejected,
	"unsupported_grant_type": v1alpha1.ReasonVendorRejected,
}

// Provider is the OAuth2 implementation of provider.Provider.
type Provider struct{}

// New returns the OAuth2 provider.
func New() *Provider { return &Provider{} }

// SecretRefs implements provider.Provider: the references of spec.oauth2.
func (p *Provider) SecretRefs(config *v1alpha1.EmbedProviderSpec) []v1alpha1.SecretKeySelector {
	return provider.SecretRefsIn(config.OAuth2)
}

// Validate implements provider.ConfigValidator: a clientCertificate must
// parse and its private key be the certificate's, so the provider's Ready
// condition says so before any request is made.
func (p *Provider) Validate(ctx context.Context, config *v1alpha1.EmbedProviderSpec, creds provider.CredentialReader) error {
	if c := config.OAuth2; c != nil && c.ClientCertificate != nil {
		_, err := provider.ReadClientCertificate(ctx, creds, c.ClientCertificate)
		return err
	}
	return nil
}

// Issue implements provider.Provider.
func (p *Provider) Issue(ctx context.Context, req provider.Request) (provider.Token, error) {
	ctx = provider.WithVendor(ctx, v1alpha1.VendorOAuth2)
	cfg, params := req.Config.OAuth2, req.Params.OAuth2
	if cfg == nil || params == nil {
		return provider.Token{}, provider.Permanent(v1alpha1.ReasonVendorMismatch, "oauth2 provider needs spec.oauth2 on both provider and request")
	}
	call := Call{Config: cfg, Params: params, Field: "spec.oauth2"}
	httpReq, used, err := newClientRequest(ctx, call, req.Credentials, req.Now)
	if err != nil {
		return provider.Token{}, provider.Redact(err, used...)
	}
	resp, err := provider.Do(ctx, req.HTTPClient, httpReq)
	if err != nil {
		return provider.Token{}, provider.Redact(err, used...)
	}
	tok, err := call.ParseResponse(resp, req.Now)
	return tok, provider.Redact(err, used...)
}

// newClientRequest builds the token request of call at now, authenticated
// with the client assertion of its configuration, an assertion signed with
// its certificate, or else its client secret; used lists the credentials
// it carries, in every form errors must not quote.
func newClientRequest(ctx context.Context, call Call, creds provider.CredentialReader, now time.Time) (*http.Request, []string, error) {
	cfg := call.Config
	var assertion string
	var err error
	switch {
	case cfg.ClientAssertion != nil:
		assertion, err = provider.ClientAssertion(ctx, creds, cfg.ClientAssertion)
	case cfg.ClientCertificate != nil:
		var cert provider.ClientCertificate
		if cert, err = provider.ReadClientCertificate(ctx, creds, cfg.ClientCertificate); err == nil {
			assertion, err = cert.Assertion(cfg.ClientID, cfg.TokenURL, now)
		}
	case cfg.ClientSecretSecretRef == nil:
		return nil, nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "%s needs clientSecretSecretRef, clientAssertion or clientCertificate", cmp.Or(call.Field, "spec.oauth2"))
	}
	if err != nil {
		return nil, nil, err
	}
	if assertion != "" {
		httpReq, err := call.NewAssertionRequest(assertion)
		return httpReq, []string{assertion}, err
	}
	raw, err := creds.Read(ctx, *cfg.ClientSecretSecretRef)
	if err != nil {
		return nil, nil, err
	}
	secret := strings.TrimSpace(string(raw))
	httpReq, err := call.NewRequest(secret)
	return httpReq, append([]string{secret}, provider.BasicCredentials(cfg.ClientID, secret)...), err
}

// Call is one token request of an OAuth client: the oauth2 vendor's, and
// the http vendor's client-credentials auth step, which shares its wire
// format, errors and expiry rules.
type Call struct {
	// Config is the client and its parameters; the secret is passed apart.
	Config *v1alpha1.OAuth2Provider
	// Params refine Config's; nil means none.
	Params *v1alpha1.OAuth2Params
	// Method is POST (the default, as RFC 6749 asks) or GET, which sends
	// the parameters in the URL's query for vendors that want that (Domo).
	Method string
	// Field names Config in messages, e.g. "spec.oauth2".
	Field string
}

// NewRequest builds the token request, authenticating with secret.
func (c Call) NewRequest(secret string) (*http.Request, error) {
	params := c.Params
	if params == nil {
		params = &v1alpha1.OAuth2Params{}
	}
	values, err := tokenParams(c.Config, params)
	if err != nil {
		return nil, err
	}
	return newRequest(c.Config, cmp.Or(c.Method, http.MethodPost), values, secret)
}

// NewAssertionRequest builds the token request, authenticating with a JWT
// (RFC 7523 section 2.2): client_id, client_assertion_type and
// client_assertion in the body, whatever Config's clientAuthMethod says.
// Only POST can carry it: GET would put the assertion in the URL.
func (c Call) NewAssertionRequest(assertion string) (*http.Request, error) {
	params := c.Params
	if params == nil {
		params = &v1alpha1.OAuth2Params{}
	}
	if cmp.Or(c.Method, http.MethodPost) != http.MethodPost {
		return nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "a client assertion must be sent with POST: %s would put it in the URL", c.Method)
	}
	values, err := tokenParams(c.Config, params)
	if err != nil {
		return nil, err
	}
	values["client_id"] = c.Config.ClientID
	values["client_assertion_type"] = provider.ClientAssertionType
	values["client_assertion"] = assertion
	httpReq, err := postRequest(c.Config.TokenURL, values, cmp.Or(c.Config.BodyEncoding, EncodingForm))
	if err != nil {
		return nil, err
	}
	httpReq.Header.Set("Accept", "application/json")
	return httpReq, nil
}

// ParseResponse reads the token endpoint's answer. It is pure so it can be
// fuzzed; its errors never quote the body beyond the RFC 6749 error code
// and description.
func (c Call) ParseResponse(resp *provider.Response, now time.Time) (provider.Token, error) {
	return parseToken(resp, now, c.Config.Expiry, cmp.Or(c.Field, "spec.oauth2"))
}

// tokenParams merges the request's parameters over the provider's and adds
// the ones the operator owns. A null extra parameter in the request removes
// the provider's (JSON merge patch semantics).
func tokenParams(cfg *v1alpha1.OAuth2Provider, p *v1alpha1.OAuth2Params) (map[string]any, error) {
	values, err := provider.DecodeObject("the provider's spec.oauth2.extraParameters", cfg.ExtraParameters, reserved...)
	if err != nil {
		return nil, err
	}
	over, err := provider.DecodeObject("the request's spec.oauth2.extraParameters", p.ExtraParameters, reserved...)
	if err != nil {
		return nil, err
	}
	maps.Copy(values, over)
	maps.DeleteFunc(values, func(_ string, v any) bool { return v == nil })
	values["grant_type"] = cmp.Or(cfg.GrantType, DefaultGrantType)
	scopes := p.Scopes
	if len(scopes) == 0 {
		scopes = cfg.Scopes
	}
	if len(scopes) > 0 {
		values["scope"] = strings.Join(scopes, " ")
	}
	if aud := cmp.Or(p.Audience, cfg.Audience); aud != "" {
		values["audience"] = aud
	}
	return values, nil
}

// newRequest encodes values and authenticates the client as configured.
// POST sends the values as the body; GET sends them in the URL's query,
// where a client secret must never go, so GET needs Basic authentication.
func newRequest(cfg *v1alpha1.OAuth2Provider, method string, values map[string]any, secret string) (*http.Request, error) {
	basic := cmp.Or(cfg.ClientAuthMethod, AuthBasic) == AuthBasic
	if !basic {
		if method == http.MethodGet {
			return nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "method GET would send the client secret in the URL; use clientAuthMethod %s", AuthBasic)
		}
		values["client_id"], values["client_secret"] = cfg.ClientID, secret
	}
	var httpReq *http.Request
	var err error
	switch method {
	case http.MethodGet:
		httpReq, err = getRequest(cfg.TokenURL, values)
	case http.MethodPost:
		httpReq, err = postRequest(cfg.TokenURL, values, cmp.Or(cfg.BodyEncoding, EncodingForm))
	default:
		return nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "token request method must be GET or POST, not %q", method)
	}
	if err != nil {
		return nil, err
	}
	httpReq.Header.Set("Accept", "application/json")
	if basic {
		// RFC 6749 section 2.3.1: both parts are form-encoded before Basic.
		creds := url.QueryEscape(cfg.ClientID) + ":" + url.QueryEscape(secret)
		httpReq.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(creds)))
	}
	return httpReq, nil
}

// postRequest sends values as a form or JSON body.
func postRequest(tokenURL string, values map[string]any, encoding string) (*http.Request, error) {
	body, contentType, err := encode(values, encoding)
	if err != nil {
		return nil, err
	}
	httpReq, err := http.NewRequest(http.MethodPost, tokenURL, bytes.NewReader(body))
	if err != nil {
		return nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "invalid oauth2 tokenURL")
	}
	httpReq.Header.Set("Content-Type", contentType)
	return httpReq, nil
}

// getRequest adds values to the token URL's query. Spaces are written as
// %20, not +, since the vendors that want GET document it so.
func getRequest(tokenURL string, values map[string]any) (*http.Request, error) {
	u, err := url.Parse(tokenURL)
	if err != nil || u.Host == "" {
		return nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "invalid oauth2 tokenURL")
	}
	form, err := formValues(values)
	if err != nil {
		return nil, err
	}
	query := u.Query()
	for k, v := range form {
		query[k] = v
	}
	// Encode escapes a literal + as %2B, so every + left is a space.
	u.RawQuery = strings.ReplaceAll(query.Encode(), "+", "%20")
	httpReq, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "invalid oauth2 tokenURL")
	}
	return httpReq, nil
}

// encode writes values as a form or a JSON object. A form carries only
// scalars, so nested extra parameters need the json encoding.
func encode(values map[string]any, encoding string) (body []byte, contentType string, err error) {
	if encoding == EncodingJSON {
		body, err = json.Marshal(values)
		if err != nil {
			return nil, "", provider.Permanent(v1alpha1.ReasonInvalidRequest, "oauth2 request cannot be encoded as JSON")
		}
		return body, "application/json", nil
	}
	form, err := formValues(values)
	if err != nil {
		return nil, "", err
	}
	return []byte(form.Encode()), "application/x-www-form-urlencoded", nil
}

// formValues turns values into form fields; a form carries only scalars.
func formValues(values map[string]any) (url.Values, error) {
	form := url.Values{}
	for _, k := range slices.Sorted(maps.Keys(values)) {
		switch v := values[k].(type) {
		case string:
			form.Set(k, v)
		case json.Number:
			form.Set(k, v.String())
		case bool:
			form.Set(k, strconv.FormatBool(v))
		default:
			return nil, provider.Permanent(v1alpha1.ReasonInvalidRequest,
				"extra parameter %q is an object or array, which only bodyEncoding json can send", k)
		}
	}
	return form, nil
}

// tokenResponse is an RFC 6749 section 5.1 answer, or a section 5.2 error.
type tokenResponse struct {
	AccessToken      string          `json:"access_token"`
	TokenType        string          `json:"token_type"`
	ExpiresIn        json.RawMessage `json:"expires_in"`
	Error            string          `json:"error"`
	ErrorDescription string          `json:"error_description"`
}

// parseToken turns a token endpoint's answer into a Token, or a classified
// error; fallback and field are the configuration's expiry block and name.
func parseToken(resp *provider.Response, now time.Time, fallback *v1alpha1.ExpiryFallback, field string) (provider.Token, error) {
	var out tokenResponse
	decodeErr := provider.DecodeJSON(resp.Body, &out)
	detail := provider.Detail(out.Error, out.ErrorDescription)
	if err := checkStatus(resp, out.Error, detail); err != nil {
		return provider.Token{}, err
	}
	switch {
	case decodeErr != nil:
		return provider.Token{}, decodeErr
	case out.AccessToken == "" && out.Error != "":
		// Some servers answer 200 with an error body.
		return provider.Token{}, classify(provider.Permanent(v1alpha1.ReasonVendorRejected, "vendor answered HTTP %d with an error: %s", resp.Status, detail), out.Error)
	case out.AccessToken == "":
		return provider.Token{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "oauth2 response has no access_token")
	}
	if err := provider.CheckTokenSize("the access_token", out.AccessToken); err != nil {
		return provider.Token{}, err
	}
	exp, err := expiresAt(now, out.ExpiresIn, out.AccessToken, fallback, field)
	if err != nil {
		return provider.Token{}, err
	}
	return provider.Token{Value: out.AccessToken, Type: out.TokenType, IssuedAt: now, ExpiresAt: exp}, nil
}

// expiresAt is when a token issued at now expires: after expires_in when
// the answer has one, else at the token's JWT exp claim, else after the
// configured fallback duration. RFC 6749 only recommends expires_in, so an
// answer without it is valid; with no fallback either, the error names the
// field that would fix it.
func expiresAt(now time.Time, expiresIn json.RawMessage, token string, fallback *v1alpha1.ExpiryFallback, field string) (time.Time, error) {
	d, ok, err := provider.ExpiresIn(expiresIn)
	switch {
	case err != nil:
		return time.Time{}, err
	case ok:
		return now.Add(d), nil
	}
	if exp, ok := provider.JWTExpiry(token); ok {
		return exp, nil
	}
	if fallback != nil && fallback.Duration != nil && fallback.Duration.Duration > 0 {
		return now.Add(fallback.Duration.Duration), nil
	}
	return time.Time{}, provider.Transient(v1alpha1.ReasonInvalidResponse,
		"vendor response has no expires_in and the access token is not a JWT with an exp claim, so its expiry is unknown; set %s.expiry.duration to the lifetime the vendor gives its tokens", field)
}

// checkStatus classifies a non-2xx answer, letting the RFC 6749 error code
// decide the reason of a 4xx, since servers disagree on 400 versus 401.
func checkStatus(resp *provider.Response, code, detail string) error {
	err := provider.CheckStatus(resp, detail)
	if err == nil || resp.Status == http.StatusTooManyRequests || resp.Status == http.StatusRequestTimeout || resp.Status >= 500 {
		return err
	}
	return classify(err, code)
}

// classify sets err's reason from an RFC 6749 error code, when it knows it.
func classify(err error, code string) error {
	if reason, ok := errorReasons[code]; ok {
		e := provider.Classify(err)
		e.Reason, e.Permanent = reason, true
	}
	return err
}
