// Package powerbi issues Power BI Embedded embed tokens ("embed for your
// customers") in two steps: a Microsoft Entra ID access token for the
// provider's service principal (client_credentials), then Power BI's
// GenerateToken for the request's reports, datasets and row-level security
// identities. The access token is cached per provider, so the embed tokens
// of one provider cost one Entra ID call per access token lifetime.
package powerbi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// Power BI's and Microsoft Entra ID's endpoints and defaults; the defaults
// equal the API's, for providers built without the API server's defaulting.
const (
	// DefaultAuthorityURL is Microsoft Entra ID of the public cloud.
	DefaultAuthorityURL = "https://login.microsoftonline.com"
	// DefaultAPIURL is the Power BI REST API of the public cloud.
	DefaultAPIURL = "https://api.powerbi.com"
	// DefaultScope asks Entra ID for a token the Power BI REST API accepts.
	DefaultScope = "https://analysis.windows.net/powerbi/api/.default"
	// EntraTokenPathSuffix ends the v2.0 token route of a tenant:
	// {authorityURL}/{tenantID}/oauth2/v2.0/token.
	EntraTokenPathSuffix = "/oauth2/v2.0/token" //nolint:gosec // G101: a URL path, not a credential
	// GenerateTokenPath issues embed tokens (GenerateTokenRequestV2),
	// relative to the API URL.
	GenerateTokenPath = "/v1.0/myorg/GenerateToken" //nolint:gosec // G101: a URL path, not a credential
	// ProfileHeader names the service principal profile a call acts as.
	ProfileHeader = "X-PowerBI-Profile-Id"
)

// Cloud is one Power BI cloud's endpoints, which only work together: an
// access token of one cloud's scope is refused by another cloud's API.
type Cloud struct {
	// AuthorityURL is the cloud's Microsoft Entra ID.
	AuthorityURL string
	// APIURL is the cloud's Power BI REST API.
	APIURL string
	// Scope asks that Entra ID for a token that API accepts: the cloud's
	// Power BI resource followed by /.default.
	Scope string
}

// clouds are the values of Microsoft's PowerBI-Developer-Samples (the
// "embed for your customers" sample's CloudConfigs), with the authority's
// /common/ path dropped (the operator names the tenant) and the resource
// turned into a client-credentials scope.
var clouds = map[string]Cloud{
	v1alpha1.PowerBICloudPublic: {DefaultAuthorityURL, DefaultAPIURL, DefaultScope},
	v1alpha1.PowerBICloudUSGovernment: {"https://login.microsoftonline.com", "https://api.powerbigov.us",
		"https://analysis.usgovcloudapi.net/powerbi/api/.default"},
	v1alpha1.PowerBICloudUSGovernmentHigh: {"https://login.microsoftonline.us", "https://api.high.powerbigov.us",
		"https://high.analysis.usgovcloudapi.net/powerbi/api/.default"},
	v1alpha1.PowerBICloudUSGovernmentDoD: {"https://login.microsoftonline.us", "https://api.mil.powerbigov.us",
		"https://mil.analysis.usgovcloudapi.net/powerbi/api/.default"},
	v1alpha1.PowerBICloudChina: {"https://login.chinacloudapi.cn", "https://api.powerbi.cn",
		"https://analysis.chinacloudapi.cn/powerbi/api/.default"},
}

// CloudOf returns the endpoints of the named cloud; "" is Public, and ok is
// false for a name the API does not define.
func CloudOf(name string) (c Cloud, ok bool) {
	c, ok = clouds[cmp.Or(name, v1alpha1.PowerBICloudPublic)]
	return c, ok
}

// expiredMarkers, in a 403's error code or message, say that Power BI
// refused the access token itself (it answers an expired one with 403
// TokenExpired), which a fresh access token fixes.
var expiredMarkers = []string{"tokenexpired", "invalidtoken", "access token has expired"}

// entraErrorReasons are the Entra ID error codes that mean the service
// principal itself was refused, whatever the status (Entra answers an
// unknown client with 400).
var entraErrorReasons = map[string]string{
	"invalid_client":      v1alpha1.ReasonVendorUnauthorized,
	"unauthorized_client": v1alpha1.ReasonVendorUnauthorized,
}

// Provider is the Power BI implementation of provider.Provider. It holds the
// access token cache, so the registry builds it once and every request of
// every Power BI provider goes through the same instance.
type Provider struct {
	cache *tokenCache
}

// New returns the Power BI provider with an empty access token cache.
func New() *Provider { return &Provider{cache: newTokenCache(maxCachedTokens)} }

// SecretRefs implements provider.Provider: the references of spec.powerBI.
func (p *Provider) SecretRefs(config *v1alpha1.EmbedProviderSpec) []v1alpha1.SecretKeySelector {
	return provider.SecretRefsIn(config.PowerBI)
}

// config is a provider block with the defaults applied and URLs without a
// trailing slash.
type config struct {
	authorityURL, apiURL, tenantID, clientID, scope string
}

// tokenURL is the tenant's Entra ID token endpoint, the audience of the
// client's assertions.
func (c config) tokenURL() string {
	return c.authorityURL + "/" + url.PathEscape(c.tenantID) + EntraTokenPathSuffix
}

// configOf applies the cloud's endpoints where the block sets none; an
// unknown cloud is a permanent ProviderInvalid error.
func configOf(c *v1alpha1.PowerBIProvider) (config, error) {
	cloud, ok := CloudOf(c.Cloud)
	if !ok {
		return config{}, provider.Permanent(v1alpha1.ReasonProviderInvalid, "powerBI cloud %q is not one of Public, USGovernment, USGovernmentHigh, USGovernmentDoD, China", c.Cloud)
	}
	return config{
		authorityURL: strings.TrimRight(cmp.Or(c.AuthorityURL, cloud.AuthorityURL), "/"),
		apiURL:       strings.TrimRight(cmp.Or(c.APIURL, cloud.APIURL), "/"),
		tenantID:     c.TenantID,
		clientID:     c.ClientID,
		scope:        cmp.Or(c.Scope, cloud.Scope),
	}, nil
}

// Validate implements provider.ConfigValidator: a clientCertificate must
// parse and its private key be the certificate's, so the provider's Ready
// condition says so before any request is made.
func (p *Provider) Validate(ctx context.Context, config *v1alpha1.EmbedProviderSpec, creds provider.CredentialReader) error {
	if c := config.PowerBI; c != nil && c.ClientCertificate != nil {
		_, err := provider.ReadClientCertificate(ctx, creds, c.ClientCertificate)
		return err
	}
	return nil
}

// Issue implements provider.Provider. Its errors hold neither the client
// secret nor an access token, in any encoding.
func (p *Provider) Issue(ctx context.Context, req provider.Request) (provider.Token, error) {
	ctx = provider.WithVendor(ctx, v1alpha1.VendorPowerBI)
	cfg, params := req.Config.PowerBI, req.Params.PowerBI
	if cfg == nil || params == nil {
		return provider.Token{}, provider.Permanent(v1alpha1.ReasonVendorMismatch, "powerBI provider needs spec.powerBI on both provider and request")
	}
	c, err := configOf(cfg)
	if err != nil {
		return provider.Token{}, err
	}
	body, err := GenerateTokenBody(params, req.Lifetime)
	if err != nil {
		return provider.Token{}, err
	}
	cred, err := credentialOf(ctx, cfg, req.Credentials)
	if err != nil {
		return provider.Token{}, err
	}
	used := identityBlobs(params) // access tokens sent and identity blobs, to redact
	tok, err := p.issue(ctx, req, c, cred, body, &used)
	return tok, provider.Redact(err, append(used, cred.secret)...)
}

// credential is how the service principal signs in to Entra ID: its client
// secret, a federated credential whose assertion (a ServiceAccount token)
// is fetched only when an access token is, or a certificate that signs an
// assertion then.
type credential struct {
	secret      string
	assertion   *v1alpha1.ClientAssertion
	creds       provider.CredentialReader
	certificate *provider.ClientCertificate
}

// credentialOf reads the client secret or certificate of cfg, or takes its
// client assertion, which is read later.
func credentialOf(ctx context.Context, cfg *v1alpha1.PowerBIProvider, creds provider.CredentialReader) (credential, error) {
	switch {
	case cfg.ClientAssertion != nil:
		return credential{assertion: cfg.ClientAssertion, creds: creds}, nil
	case cfg.ClientCertificate != nil:
		cert, err := provider.ReadClientCertificate(ctx, creds, cfg.ClientCertificate)
		if err != nil {
			return credential{}, err
		}
		return credential{certificate: &cert}, nil
	case cfg.ClientSecretSecretRef == nil:
		return credential{}, provider.Permanent(v1alpha1.ReasonProviderInvalid, "powerBI needs clientSecretSecretRef, clientAssertion or clientCertificate")
	}
	raw, err := creds.Read(ctx, *cfg.ClientSecretSecretRef)
	if err != nil {
		return credential{}, err
	}
	secret := strings.TrimSpace(string(raw))
	if secret == "" {
		return credential{}, provider.Permanent(v1alpha1.ReasonInvalidCredentials, "powerBI client secret %s is blank", cfg.ClientSecretSecretRef.Name)
	}
	return credential{secret: secret}, nil
}

// id is what distinguishes the credential in the access token cache's key:
// the secret itself, or the ServiceAccount and audience of the assertion,
// whose tokens change on every TokenRequest while meaning the same client.
func (c credential) id() string {
	switch {
	case c.certificate != nil:
		return "certificate:" + c.certificate.Thumbprint()
	case c.assertion != nil:
		ref := c.assertion.ServiceAccountRef
		return "assertion:" + ref.Namespace + "/" + ref.Name + "@" + c.assertion.Audience
	}
	return "secret:" + c.secret
}

// form returns the form fields that authenticate the client to the token
// endpoint tokenURL at now, and the credential they carry, which errors
// must never quote.
func (c credential) form(ctx context.Context, clientID, tokenURL string, now time.Time) (url.Values, string, error) {
	var jwt string
	var err error
	switch {
	case c.certificate != nil:
		jwt, err = c.certificate.Assertion(clientID, tokenURL, now)
	case c.assertion != nil:
		jwt, err = provider.ClientAssertion(ctx, c.creds, c.assertion)
	default:
		return url.Values{"client_secret": {c.secret}}, c.secret, nil
	}
	if err != nil {
		return nil, "", err
	}
	return url.Values{"client_assertion_type": {provider.ClientAssertionType}, "client_assertion": {jwt}}, jwt, nil
}

// identityBlobs lists the credentials a request's identities carry, which
// errors must never quote, whatever Power BI echoes.
func identityBlobs(params *v1alpha1.PowerBIParams) []string {
	var out []string
	for _, id := range params.Identities {
		if id.IdentityBlob != nil && id.IdentityBlob.Value != "" {
			out = append(out, id.IdentityBlob.Value)
		}
	}
	for _, id := range params.DatasourceIdentities {
		if id.IdentityBlob != "" {
			out = append(out, id.IdentityBlob)
		}
	}
	return out
}

// issue gets an access token (cached if usable) and asks Power BI for an
// embed token with it. When Power BI refuses a cached access token as
// expired or invalid, the token is dropped from the cache and the call is
// made once more with a fresh one; a fresh token refused is reported.
func (p *Provider) issue(ctx context.Context, req provider.Request, c config, cred credential, body []byte, used *[]string) (provider.Token, error) {
	fetch := func(fctx context.Context) (accessToken, error) {
		auth, secret, err := cred.form(fctx, c.clientID, c.tokenURL(), req.Now)
		if err != nil {
			return accessToken{}, inStep("Microsoft Entra ID token request", err)
		}
		at, err := requestAccessToken(fctx, req.HTTPClient, c, auth, req.Now)
		return at, provider.Redact(err, secret)
	}
	key := cacheKey(c, cred.id())
	for attempt := 0; ; attempt++ {
		access, cached, err := p.cache.get(ctx, req.HTTPClient, key, req.Now, req.Lifetime, fetch)
		if err != nil {
			return provider.Token{}, err
		}
		*used = append(*used, access.value)
		resp, err := generateToken(ctx, req.HTTPClient, c.apiURL, req.Params.PowerBI.ProfileID, access.value, body)
		if err != nil {
			return provider.Token{}, err
		}
		if accessTokenRefused(resp) {
			p.cache.drop(req.HTTPClient, access.value)
			if cached && attempt == 0 {
				continue
			}
		}
		return parseEmbedToken(resp, req.Now)
	}
}

// requestAccessToken asks Entra ID for an access token with the
// client_credentials grant, the client's authentication (auth: its secret
// or its assertion) in the form body.
func requestAccessToken(ctx context.Context, client *http.Client, c config, auth url.Values, now time.Time) (accessToken, error) {
	form := url.Values{
		"grant_type": {"client_credentials"},
		"client_id":  {c.clientID},
		"scope":      {c.scope},
	}
	for k, v := range auth {
		form[k] = v
	}
	httpReq, err := http.NewRequest(http.MethodPost, c.tokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		return accessToken{}, provider.Permanent(v1alpha1.ReasonProviderInvalid, "invalid powerBI authorityURL or tenantID")
	}
	httpReq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	httpReq.Header.Set("Accept", "application/json")
	resp, err := provider.Do(ctx, client, httpReq)
	if err != nil {
		return accessToken{}, inStep("Microsoft Entra ID token request", err)
	}
	return parseAccessToken(resp, now)
}

// entraResponse is Entra ID's token answer, or its RFC 6749 error.
type entraResponse struct {
	AccessToken      string          `json:"access_token"`
	ExpiresIn        json.RawMessage `json:"expires_in"`
	Error            string          `json:"error"`
	ErrorDescription string          `json:"error_description"`
}

// parseAccessToken turns Entra ID's answer into an access token, or a
// classified error quoting at most Entra's error code and description. It
// is pure so it can be fuzzed.
func parseAccessToken(resp *provider.Response, now time.Time) (accessToken, error) {
	var out entraResponse
	decodeErr := provider.DecodeJSON(resp.Body, &out)
	if err := provider.CheckStatus(resp, provider.Detail(out.Error, out.ErrorDescription)); err != nil {
		if reason, ok := entraErrorReasons[out.Error]; ok && resp.Status < 500 && resp.Status != http.StatusTooManyRequests {
			e := provider.Classify(err)
			e.Reason, e.Permanent = reason, true
		}
		return accessToken{}, inStep("Microsoft Entra ID token request", err)
	}
	switch {
	case decodeErr != nil:
		return accessToken{}, inStep("Microsoft Entra ID token request", decodeErr)
	case out.AccessToken == "":
		return accessToken{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "Microsoft Entra ID answered without an access_token")
	}
	if err := provider.CheckTokenSize("the Microsoft Entra ID access_token", out.AccessToken); err != nil {
		return accessToken{}, err
	}
	exp, err := provider.ExpiresInOrJWT(now, out.ExpiresIn, out.AccessToken)
	if err != nil {
		return accessToken{}, inStep("Microsoft Entra ID token request", err)
	}
	return accessToken{value: out.AccessToken, expiresAt: exp, life: exp.Sub(now)}, nil
}

// generateTokenBody is GenerateTokenRequestV2: the request's block, whose
// JSON names are Power BI's, without the profile (a header), and the
// lifetime.
type generateTokenBody struct {
	*v1alpha1.PowerBIParams
	LifetimeInMinutes int64 `json:"lifetimeInMinutes,omitempty"`
}

// GenerateTokenBody is the JSON body of GenerateToken for params and a
// lifetime, which is sent in whole minutes, rounded down but at least one
// (Power BI can only shorten its default with it); no lifetime sends none.
// The profile is not part of the body: it travels as ProfileHeader.
func GenerateTokenBody(params *v1alpha1.PowerBIParams, lifetime time.Duration) ([]byte, error) {
	wire := *params
	wire.ProfileID = ""
	body := generateTokenBody{PowerBIParams: &wire}
	if lifetime > 0 {
		body.LifetimeInMinutes = max(1, int64(lifetime/time.Minute))
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, provider.Permanent(v1alpha1.ReasonInvalidRequest, "powerBI request cannot be encoded")
	}
	return raw, nil
}

// generateToken posts body to Power BI's GenerateToken with the access
// token, as the service principal profile when profileID is set.
func generateToken(ctx context.Context, client *http.Client, apiURL, profileID, access string, body []byte) (*provider.Response, error) {
	httpReq, err := http.NewRequest(http.MethodPost, apiURL+GenerateTokenPath, bytes.NewReader(body))
	if err != nil {
		return nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "invalid powerBI apiURL")
	}
	httpReq.Header.Set("Authorization", "Bearer "+access)
	httpReq.Header.Set("Content-Type", "application/json")
	httpReq.Header.Set("Accept", "application/json")
	if profileID != "" {
		httpReq.Header.Set(ProfileHeader, profileID)
	}
	resp, err := provider.Do(ctx, client, httpReq)
	return resp, inStep("Power BI GenerateToken", err)
}

// powerBIError is the Power BI REST API's error body.
type powerBIError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// errorDetail reads Power BI's {"error":{"code","message"}} into one short
// line, "code: message", and "" for any other body.
func errorDetail(body []byte) string {
	var e powerBIError
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return provider.Detail(e.Error.Code, e.Error.Message)
}

// quotaMarkers, in an error's code or message, say that Power BI refused
// for its limits rather than for the request: the embed-token allowance of a
// capacity, or a capacity overloaded, throttled or paused.
var quotaMarkers = []string{"quota", "capacity"}

// quotaError reports whether a refused GenerateToken hit Power BI's limits
// (429 is one already, for every vendor): a 400, 403 or 503 whose code or
// message names a quota or the capacity. 401 never is: it is the access
// token.
func quotaError(status int, detail string) bool {
	if status != http.StatusBadRequest && status != http.StatusForbidden && status != http.StatusServiceUnavailable {
		return false
	}
	lower := strings.ToLower(detail)
	for _, m := range quotaMarkers {
		if strings.Contains(lower, m) {
			return true
		}
	}
	return false
}

// accessTokenRefused reports whether Power BI refused the access token
// rather than the request: any 401, a 403 naming an expired or invalid
// token, or a WWW-Authenticate challenge saying invalid_token.
func accessTokenRefused(resp *provider.Response) bool {
	switch resp.Status {
	case http.StatusUnauthorized:
		return true
	case http.StatusForbidden:
		if strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
			return true
		}
		detail := strings.ToLower(errorDetail(resp.Body))
		for _, m := range expiredMarkers {
			if strings.Contains(detail, m) {
				return true
			}
		}
	}
	return false
}

// embedTokenResponse is GenerateToken's answer.
type embedTokenResponse struct {
	Token      string `json:"token"`
	TokenID    string `json:"tokenId"`
	Expiration any    `json:"expiration"`
}

// parseEmbedToken turns GenerateToken's answer into a Token expiring at its
// expiration, or a classified error quoting at most Power BI's error code
// and message. It is pure so it can be fuzzed.
func parseEmbedToken(resp *provider.Response, now time.Time) (provider.Token, error) {
	detail := errorDetail(resp.Body)
	if err := provider.CheckStatus(resp, detail); err != nil {
		if quotaError(resp.Status, detail) {
			e := provider.Classify(err)
			e.Reason, e.Permanent = v1alpha1.ReasonVendorQuotaExceeded, false
		}
		return provider.Token{}, inStep("Power BI GenerateToken", err)
	}
	var out embedTokenResponse
	if err := provider.DecodeJSON(resp.Body, &out); err != nil {
		return provider.Token{}, inStep("Power BI GenerateToken", err)
	}
	if out.Token == "" {
		return provider.Token{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "Power BI GenerateToken answered without a token")
	}
	if out.Expiration == nil {
		return provider.Token{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "Power BI GenerateToken answered without an expiration, so the token's expiry is unknown")
	}
	exp, err := provider.ParseExpiresAt(out.Expiration, provider.ExpiresAtRFC3339)
	if err != nil {
		return provider.Token{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "Power BI GenerateToken answered an expiration that is not an ISO 8601 date-time")
	}
	return provider.Token{Value: out.Token, IssuedAt: now, ExpiresAt: exp}, nil
}

// inStep prefixes a classified error's message with the step that failed,
// so a condition says whether Entra ID or Power BI refused.
func inStep(step string, err error) error {
	if err == nil {
		return nil
	}
	e := provider.Classify(err)
	e.Message = step + ": " + e.Message
	return e
}
