package vendorsim

import (
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Bold BI wire constants, exported so clients under test and the standalone
// binary agree with the simulator without repeating literals.
const (
	// BoldBIServerPath is the simulated server URL's path: configure clients
	// with serverURL = URL()+BoldBIServerPath.
	BoldBIServerPath = "/bi"
	// BoldBIAPIPrefix starts every Bold BI API route; the site identifier
	// (e.g. site/site1) follows it, then BoldBIAuthorizeSuffix.
	BoldBIAPIPrefix = BoldBIServerPath + "/api/"
	// BoldBIAuthorizeSuffix ends the embed authorize route.
	BoldBIAuthorizeSuffix = "/embed/authorize"
	// DefaultBoldBISite is a site identifier for demos and tests; any site
	// is accepted, and so is none (Bold BI Cloud's empty site identifier).
	DefaultBoldBISite = "site/site1"
	// DefaultBoldBIEmbedSecret is accepted when Options.BoldBIEmbedSecret is empty, for demos.
	DefaultBoldBIEmbedSecret = "demo-embed-secret"
	// BoldBITokenLifetime is how long simulated Bold BI access tokens live.
	BoldBITokenLifetime = time.Hour
	// BoldBISigningKey signs the simulated access tokens (HS256). It is public
	// on purpose: tests may verify tokens with it; nothing real trusts it.
	BoldBISigningKey = "vendorsim-boldbi-signing-key"
)

// BoldBIAuthorizePath is the embed authorize route for a site identifier;
// Bold BI Cloud's empty one leaves an empty segment: /bi/api//embed/authorize.
func BoldBIAuthorizePath(site string) string {
	return BoldBIAPIPrefix + strings.Trim(site, "/") + BoldBIAuthorizeSuffix
}

// boldBIVendor is the simulated Bold BI server.
func boldBIVendor() vendor {
	return vendor{
		mount: func(s *Server, opts Options) routes { return one(boldBIEndpoint(s, opts)) },
		flags: func(f *Flags) {
			secret := f.credential("boldbi-embed-secret", "VENDORSIM_BOLDBI_EMBED_SECRET", "embedsecret the Bold BI endpoint accepts", quoted(DefaultBoldBIEmbedSecret))
			omitExpiresIn := f.fs.Bool("boldbi-omit-expires-in", false, "answer Bold BI without Data.expires_in, so clients must read the token's exp claim")
			f.set(func(o *Options) error {
				o.BoldBIEmbedSecret, o.BoldBIOmitExpiresIn = *secret, *omitExpiresIn
				return nil
			})
		},
		banner: func(base string, _ Options) string {
			return "Bold BI server URL " + base + BoldBIServerPath + " (authorize at " + BoldBIAuthorizePath("<site>") + ")"
		},
	}
}

// boldBIEndpoint simulates POST /bi/api/<site>/embed/authorize. Like the real
// product it answers HTTP 200 with ApiStatus false when the embed secret or
// the user is wrong, and returns a JWT access token.
func boldBIEndpoint(s *Server, opts Options) endpoint {
	secret := opts.BoldBIEmbedSecret
	if secret == "" {
		secret = DefaultBoldBIEmbedSecret
	}
	errorBody := func(_ int, msg string) any {
		return map[string]any{"ApiStatus": false, "Data": nil, "Status": false, "Message": msg}
	}
	refused := func(msg string) reply { return reply{status: http.StatusOK, body: errorBody(0, msg)} }
	bad := func(msg string) reply { return reply{status: http.StatusBadRequest, body: errorBody(0, msg)} }
	return endpoint{
		vendor:       "boldBI",
		method:       http.MethodPost,
		path:         BoldBIAPIPrefix,
		exactPaths:   []string{BoldBIAuthorizePath("")},
		secretFields: []string{"embedsecret"},
		emptyToken:   boldBISuccess("", BoldBITokenLifetime, s.clock.Now(), false),
		errorBody:    errorBody,
		issue: func(r *http.Request, body map[string]any, decodeErr error) reply {
			site, ok := boldBISite(r.URL.Path)
			if !ok {
				return reply{status: http.StatusNotFound, body: errorBody(0, "no such API route")}
			}
			if decodeErr != nil {
				return bad("request body must be a JSON object: " + decodeErr.Error())
			}
			if msg := checkBoldBIBody(body, site); msg != "" {
				return bad(msg)
			}
			if subtle.ConstantTimeCompare([]byte(stringField(body, "embedsecret")), []byte(secret)) != 1 {
				return refused("Invalid embed secret")
			}
			email := stringField(body, "email")
			if email == "" {
				return refused("A user email is required")
			}
			now := s.clock.Now()
			token, err := boldBIToken(email, site, now)
			if err != nil {
				return reply{status: http.StatusInternalServerError, body: errorBody(0, "sign token")}
			}
			return reply{status: http.StatusOK, body: boldBISuccess(token, BoldBITokenLifetime, now, !opts.BoldBIOmitExpiresIn),
				token: token, ttl: BoldBITokenLifetime}
		},
	}
}

// boldBISite extracts the site identifier from /bi/api/<site>/embed/authorize,
// "" from Bold BI Cloud's /bi/api//embed/authorize.
func boldBISite(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, BoldBIAPIPrefix)
	if !ok {
		return "", false
	}
	site, ok := strings.CutSuffix(rest, BoldBIAuthorizeSuffix)
	return site, ok && !strings.HasPrefix(site, "/")
}

// checkBoldBIBody validates field types the way the real API's model binding
// would, returning "" when the body is acceptable.
func checkBoldBIBody(body map[string]any, site string) string {
	for _, f := range []string{"email", "embedsecret", "serverurl", "siteidentifier"} {
		if v, ok := body[f]; ok {
			if _, isString := v.(string); !isString {
				return f + " must be a string"
			}
		}
	}
	if v, ok := body["siteidentifier"].(string); ok && strings.Trim(v, "/") != site {
		return "siteidentifier does not match the site in the URL"
	}
	if v, ok := body["dashboard"]; ok {
		if d, isObject := v.(map[string]any); !isObject || !boldBIString(d["id"]) {
			return "dashboard must be an object with a string id"
		}
	}
	for _, f := range []string{"datasourcefilters", "dashboardparameters", "customattributes"} {
		if v, ok := body[f]; ok && !boldBINameValues(v) {
			return f + " must be a list of {name, value} with a string, number or boolean value, or a list of them"
		}
	}
	return ""
}

func boldBIString(v any) bool {
	_, ok := v.(string)
	return ok
}

// boldBINameValues checks a Bold BI list of {name, value, operator?}.
func boldBINameValues(v any) bool {
	list, ok := v.([]any)
	if !ok {
		return false
	}
	for _, item := range list {
		nv, ok := item.(map[string]any)
		if !ok || !boldBIString(nv["name"]) {
			return false
		}
		if op, ok := nv["operator"]; ok && !boldBIString(op) {
			return false
		}
		value := nv["value"]
		if values, isList := value.([]any); isList {
			if slices.ContainsFunc(values, func(v any) bool { return !boldBIScalar(v) }) {
				return false
			}
		} else if !boldBIScalar(value) {
			return false
		}
	}
	return true
}

// boldBIScalar reports whether v is a value Bold BI binds to a filter,
// parameter or attribute: a string, a number or a boolean.
func boldBIScalar(v any) bool {
	switch v.(type) {
	case string, float64, bool:
		return true
	}
	return false
}

// boldBIToken signs an HS256 access token whose exp matches the lifetime the
// simulator records, so clients reading exp agree with Validate.
func boldBIToken(email, site string, now time.Time) (string, error) {
	claims := jwt.MapClaims{
		"sub": email, "email": email, "site": site, "jti": newToken(""),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(BoldBITokenLifetime).Unix(),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(BoldBISigningKey))
}

// boldBISuccess is Bold BI's success envelope. .issued and .expires are
// locale-formatted like the real product's, so clients must not parse them.
func boldBISuccess(token string, ttl time.Duration, now time.Time, withExpiresIn bool) map[string]any {
	data := map[string]any{
		"access_token": token,
		"token_type":   "bearer",
		".issued":      now.Format("1/2/2006 3:04:05 PM"),
		".expires":     now.Add(ttl).Format("1/2/2006 3:04:05 PM"),
	}
	if withExpiresIn {
		data["expires_in"] = int64(ttl / time.Second)
	}
	return map[string]any{"ApiStatus": true, "Data": data, "Status": true, "Message": ""}
}
