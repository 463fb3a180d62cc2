// Package qlikcloud issues Qlik Cloud OAuth access tokens. An OAuth client
// impersonates the request's user (or, without a user, acts as itself with
// client_credentials); Qlik decides the lifetime and caps how many live
// tokens one user may hold, which is why this provider can also revoke.
package qlikcloud

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// Qlik Cloud's OAuth endpoints and grants, relative to the tenant URL.
const (
	// TokenPath issues access tokens.
	TokenPath = "/oauth/token" //nolint:gosec // G101: a URL path, not a credential
	// RevokePath revokes them (RFC 7009).
	RevokePath = "/oauth/revoke"
	// ImpersonationGrant issues a token acting as the user in user_lookup.
	ImpersonationGrant = "urn:qlik:oauth:user-impersonation"
	// ClientCredentialsGrant issues a token for the OAuth client itself.
	ClientCredentialsGrant = "client_credentials"
	// DefaultScope is requested when the provider sets no scope.
	DefaultScope = "user_default"
	// DefaultUserLookupField matches the user by their IdP subject.
	DefaultUserLookupField = "subject"
)

// limitWords mark an error as Qlik's per-user token limit rather than a
// plain refusal; Qlik's exact wording is not documented, so any of them counts.
var limitWords = []string{"maximum", "too many", "limit"}

// Provider is the Qlik Cloud implementation of provider.Provider and
// provider.Revoker.
type Provider struct{}

// New returns the Qlik Cloud provider.
func New() *Provider { return &Provider{} }

// SecretRefs implements provider.Provider: the references of spec.qlikCloud.
func (p *Provider) SecretRefs(config *v1alpha1.EmbedProviderSpec) []v1alpha1.SecretKeySelector {
	return provider.SecretRefsIn(config.QlikCloud)
}

// Issue implements provider.Provider.
func (p *Provider) Issue(ctx context.Context, req provider.Request) (provider.Token, error) {
	ctx = provider.WithVendor(ctx, v1alpha1.VendorQlikCloud)
	cfg, params := req.Config.QlikCloud, req.Params.QlikCloud
	if cfg == nil || params == nil {
		return provider.Token{}, provider.Permanent(v1alpha1.ReasonVendorMismatch, "qlikCloud provider needs spec.qlikCloud on both provider and request")
	}
	body := map[string]any{"client_id": cfg.ClientID, "grant_type": ClientCredentialsGrant, "scope": cmp.Or(cfg.Scope, DefaultScope)}
	if u := params.UserLookup; u != nil {
		body["grant_type"] = ImpersonationGrant
		body["user_lookup"] = map[string]string{"field": cmp.Or(u.Field, DefaultUserLookupField), "value": u.Value}
	}
	resp, secret, err := post(ctx, req, TokenPath, body)
	if err != nil {
		return provider.Token{}, err
	}
	tok, err := parseToken(resp, req.Now)
	return tok, provider.Redact(err, secret)
}

// Revoke implements provider.Revoker, so a replaced token stops counting
// against the user's token limit.
func (p *Provider) Revoke(ctx context.Context, req provider.Request, token string) error {
	ctx = provider.WithVendor(ctx, v1alpha1.VendorQlikCloud)
	if req.Config.QlikCloud == nil {
		return provider.Permanent(v1alpha1.ReasonVendorMismatch, "qlikCloud provider needs spec.qlikCloud")
	}
	if !req.Config.QlikCloud.RevokeReplacedTokens {
		return nil
	}
	body := map[string]any{"client_id": req.Config.QlikCloud.ClientID, "token": token, "token_type_hint": "access_token"}
	resp, secret, err := post(ctx, req, RevokePath, body)
	if err != nil {
		return err
	}
	return provider.Redact(checkStatus(resp), secret, token)
}

// post sends body, with the client secret added, as JSON to the tenant.
func post(ctx context.Context, req provider.Request, path string, body map[string]any) (*provider.Response, string, error) {
	cfg := req.Config.QlikCloud
	raw, err := req.Credentials.Read(ctx, cfg.ClientSecretSecretRef)
	if err != nil {
		return nil, "", err
	}
	secret := strings.TrimSpace(string(raw))
	body["client_secret"] = secret
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, "", provider.Permanent(v1alpha1.ReasonInvalidRequest, "qlikCloud request cannot be encoded")
	}
	httpReq, err := http.NewRequest(http.MethodPost, strings.TrimRight(cfg.TenantURL, "/")+path, bytes.NewReader(payload))
	if err != nil {
		return nil, "", provider.Permanent(v1alpha1.ReasonProviderInvalid, "invalid qlikCloud tenantURL")
	}
	httpReq.Header.Set("Content-Type", "application/json")
	httpReq.Header.Set("Accept", "application/json")
	resp, err := provider.Do(ctx, req.HTTPClient, httpReq)
	return resp, secret, err
}

// tokenResponse is Qlik's token answer; expiry comes as either field.
type tokenResponse struct {
	AccessToken string          `json:"access_token"`
	TokenType   string          `json:"token_type"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
	ExpiresAt   string          `json:"expires_at"`
}

// parseToken turns a token answer into a Token, or a classified error. It is
// pure so it can be fuzzed; its errors never quote the body.
func parseToken(resp *provider.Response, now time.Time) (provider.Token, error) {
	if err := checkStatus(resp); err != nil {
		return provider.Token{}, err
	}
	var out tokenResponse
	if err := provider.DecodeJSON(resp.Body, &out); err != nil {
		return provider.Token{}, err
	}
	if out.AccessToken == "" {
		return provider.Token{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "qlikCloud response has no access_token")
	}
	exp, err := expiry(out, now)
	if err != nil {
		return provider.Token{}, err
	}
	return provider.Token{Value: out.AccessToken, Type: out.TokenType, IssuedAt: now, ExpiresAt: exp}, nil
}

// expiry prefers expires_in, counted from when the request was sent so the
// recorded expiry is never late, and falls back to expires_at.
func expiry(out tokenResponse, now time.Time) (time.Time, error) {
	d, ok, err := provider.ExpiresIn(out.ExpiresIn)
	switch {
	case err != nil:
		return time.Time{}, err
	case ok:
		return now.Add(d), nil
	}
	if out.ExpiresAt == "" {
		return time.Time{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "qlikCloud response has neither expires_in nor expires_at, so the token's expiry is unknown")
	}
	at, err := provider.ParseExpiresAt(out.ExpiresAt, provider.ExpiresAtRFC3339)
	if err != nil {
		return time.Time{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "qlikCloud response has an expires_at that is not an RFC 3339 time")
	}
	return at, nil
}

// checkStatus classifies a failed answer: a non-2xx one, or a 2xx one that
// carries Qlik's errors[] (a tenant or a gateway in front of it may report a
// refusal that way). It tells Qlik's per-user token limit apart from other
// refusals: that needs revocation, not new credentials.
func checkStatus(resp *provider.Response) error {
	qe, found := firstError(resp.Body)
	detail := errorDetail(qe, found, resp.Body)
	if resp.Status >= 200 && resp.Status < 300 {
		if !found {
			return nil
		}
		// The status the error states, if any, classifies it.
		if qe.status == http.StatusForbidden && qe.tokenLimit() {
			return tokenLimitError(detail)
		}
		return errorInSuccess(resp, qe.status, detail)
	}
	if resp.Status == http.StatusForbidden && qe.tokenLimit() {
		return tokenLimitError(detail)
	}
	return provider.CheckStatus(resp, detail)
}

// tokenLimitError is Qlik's per-user token limit, which revoking old tokens
// (or waiting for them to expire) lifts, unlike other refusals.
func tokenLimitError(detail string) error {
	return provider.Permanent(v1alpha1.ReasonTokenLimitReached,
		"qlikCloud refuses more tokens for this user (HTTP 403: %s); revoke old tokens, set revokeReplacedTokens, or wait for them to expire", detail)
}

// errorInSuccess classifies errors[] in a 2xx answer by the status the error
// states, or as a permanent refusal when it states none or a non-error one.
func errorInSuccess(resp *provider.Response, status int, detail string) error {
	msg := fmt.Sprintf("qlikCloud answered HTTP %d with an error", resp.Status)
	if status >= 400 && status < 600 {
		msg += fmt.Sprintf(" of status %d", status)
	}
	if detail != "" {
		msg += ": " + detail
	}
	if status < 400 || status >= 600 {
		return provider.Permanent(v1alpha1.ReasonVendorRejected, "%s", msg)
	}
	e := provider.Classify(provider.CheckStatus(&provider.Response{Status: status, Header: resp.Header}, ""))
	e.Message = msg
	return e
}

// qlikError is the first entry of Qlik's {"errors":[{code,title,detail,status}]}.
type qlikError struct {
	code, title, text string
	// status is the HTTP status the error states, 0 when none.
	status int
}

// firstError reads the first entry of a body's errors[], leniently: found is
// true for any non-empty errors list, even one whose fields have odd types,
// since the list alone says the call failed.
func firstError(body []byte) (e qlikError, found bool) {
	var list struct {
		Errors []json.RawMessage `json:"errors"`
	}
	if json.Unmarshal(body, &list) != nil || len(list.Errors) == 0 {
		return qlikError{}, false
	}
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(list.Errors[0], &fields) // odd entries still count, without detail
	str := func(key string) string {
		var s string
		_ = json.Unmarshal(fields[key], &s)
		return s
	}
	e = qlikError{code: str("code"), title: str("title"), text: str("detail")}
	status := str("status") // Qlik sends it as a string; some APIs as a number
	if status == "" {
		status = string(fields["status"])
	}
	e.status, _ = strconv.Atoi(strings.TrimSpace(status))
	return e, true
}

// detail joins the error's code, title and detail into one short line.
func (e qlikError) detail() string { return provider.Detail(e.code, e.title, e.text) }

// tokenLimit reports whether the error is Qlik's per-user token limit.
func (e qlikError) tokenLimit() bool {
	text := strings.ToLower(e.code + " " + e.title + " " + e.text)
	for _, w := range limitWords {
		if strings.Contains(text, w) {
			return true
		}
	}
	return false
}

// errorDetail is the one line of vendor text an error message quotes: Qlik's
// first errors[] entry, or, for a body not in Qlik's format (a proxy, or an
// OAuth-style error), its error or message field.
func errorDetail(qe qlikError, found bool, body []byte) string {
	if found {
		return qe.detail()
	}
	return provider.ErrorDetail(body)
}
