// Package boldbi issues Bold BI embed tokens: a site's embed secret buys a
// JWT access token for one user, optionally limited to one dashboard and
// narrowed by data source filters, dashboard parameters and custom attributes.
package boldbi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// Provider is the Bold BI implementation of provider.Provider.
type Provider struct{}

// New returns the Bold BI provider.
func New() *Provider { return &Provider{} }

// SecretRefs implements provider.Provider: the references of spec.boldBI.
func (p *Provider) SecretRefs(config *v1alpha1.EmbedProviderSpec) []v1alpha1.SecretKeySelector {
	return provider.SecretRefsIn(config.BoldBI)
}

// AuthorizeURL is the embed authorize endpoint of a site, e.g.
// https://host/bi/api/site/site1/embed/authorize, built here so the URL rule
// lives in one place.
func AuthorizeURL(serverURL, siteIdentifier string) string {
	return strings.TrimRight(serverURL, "/") + "/api/" + strings.Trim(siteIdentifier, "/") + "/embed/authorize"
}

// Issue implements provider.Provider.
func (p *Provider) Issue(ctx context.Context, req provider.Request) (provider.Token, error) {
	ctx = provider.WithVendor(ctx, v1alpha1.VendorBoldBI)
	cfg, params := req.Config.BoldBI, req.Params.BoldBI
	if cfg == nil || params == nil {
		return provider.Token{}, provider.Permanent(v1alpha1.ReasonVendorMismatch, "boldBI provider needs spec.boldBI on both provider and request")
	}
	secret, err := req.Credentials.Read(ctx, cfg.EmbedSecretSecretRef)
	if err != nil {
		return provider.Token{}, err
	}
	embedSecret := strings.TrimSpace(string(secret))
	body, err := requestBody(cfg, params, embedSecret)
	if err != nil {
		return provider.Token{}, err
	}
	httpReq, err := http.NewRequest(http.MethodPost, AuthorizeURL(cfg.ServerURL, cfg.SiteIdentifier), bytes.NewReader(body))
	if err != nil {
		return provider.Token{}, provider.Permanent(v1alpha1.ReasonProviderInvalid, "invalid boldBI serverURL or siteIdentifier")
	}
	httpReq.Header.Set("Content-Type", "application/json")
	httpReq.Header.Set("Accept", "application/json")

	resp, err := provider.Do(ctx, req.HTTPClient, httpReq)
	if err != nil {
		return provider.Token{}, err
	}
	if err := provider.CheckStatus(resp, provider.ErrorDetail(resp.Body)); err != nil {
		return provider.Token{}, provider.Redact(err, embedSecret)
	}
	tok, err := ParseResponse(resp.Body, req.Now)
	return tok, provider.Redact(err, embedSecret)
}

// authorizeBody is Bold BI's embed authorize request; its keys are lowercase
// on the wire.
type authorizeBody struct {
	Email               string      `json:"email"`
	EmbedSecret         string      `json:"embedsecret"`
	ServerURL           string      `json:"serverurl"`
	SiteIdentifier      string      `json:"siteidentifier"`
	Dashboard           *dashboard  `json:"dashboard,omitempty"`
	DatasourceFilters   []nameValue `json:"datasourcefilters,omitempty"`
	DashboardParameters []nameValue `json:"dashboardparameters,omitempty"`
	CustomAttributes    []nameValue `json:"customattributes,omitempty"`
}

type dashboard struct {
	ID string `json:"id"`
}

type nameValue struct {
	Name string `json:"name"`
	// Value is the spec's JSON as written, so numbers keep their literal
	// form on the wire (1001 stays 1001, not "1001" or 1001.0).
	Value    json.RawMessage `json:"value"`
	Operator string          `json:"operator,omitempty"`
}

// requestBody builds the JSON body, checking that every list value is one
// Bold BI accepts.
func requestBody(cfg *v1alpha1.BoldBIProvider, p *v1alpha1.BoldBIParams, embedSecret string) ([]byte, error) {
	if p.Email == "" {
		return nil, provider.Permanent(v1alpha1.ReasonInvalidRequest, "spec.boldBI.email is required")
	}
	b := authorizeBody{
		Email:          p.Email,
		EmbedSecret:    embedSecret,
		ServerURL:      strings.TrimRight(cfg.ServerURL, "/"),
		SiteIdentifier: strings.Trim(cfg.SiteIdentifier, "/"),
	}
	if p.DashboardID != "" {
		b.Dashboard = &dashboard{ID: p.DashboardID}
	}
	var err error
	if b.DatasourceFilters, err = nameValues("datasourceFilters", p.DatasourceFilters); err != nil {
		return nil, err
	}
	if b.DashboardParameters, err = nameValues("dashboardParameters", p.DashboardParameters); err != nil {
		return nil, err
	}
	if b.CustomAttributes, err = nameValues("customAttributes", p.CustomAttributes); err != nil {
		return nil, err
	}
	return json.Marshal(b)
}

// nameValues converts one spec list, naming the offending entry on error.
func nameValues(field string, in []v1alpha1.NameValue) ([]nameValue, error) {
	out := make([]nameValue, 0, len(in))
	for i, nv := range in {
		if !scalarOrScalars(nv.Value.Raw) {
			return nil, provider.Permanent(v1alpha1.ReasonInvalidRequest,
				"spec.boldBI.%s[%d] (%s): value must be a string, number or boolean, or a list of them", field, i, nv.Name)
		}
		out = append(out, nameValue{Name: nv.Name, Value: json.RawMessage(nv.Value.Raw), Operator: nv.Operator})
	}
	return out, nil
}

// scalarOrScalars reports whether raw is one JSON value that is a string,
// number or boolean, or a list of them: what Bold BI's filters, parameters
// and attributes take (its row-level security examples filter on lists of
// numeric IDs).
func scalarOrScalars(raw []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return false
	}
	list, isList := v.([]any)
	if !isList {
		return scalar(v)
	}
	for _, item := range list {
		if !scalar(item) {
			return false
		}
	}
	return true
}

func scalar(v any) bool {
	switch v.(type) {
	case string, json.Number, bool:
		return true
	}
	return false
}

// authorizeResponse is Bold BI's envelope. Data stays raw because failures
// may carry null or a message there.
type authorizeResponse struct {
	APIStatus *bool           `json:"ApiStatus"`
	Data      json.RawMessage `json:"Data"`
}

// authorizeData is the success payload. The locale-formatted .expires is
// deliberately ignored: its format depends on the server's culture.
type authorizeData struct {
	AccessToken string          `json:"access_token"`
	TokenType   string          `json:"token_type"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
}

// ParseResponse reads an embed authorize answer received with HTTP 2xx. Bold
// BI reports failures with ApiStatus false even at HTTP 200, so success needs
// ApiStatus true and an access token. The expiry is Data.expires_in (number
// or numeric string) counted from now, else the token's exp claim. Errors
// never quote the token.
func ParseResponse(body []byte, now time.Time) (provider.Token, error) {
	var out authorizeResponse
	if err := provider.DecodeJSON(body, &out); err != nil {
		return provider.Token{}, err
	}
	switch {
	case out.APIStatus == nil:
		return provider.Token{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "boldBI response has no ApiStatus (%s)", provider.DescribeBody(body))
	case !*out.APIStatus:
		msg := "Bold BI refused the embed authorization (ApiStatus false)"
		if d := provider.ErrorDetail(body); d != "" {
			msg += ": " + d
		}
		return provider.Token{}, provider.Permanent(v1alpha1.ReasonVendorRejected, "%s", msg)
	}
	var data authorizeData
	if len(out.Data) == 0 || string(out.Data) == "null" {
		return provider.Token{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "boldBI response has ApiStatus true but no Data")
	}
	if err := provider.DecodeJSON(out.Data, &data); err != nil {
		return provider.Token{}, err
	}
	if data.AccessToken == "" {
		return provider.Token{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "boldBI response has no access_token")
	}
	expiresAt, err := provider.ExpiresInOrJWT(now, data.ExpiresIn, data.AccessToken)
	if err != nil {
		return provider.Token{}, err
	}
	return provider.Token{Value: data.AccessToken, Type: data.TokenType, IssuedAt: now, ExpiresAt: expiresAt}, nil
}
