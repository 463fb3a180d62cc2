// Package qrvey issues Qrvey embed tokens: an API key buys an opaque,
// encrypted token whose lifetime is the one requested.
package qrvey

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// TokenPath is Qrvey's token endpoint, relative to the instance URL.
const TokenPath = "/devapi/v4/core/login/token" //nolint:gosec // G101: a URL path, not a credential

// reserved are body fields the operator sets; spec.qrvey.extra cannot replace them.
var reserved = []string{"userid", "appid", "clientid", "expiresIn", "permissions"}

// Provider is the Qrvey implementation of provider.Provider.
type Provider struct{}

// New returns the Qrvey provider.
func New() *Provider { return &Provider{} }

// SecretRefs implements provider.Provider: the references of spec.qrvey.
func (p *Provider) SecretRefs(config *v1alpha1.EmbedProviderSpec) []v1alpha1.SecretKeySelector {
	return provider.SecretRefsIn(config.Qrvey)
}

// Issue implements provider.Provider.
func (p *Provider) Issue(ctx context.Context, req provider.Request) (provider.Token, error) {
	ctx = provider.WithVendor(ctx, v1alpha1.VendorQrvey)
	cfg, params := req.Config.Qrvey, req.Params.Qrvey
	if cfg == nil || params == nil {
		return provider.Token{}, provider.Permanent(v1alpha1.ReasonVendorMismatch, "qrvey provider needs spec.qrvey on both provider and request")
	}
	body, err := requestBody(params, req.Lifetime)
	if err != nil {
		return provider.Token{}, err
	}
	apiKey, err := req.Credentials.Read(ctx, cfg.APIKeySecretRef)
	if err != nil {
		return provider.Token{}, err
	}

	httpReq, err := http.NewRequest(http.MethodPost, strings.TrimRight(cfg.URL, "/")+TokenPath, bytes.NewReader(body))
	if err != nil {
		return provider.Token{}, provider.Permanent(v1alpha1.ReasonProviderInvalid, "invalid qrvey url")
	}
	httpReq.Header.Set("Content-Type", "application/json")
	httpReq.Header.Set("Accept", "application/json")
	key := strings.TrimSpace(string(apiKey))
	httpReq.Header.Set("x-api-key", key)

	resp, err := provider.Do(ctx, req.HTTPClient, httpReq)
	if err != nil {
		return provider.Token{}, err
	}
	if err := provider.CheckStatus(resp, provider.ErrorDetail(resp.Body)); err != nil {
		// Qrvey's error bodies are undocumented: never let one echo the key.
		return provider.Token{}, provider.Redact(err, key)
	}
	token, err := ParseResponse(resp.Body)
	if err != nil {
		return provider.Token{}, err
	}
	// The token is opaque: it lives as long as requested, counted from when
	// the request was sent so the recorded expiry is never late.
	return provider.Token{Value: token, IssuedAt: req.Now, ExpiresAt: req.Now.Add(req.Lifetime)}, nil
}

// ParseResponse reads the token from a successful (2xx) Qrvey answer,
// {"token": "..."}. Its errors describe a bad body without quoting it, since
// the body may still hold a token.
func ParseResponse(body []byte) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	if err := provider.DecodeJSON(body, &out); err != nil {
		return "", err
	}
	if out.Token == "" {
		return "", provider.Transient(v1alpha1.ReasonInvalidResponse, "qrvey response has no token")
	}
	return out.Token, nil
}

// requestBody builds Qrvey's JSON body: extra fields first (numbers kept as
// written), then the fields the operator owns.
func requestBody(p *v1alpha1.QrveyParams, lifetime time.Duration) ([]byte, error) {
	body, err := provider.DecodeObject("spec.qrvey.extra", p.Extra, reserved...)
	if err != nil {
		return nil, err
	}
	body["userid"] = p.UserID
	body["appid"] = p.AppID
	if p.ClientID != "" {
		body["clientid"] = p.ClientID
	}
	if p.Permissions != nil && len(p.Permissions.Raw) > 0 {
		if !json.Valid(p.Permissions.Raw) {
			return nil, provider.Permanent(v1alpha1.ReasonInvalidRequest, "spec.qrvey.permissions must be valid JSON")
		}
		body["permissions"] = json.RawMessage(p.Permissions.Raw)
	}
	body["expiresIn"] = FormatExpiresIn(lifetime)
	out, err := json.Marshal(body)
	if err != nil {
		return nil, provider.Permanent(v1alpha1.ReasonInvalidRequest, "spec.qrvey cannot be written as a JSON body")
	}
	return out, nil
}

// FormatExpiresIn writes a lifetime as Qrvey's duration string: whole minutes
// as "60m", anything else in whole seconds (rounded up) as "90s".
func FormatExpiresIn(d time.Duration) string {
	if d >= time.Minute && d%time.Minute == 0 {
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	secs := (d + time.Second - 1) / time.Second
	return fmt.Sprintf("%ds", max(secs, 1))
}
