package vendorsim

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Power BI Embedded wire constants, exported so clients under test and the
// standalone binary agree with the simulator without repeating literals.
const (
	// PowerBIGenerateTokenPath is where the Power BI REST API issues embed
	// tokens (GenerateToken, GenerateTokenRequestV2), relative to its API URL.
	PowerBIGenerateTokenPath = "/v1.0/myorg/GenerateToken"
	// PowerBIScope is the only scope the simulated Entra ID of the public
	// cloud grants: the one whose tokens the Power BI REST API accepts.
	PowerBIScope = "https://analysis.windows.net/powerbi/api/.default"
	// PowerBIProfileHeader names the service principal profile a Power BI
	// REST call acts as.
	PowerBIProfileHeader = "X-PowerBI-Profile-Id"
	// PowerBIAccessTokenPrefix starts every simulated Entra ID access token.
	PowerBIAccessTokenPrefix = "aad_"
	// PowerBIEmbedTokenPrefix starts every simulated embed token, as
	// Power BI's gzip-and-base64 tokens all start.
	PowerBIEmbedTokenPrefix = "H4sI"
	// PowerBIAccessTokenLifetime is the lifetime of simulated access tokens
	// unless Options.PowerBIAccessTokenLifetime says otherwise.
	PowerBIAccessTokenLifetime = time.Hour
	// PowerBIExpiredCode is the error code answered for an expired access
	// token, with HTTP 403, as Power BI does.
	PowerBIExpiredCode = "TokenExpired"
	// DefaultPowerBITenantID is accepted when Options.PowerBITenantID is empty, for demos.
	DefaultPowerBITenantID = "demo-powerbi-tenant"
	// DefaultPowerBIClientID is accepted when Options.PowerBIClientID is empty, for demos.
	DefaultPowerBIClientID = "demo-powerbi-client-id"
	// DefaultPowerBIClientSecret is accepted when Options.PowerBIClientSecret is empty, for demos.
	DefaultPowerBIClientSecret = "demo-powerbi-client-secret"
)

// powerBIScopes are the scopes of Power BI's clouds, by the names the
// operator's API gives them: each cloud's Entra ID grants a token for its
// own Power BI resource only (PowerBI-Developer-Samples' cloud configs).
var powerBIScopes = map[string]string{
	"Public":           PowerBIScope,
	"USGovernment":     "https://analysis.usgovcloudapi.net/powerbi/api/.default",
	"USGovernmentHigh": "https://high.analysis.usgovcloudapi.net/powerbi/api/.default",
	"USGovernmentDoD":  "https://mil.analysis.usgovcloudapi.net/powerbi/api/.default",
	"China":            "https://analysis.chinacloudapi.cn/powerbi/api/.default",
}

// PowerBICloudScope is the only scope the simulated Entra ID of cloud
// grants ("" is Public); ok is false for an unknown cloud.
func PowerBICloudScope(cloud string) (scope string, ok bool) {
	scope, ok = powerBIScopes[cmp.Or(cloud, "Public")]
	return scope, ok
}

// powerBIEntraPattern routes Entra ID token requests for any tenant; the
// endpoint answers for the configured one only.
const powerBIEntraPattern = "/{tenant}/oauth2/v2.0/token"

// powerBIEntraSuffix ends the path of every Entra ID token request.
const powerBIEntraSuffix = "/oauth2/v2.0/token"

// PowerBIEntraTokenPath is the Microsoft Entra ID v2.0 token route of a
// tenant, relative to the authority URL.
func PowerBIEntraTokenPath(tenant string) string { return "/" + tenant + powerBIEntraSuffix }

// IsPowerBIEntraCall reports whether c asked the simulated Entra ID for an
// access token (rather than Power BI for an embed token), so tests can count
// how often the operator authenticated.
func IsPowerBIEntraCall(c Call) bool {
	return c.Vendor == "powerBI" && strings.HasSuffix(c.Path, powerBIEntraSuffix)
}

// PowerBIEntraCalls counts the calls to the simulated Entra ID token endpoint.
func (s *Server) PowerBIEntraCalls() int {
	n := 0
	for _, c := range s.Calls() {
		if IsPowerBIEntraCall(c) {
			n++
		}
	}
	return n
}

// powerBIVendor is the simulated Microsoft Entra ID and Power BI REST API.
// It remembers the profile each embed token was generated as.
func powerBIVendor() vendor {
	return vendor{
		mount: func(s *Server, opts Options) routes {
			s.powerBIProfiles = map[string]string{}
			return routes{
				endpoints: []endpoint{powerBIEntraEndpoint(s, opts), powerBIGenerateEndpoint(s, opts)},
				reset:     func() { s.powerBIProfiles = map[string]string{} },
			}
		},
		flags: powerBIFlags,
		banner: func(base string, _ Options) string {
			return fmt.Sprintf("Power BI authority and API URL %s (Entra ID token at %s, GenerateToken at %s)", base, PowerBIEntraTokenPath("<tenant>"), PowerBIGenerateTokenPath)
		},
	}
}

// powerBIFlags declares the service principal, its credentials, the cloud
// and the profiles of the simulated Power BI.
func powerBIFlags(f *Flags) {
	tenant := f.credential("powerbi-tenant-id", "VENDORSIM_POWERBI_TENANT_ID", "tenant the simulated Microsoft Entra ID serves for Power BI", quoted(DefaultPowerBITenantID))
	id := f.credential("powerbi-client-id", "VENDORSIM_POWERBI_CLIENT_ID", "client_id the simulated Entra ID accepts for Power BI", quoted(DefaultPowerBIClientID))
	secret := f.credential("powerbi-client-secret", "VENDORSIM_POWERBI_CLIENT_SECRET", "client_secret the simulated Entra ID accepts for Power BI", quoted(DefaultPowerBIClientSecret))
	lifetime := f.fs.Duration("powerbi-access-token-lifetime", PowerBIAccessTokenLifetime, "lifetime of the simulated Entra ID access tokens, which also bounds Power BI embed tokens")
	cloud := f.fs.String("powerbi-cloud", "Public", "Power BI cloud the simulated Entra ID serves, which decides the scope it grants: Public, USGovernment, USGovernmentHigh, USGovernmentDoD or China")
	profiles := f.fs.String("powerbi-profiles", "", "comma-separated service principal profile IDs (GUIDs) GenerateToken accepts in X-PowerBI-Profile-Id")
	subject := f.fs.String("powerbi-federated-subject", "", "sub of the simulated service principal's federated credential, system:serviceaccount:NAMESPACE:NAME; enables client assertions")
	certFile := f.fs.String("powerbi-client-certificate", "", "PEM file of the certificate credential the simulated Entra ID accepts assertions signed with")
	f.set(func(o *Options) (err error) {
		if _, ok := PowerBICloudScope(*cloud); !ok {
			return fmt.Errorf("--powerbi-cloud %q is not Public, USGovernment, USGovernmentHigh, USGovernmentDoD or China", *cloud)
		}
		o.PowerBITenantID, o.PowerBIClientID, o.PowerBIClientSecret = *tenant, *id, *secret
		o.PowerBIAccessTokenLifetime, o.PowerBICloud = *lifetime, *cloud
		for p := range strings.SplitSeq(*profiles, ",") {
			if p = strings.TrimSpace(p); p != "" {
				o.PowerBIProfiles = append(o.PowerBIProfiles, p)
			}
		}
		if o.PowerBIFederation, err = f.federated(*subject, ""); err != nil {
			return err
		}
		o.PowerBICertificates, err = readCertificates(*certFile)
		return err
	})
}

// entraError renders a Microsoft Entra ID error: an RFC 6749 error with an
// AADSTS code in its description.
func entraError(status int, code string, aadsts int, description string) reply {
	return reply{status: status, body: map[string]any{
		"error": code, "error_description": fmt.Sprintf("AADSTS%d: %s", aadsts, description), "error_codes": []int{aadsts},
	}}
}

// powerBIError renders the Power BI REST API's error shape.
func powerBIError(status int, code, message string) reply {
	return reply{status: status, body: map[string]any{"error": map[string]string{"code": code, "message": message}}}
}

// powerBIEntraFields are the form fields of a client_credentials request
// with the client secret in the body, and all a request may send;
// powerBIEntraAssertionFields those of one with a client assertion.
var (
	powerBIEntraFields          = []string{"grant_type", "client_id", "client_secret", "scope"}
	powerBIEntraAssertionFields = []string{"grant_type", "client_id", "client_assertion_type", "client_assertion", "scope"}
)

// powerBIEntraEndpoint simulates POST {authority}/{tenant}/oauth2/v2.0/token
// with the client_credentials grant: a form body with exactly the four
// fields, the configured tenant, client and secret, and the Power BI scope.
func powerBIEntraEndpoint(s *Server, opts Options) endpoint {
	tenant := cmp.Or(opts.PowerBITenantID, DefaultPowerBITenantID)
	id, secret := cmp.Or(opts.PowerBIClientID, DefaultPowerBIClientID), cmp.Or(opts.PowerBIClientSecret, DefaultPowerBIClientSecret)
	lifetime := cmp.Or(opts.PowerBIAccessTokenLifetime, PowerBIAccessTokenLifetime)
	scope, known := PowerBICloudScope(opts.PowerBICloud)
	return endpoint{
		vendor:       "powerBI",
		method:       http.MethodPost,
		path:         powerBIEntraPattern,
		secretFields: []string{"client_secret", "client_assertion"},
		formBodies:   true,
		emptyToken:   map[string]any{"token_type": "Bearer", "expires_in": 3599, "access_token": ""},
		errorBody: func(status int, msg string) any {
			return entraError(status, "temporarily_unavailable", 90033, msg).body
		},
		issue: func(r *http.Request, body map[string]any, decodeErr error) reply {
			if !isFormBody(r) || decodeErr != nil {
				return entraError(http.StatusBadRequest, "invalid_request", 900144, "The request body must be form-encoded.")
			}
			if got := r.PathValue("tenant"); got != tenant {
				return entraError(http.StatusBadRequest, "invalid_request", 90002, fmt.Sprintf("Tenant '%s' not found.", got))
			}
			_, assertion := body["client_assertion"]
			fields := powerBIEntraFields
			if assertion {
				fields = powerBIEntraAssertionFields
			}
			for k, v := range body {
				if _, single := v.(string); !single || !slices.Contains(fields, k) {
					return entraError(http.StatusBadRequest, "invalid_request", 900144, "Unexpected or repeated parameter '"+k+"'.")
				}
			}
			switch {
			case stringField(body, "grant_type") != "client_credentials":
				return entraError(http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
			case stringField(body, "client_id") != id:
				return entraError(http.StatusBadRequest, "unauthorized_client", 700016, "Application with identifier '"+stringField(body, "client_id")+"' was not found in the directory.")
			case assertion && stringField(body, "client_assertion_type") != ClientAssertionType:
				return entraError(http.StatusBadRequest, "invalid_request", 50027, "Invalid client_assertion_type.")
			case assertion:
				if err := verifyAssertion(r, opts.PowerBIFederation, opts.PowerBICertificates, stringField(body, "client_assertion"), id, s.clock.Now()); err != nil {
					return entraError(http.StatusUnauthorized, "invalid_client", 700211, "No matching federated identity record found for presented assertion: "+err.Error())
				}
			case subtle.ConstantTimeCompare([]byte(stringField(body, "client_secret")), []byte(secret)) != 1:
				return entraError(http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided.")
			}
			switch {
			case !known || stringField(body, "scope") != scope:
				return entraError(http.StatusBadRequest, "invalid_scope", 1002012, "The provided value for scope is not valid.")
			}
			token := newToken(PowerBIAccessTokenPrefix)
			secs := int(lifetime / time.Second)
			out := map[string]any{"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": token}
			return reply{status: http.StatusOK, body: out, token: token, ttl: lifetime}
		},
	}
}

// powerBIGUID is the form of every Power BI object ID.
var powerBIGUID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// powerBIGenerateRequest is GenerateTokenRequestV2, decoded strictly.
type powerBIGenerateRequest struct {
	Reports []struct {
		ID        string `json:"id"`
		AllowEdit *bool  `json:"allowEdit"`
	} `json:"reports"`
	Datasets []struct {
		ID              string `json:"id"`
		XMLAPermissions string `json:"xmlaPermissions"`
	} `json:"datasets"`
	TargetWorkspaces []struct {
		ID string `json:"id"`
	} `json:"targetWorkspaces"`
	Identities []struct {
		Username     string   `json:"username"`
		Roles        []string `json:"roles"`
		Datasets     []string `json:"datasets"`
		Reports      []string `json:"reports"`
		CustomData   *string  `json:"customData"`
		IdentityBlob *struct {
			Value string `json:"value"`
		} `json:"identityBlob"`
	} `json:"identities"`
	DatasourceIdentities []struct {
		IdentityBlob string `json:"identityBlob"`
		Datasources  []struct {
			DatasourceType    string `json:"datasourceType"`
			ConnectionDetails *struct {
				Server   string `json:"server"`
				Database string `json:"database"`
				URL      string `json:"url"`
			} `json:"connectionDetails"`
		} `json:"datasources"`
	} `json:"datasourceIdentities"`
	LifetimeInMinutes *json.Number `json:"lifetimeInMinutes"`
}

// powerBIGenerateEndpoint simulates POST {api}/v1.0/myorg/GenerateToken: a
// valid, unexpired access token of the simulated Entra ID as bearer, a
// service principal profile the principal owns when the call names one, a
// JSON body of only GenerateTokenRequestV2's fields, and, as Power BI does,
// an embed token that lives as long as the access token has left, or
// lifetimeInMinutes if that is shorter. The token is scoped to the profile:
// PowerBITokenProfile tells which.
func powerBIGenerateEndpoint(s *Server, opts Options) endpoint {
	return endpoint{
		vendor:     "powerBI",
		method:     http.MethodPost,
		path:       PowerBIGenerateTokenPath,
		emptyToken: map[string]any{"token": "", "tokenId": "", "expiration": "2030-01-01T00:00:00Z"},
		errorBody: func(status int, msg string) any {
			return powerBIError(status, "ServiceUnavailable", msg).body
		},
		issue: func(r *http.Request, body map[string]any, decodeErr error) reply {
			accessExpiry, rep, ok := s.powerBIBearer(r)
			if !ok {
				return rep
			}
			if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || decodeErr != nil {
				return powerBIError(http.StatusBadRequest, "InvalidRequest", "the body must be a JSON object (application/json)")
			}
			profile, rep, ok := powerBIProfile(r, opts.PowerBIProfiles)
			if !ok {
				return rep
			}
			req, err := decodePowerBIRequest(body)
			if err != nil {
				return powerBIError(http.StatusBadRequest, "InvalidRequest", err.Error())
			}
			now := s.clock.Now()
			expiry := accessExpiry
			if req.LifetimeInMinutes != nil {
				minutes, _ := req.LifetimeInMinutes.Int64() // checked by decodePowerBIRequest
				if limit := now.Add(time.Duration(minutes) * time.Minute); limit.Before(expiry) {
					expiry = limit
				}
			}
			expiry = expiry.Truncate(time.Second) // stated in whole seconds: never later than true
			token := newToken(PowerBIEmbedTokenPrefix)
			if profile != "" {
				s.mu.Lock()
				s.powerBIProfiles[token] = profile
				s.mu.Unlock()
			}
			out := map[string]any{"token": token, "tokenId": newGUID(), "expiration": expiry.UTC().Format(time.RFC3339)}
			return reply{status: http.StatusOK, body: out, token: token, ttl: expiry.Sub(now)}
		},
	}
}

// powerBIProfile reads the X-PowerBI-Profile-Id header: absent, the call
// acts as the service principal itself ("" and ok); otherwise it must be a
// GUID (400) and a profile the principal owns. Power BI's answer for a
// profile the principal does not own is not documented; the simulator
// answers 404 PowerBIEntityNotFound, as for other objects it cannot see.
func powerBIProfile(r *http.Request, owned []string) (profile string, rep reply, ok bool) {
	values := r.Header.Values(PowerBIProfileHeader)
	switch {
	case len(values) == 0:
		return "", reply{}, true
	case len(values) > 1 || !powerBIGUID.MatchString(values[0]):
		return "", powerBIError(http.StatusBadRequest, "InvalidRequest", "the "+PowerBIProfileHeader+" header must be one profile ID (a GUID)"), false
	}
	for _, p := range owned {
		if strings.EqualFold(p, values[0]) {
			return strings.ToLower(values[0]), reply{}, true
		}
	}
	return "", powerBIError(http.StatusNotFound, "PowerBIEntityNotFound", "the service principal has no profile "+values[0]), false
}

// PowerBITokenProfile is the service principal profile (lowercase) an
// embed token was generated as, "" for one generated without a profile or
// unknown, so tests can check tokens are scoped to the profile asked for.
func (s *Server) PowerBITokenProfile(token string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.powerBIProfiles[token]
}

// powerBIBearer checks the request's access token and returns its expiry;
// ok is false with Power BI's answer: 401 without a known token, 403
// TokenExpired for an expired one.
func (s *Server) powerBIBearer(r *http.Request) (expiry time.Time, rep reply, ok bool) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return time.Time{}, powerBIError(http.StatusUnauthorized, "Unauthorized", "an Authorization: Bearer header is required"), false
	}
	v, at := s.validate(token)
	switch {
	case !strings.HasPrefix(token, PowerBIAccessTokenPrefix) || v == ValidityUnknown:
		return time.Time{}, powerBIError(http.StatusUnauthorized, "InvalidToken", "the access token is not valid"), false
	case v == ValidityExpired:
		return time.Time{}, powerBIError(http.StatusForbidden, PowerBIExpiredCode, "Access token has expired, resubmit with a new access token"), false
	}
	return at, reply{}, true
}

// decodePowerBIRequest decodes body as GenerateTokenRequestV2, refusing
// unknown fields and wrong types, and checks what Power BI checks.
func decodePowerBIRequest(body map[string]any) (*powerBIGenerateRequest, error) {
	if v, ok := body["lifetimeInMinutes"]; ok {
		if _, number := v.(float64); !number {
			return nil, fmt.Errorf("lifetimeInMinutes must be a JSON number")
		}
	}
	raw, _ := json.Marshal(body) // re-encoding a decoded JSON object cannot fail
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var req powerBIGenerateRequest
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("the body is not a GenerateTokenRequestV2: %w", err)
	}
	if len(req.Reports) == 0 && len(req.Datasets) == 0 {
		return nil, fmt.Errorf("at least one report or dataset is required")
	}
	var datasets []string
	for _, d := range req.Datasets {
		if !powerBIGUID.MatchString(d.ID) || (d.XMLAPermissions != "" && d.XMLAPermissions != "Off" && d.XMLAPermissions != "ReadOnly") {
			return nil, fmt.Errorf("dataset %q: id must be a GUID and xmlaPermissions Off or ReadOnly", d.ID)
		}
		datasets = append(datasets, strings.ToLower(d.ID))
	}
	for _, r := range req.Reports {
		if !powerBIGUID.MatchString(r.ID) {
			return nil, fmt.Errorf("report id %q is not a GUID", r.ID)
		}
	}
	for _, w := range req.TargetWorkspaces {
		if !powerBIGUID.MatchString(w.ID) {
			return nil, fmt.Errorf("target workspace id %q is not a GUID", w.ID)
		}
	}
	var reports []string
	for _, r := range req.Reports {
		reports = append(reports, strings.ToLower(r.ID))
	}
	for _, id := range req.Identities {
		if id.Username == "" || len(id.Datasets) == 0 && len(id.Reports) == 0 {
			return nil, fmt.Errorf("an identity needs a username and datasets or reports")
		}
		for _, d := range id.Datasets {
			if !slices.Contains(datasets, strings.ToLower(d)) {
				return nil, fmt.Errorf("identity %q names dataset %q, which the request's datasets do not list", id.Username, d)
			}
		}
		for _, rep := range id.Reports {
			if !slices.Contains(reports, strings.ToLower(rep)) {
				return nil, fmt.Errorf("identity %q names report %q, which the request's reports do not list", id.Username, rep)
			}
		}
		if id.IdentityBlob != nil && id.IdentityBlob.Value == "" {
			return nil, fmt.Errorf("identity %q has an identityBlob without a value", id.Username)
		}
	}
	for _, di := range req.DatasourceIdentities {
		if di.IdentityBlob == "" || len(di.Datasources) == 0 {
			return nil, fmt.Errorf("a datasource identity needs an identityBlob and datasources")
		}
		for _, ds := range di.Datasources {
			if ds.DatasourceType == "" || ds.ConnectionDetails == nil {
				return nil, fmt.Errorf("a datasource needs a datasourceType and connectionDetails")
			}
		}
	}
	if n := req.LifetimeInMinutes; n != nil {
		if minutes, err := n.Int64(); err != nil || minutes < 1 {
			return nil, fmt.Errorf("lifetimeInMinutes must be a positive whole number")
		}
	}
	return &req, nil
}

// newGUID returns a random RFC 4122 version 4 UUID, as Power BI's tokenId.
func newGUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails since Go 1.24
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
