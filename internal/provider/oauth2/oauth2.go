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
var reserved = []string{"grant_type", "client_id", "client_secret", "scope", "audience"}

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

// Issue implements provider.Provider.
func (p *Provider) Issue(ctx context.Context, req provider.Request) (provider.Token, error) {
	cfg, params := req.Config.OAuth2, req.Params.OAuth2
	if cfg == nil || params == nil {
		return provider.Token{}, provider.Permanent(v1alpha1.ReasonVendorMismatch, "oauth2 provider needs spec.oauth2 on both provider and request")
	}
	values, err := tokenParams(cfg, params)
	if err != nil {
		return provider.Token{}, err
	}
	raw, err := req.Credentials.Read(ctx, cfg.ClientSecretSecretRef)
	if err != nil {
		return provider.Token{}, err
	}
	secret := strings.TrimSpace(string(raw))
	httpReq, err := newRequest(cfg, values, secret)
	if err != nil {
		return provider.Token{}, err
	}
	resp, err := provider.Do(ctx, req.HTTPClient, httpReq)
	if err != nil {
		return provider.Token{}, err
	}
	tok, err := parseToken(resp, req.Now)
	return tok, provider.Redact(err, append([]string{secret}, provider.BasicCredentials(cfg.ClientID, secret)...)...)
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
func newRequest(cfg *v1alpha1.OAuth2Provider, values map[string]any, secret string) (*http.Request, error) {
	basic := cmp.Or(cfg.ClientAuthMethod, AuthBasic) == AuthBasic
	if !basic {
		values["client_id"], values["client_secret"] = cfg.ClientID, secret
	}
	body, contentType, err := encode(values, cmp.Or(cfg.BodyEncoding, EncodingForm))
	if err != nil {
		return nil, err
	}
	httpReq, err := http.NewRequest(http.MethodPost, cfg.TokenURL, bytes.NewReader(body))
	if err != nil {
		return nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "invalid oauth2 tokenURL")
	}
	httpReq.Header.Set("Content-Type", contentType)
	httpReq.Header.Set("Accept", "application/json")
	if basic {
		// RFC 6749 section 2.3.1: both parts are form-encoded before Basic.
		creds := url.QueryEscape(cfg.ClientID) + ":" + url.QueryEscape(secret)
		httpReq.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(creds)))
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
			return nil, "", provider.Permanent(v1alpha1.ReasonInvalidRequest,
				"extra parameter %q is an object or array, which only bodyEncoding json can send", k)
		}
	}
	return []byte(form.Encode()), "application/x-www-form-urlencoded", nil
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
// error. It is pure so it can be fuzzed; its errors never quote the body
// beyond the RFC 6749 error code and description.
func parseToken(resp *provider.Response, now time.Time) (provider.Token, error) {
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
	exp, err := provider.ExpiresInOrJWT(now, out.ExpiresIn, out.AccessToken)
	if err != nil {
		return provider.Token{}, err
	}
	return provider.Token{Value: out.AccessToken, Type: out.TokenType, IssuedAt: now, ExpiresAt: exp}, nil
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
