package vendorsim

import (
	"cmp"
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Domo Everywhere wire constants, exported so clients under test and the
// standalone binary agree with the simulator without repeating literals.
// Embedding a Domo dashboard with programmatic filters takes two calls: an
// API client's access token, then an embed token made with it.
const (
	// DomoTokenPath issues API access tokens: GET with the client in HTTP
	// Basic and grant_type and scope in the query.
	DomoTokenPath = "/oauth/token"
	// DomoEmbedAuthPath issues dashboard embed tokens to a Bearer access token.
	DomoEmbedAuthPath = "/v1/stories/embed/auth"
	// DomoAccessTokenPrefix starts every simulated Domo access token.
	DomoAccessTokenPrefix = "domo_at_"
	// DomoEmbedSigningKey signs the simulated embed tokens (HS256), so
	// tests can verify them; Domo's own key is private to Domo.
	DomoEmbedSigningKey = "vendorsim-domo-embed-key"
	// DomoAccessTokenLifetime is the lifetime of every simulated access token.
	DomoAccessTokenLifetime = time.Hour
	// DomoEmbedScope is the scope an access token needs to make embed tokens.
	DomoEmbedScope = "dashboard"
	// DefaultDomoClientID is accepted when Options.DomoClientID is empty, for demos.
	DefaultDomoClientID = "demo-domo-client-id"
	// DefaultDomoClientSecret is accepted when Options.DomoClientSecret is empty, for demos.
	DefaultDomoClientSecret = "demo-domo-client-secret"
	// maxDomoSessionMinutes is Domo's default session limit, 8 hours, which
	// is also the session length when sessionLength is absent.
	maxDomoSessionMinutes = 8 * 60
)

// domoVendor is the simulated Domo Everywhere, which the generic http
// block reaches in two calls.
func domoVendor() vendor {
	return vendor{
		mount: func(s *Server, opts Options) routes {
			return routes{endpoints: []endpoint{domoTokenEndpoint(s, opts), domoEmbedEndpoint(s, opts)}}
		},
		flags: func(f *Flags) {
			id := f.credential("domo-client-id", "VENDORSIM_DOMO_CLIENT_ID", "API client_id the Domo token endpoint accepts", quoted(DefaultDomoClientID))
			secret := f.credential("domo-client-secret", "VENDORSIM_DOMO_CLIENT_SECRET", "API client secret the Domo token endpoint accepts", quoted(DefaultDomoClientSecret))
			f.set(func(o *Options) error { o.DomoClientID, o.DomoClientSecret = *id, *secret; return nil })
		},
		banner: func(base string, _ Options) string {
			return "Domo access tokens at GET " + base + DomoTokenPath + ", embed tokens at " + base + DomoEmbedAuthPath
		},
	}
}

// domoPermissions are the permissions an embed authorization may list.
var domoPermissions = []string{"READ", "FILTER", "EXPORT"}

// domoFilterOperators are the operators a filter may use.
var domoFilterOperators = []string{"IN", "NOT_IN", "EQUALS", "NOT_EQUALS", "GREATER_THAN", "GREAT_THAN_EQUALS_TO", "LESS_THAN", "LESS_THAN_EQUALS_TO"}

// domoError renders Domo's error shape.
func domoError(status int, msg string) any {
	return map[string]any{"status": status, "statusReason": http.StatusText(status), "message": msg, "toe": "SIM-TOE"}
}

func domoFail(status int, msg string) reply {
	return reply{status: status, body: domoError(status, msg)}
}

// domoTokenEndpoint simulates GET /oauth/token: client_credentials for the
// API client in HTTP Basic, scopes space-separated in the query. Access
// tokens are stored, so the embed endpoint can check them.
func domoTokenEndpoint(s *Server, opts Options) endpoint {
	id, secret := cmp.Or(opts.DomoClientID, DefaultDomoClientID), cmp.Or(opts.DomoClientSecret, DefaultDomoClientSecret)
	return endpoint{
		vendor:      "domo",
		method:      http.MethodGet,
		path:        DomoTokenPath,
		queryBody:   true,
		methodRoute: true,
		emptyToken:  map[string]any{"access_token": "", "token_type": "bearer", "expires_in": 3600},
		errorBody:   domoError,
		issue: func(r *http.Request, query map[string]any, decodeErr error) reply {
			user, pass, ok := r.BasicAuth()
			switch {
			case decodeErr != nil:
				return domoFail(http.StatusBadRequest, "malformed query")
			case !ok || user != id || subtle.ConstantTimeCompare([]byte(pass), []byte(secret)) != 1:
				return domoFail(http.StatusUnauthorized, "Bad credentials")
			case stringField(query, "grant_type") != "client_credentials":
				return domoFail(http.StatusBadRequest, "grant_type must be client_credentials")
			}
			scope := stringField(query, "scope")
			token := newToken(DomoAccessTokenPrefix)
			return reply{status: http.StatusOK, token: token, ttl: DomoAccessTokenLifetime, body: map[string]any{
				"access_token": token, "token_type": "bearer", "expires_in": int(DomoAccessTokenLifetime / time.Second),
				"scope": scope, "customer": "sim", "env": "prod", "userId": 1, "role": "Admin", "jti": newToken(""),
			}}
		},
	}
}

// domoEmbedEndpoint simulates POST /v1/stories/embed/auth: a live access
// token with the dashboard scope as Bearer, and a body of sessionLength
// (minutes) and authorizations, each an embed ID with READ, FILTER and
// EXPORT permissions and optional filters. It answers {"authentication"},
// an embed token that is a JWT, as Domo's is: its exp is the session's end
// (sessionLength, cut to Options.DomoMaxSession) and its emb claim lists
// the embed IDs it opens, those of the authorizations the API client may
// see (not Options.DomoDeniedEmbedIDs); with none, emb is empty, and the
// token opens nothing.
func domoEmbedEndpoint(s *Server, opts Options) endpoint {
	return endpoint{
		vendor:     "domo",
		method:     http.MethodPost,
		path:       DomoEmbedAuthPath,
		emptyToken: map[string]any{"authentication": ""},
		errorBody:  domoError,
		issue: func(r *http.Request, body map[string]any, decodeErr error) reply {
			if rep, ok := s.domoAuthorized(r); !ok {
				return rep
			}
			if decodeErr != nil {
				return domoFail(http.StatusBadRequest, "request body must be a JSON object")
			}
			minutes, msg := domoSessionLength(body["sessionLength"])
			if msg == "" {
				msg = domoCheckAuthorizations(body["authorizations"])
			}
			if msg != "" {
				return domoFail(http.StatusBadRequest, msg)
			}
			ttl := time.Duration(minutes) * time.Minute
			if limit := opts.DomoMaxSession; limit > 0 && limit < ttl {
				ttl = limit
			}
			now := s.clock.Now()
			token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
				"emb": domoGranted(body["authorizations"], opts.DomoDeniedEmbedIDs), "iat": now.Unix(),
				"exp": now.Add(ttl).Unix(), "jti": newToken(""), "iss": "domo",
			}).SignedString([]byte(DomoEmbedSigningKey))
			if err != nil {
				return domoFail(http.StatusInternalServerError, "sign embed token")
			}
			return reply{status: http.StatusOK, token: token, ttl: ttl, body: map[string]any{"authentication": token}}
		},
	}
}

// domoGranted lists the embed IDs of validated authorizations that are
// not denied, never nil, so an empty grant encodes as [].
func domoGranted(v any, denied []string) []string {
	out := []string{}
	list, _ := v.([]any)
	for _, item := range list {
		a, _ := item.(map[string]any)
		if id := stringField(a, "token"); !slices.Contains(denied, id) && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// domoAuthorized checks the Bearer access token: issued by the token
// endpoint, unexpired and granted the dashboard scope.
func (s *Server) domoAuthorized(r *http.Request) (reply, bool) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !strings.HasPrefix(token, DomoAccessTokenPrefix) {
		return domoFail(http.StatusUnauthorized, "Full authentication is required to access this resource"), false
	}
	s.mu.Lock()
	rec, known := s.tokens[token]
	live := known && s.clock.Now().Before(rec.expiresAt)
	s.mu.Unlock()
	switch {
	case !live:
		return domoFail(http.StatusUnauthorized, "Access token expired or unknown"), false
	case !slices.Contains(strings.Fields(stringField(rec.body, "scope")), DomoEmbedScope):
		return domoFail(http.StatusForbidden, "The access token lacks the dashboard scope"), false
	}
	return reply{}, true
}

// domoSessionLength reads sessionLength, whole minutes up to 8 hours, or
// the 8 hours Domo defaults to; msg explains a bad value.
func domoSessionLength(v any) (minutes int, msg string) {
	if v == nil {
		return maxDomoSessionMinutes, ""
	}
	n, ok := v.(float64)
	if !ok || !wholeNumber(v) || n < 1 || n > maxDomoSessionMinutes {
		return 0, "sessionLength must be a whole number of minutes from 1 to 480"
	}
	return int(n), ""
}

// domoCheckAuthorizations validates the authorizations list; "" means valid.
func domoCheckAuthorizations(v any) string {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return "authorizations must be a non-empty list"
	}
	for _, item := range list {
		a, ok := item.(map[string]any)
		if !ok || stringField(a, "token") == "" {
			return "each authorization needs the embed ID as token"
		}
		perms, ok := a["permissions"].([]any)
		if !ok || len(perms) == 0 {
			return "each authorization needs permissions"
		}
		for _, p := range perms {
			if ps, _ := p.(string); !slices.Contains(domoPermissions, ps) {
				return "permissions must be READ, FILTER or EXPORT"
			}
		}
		if msg := domoCheckFilters(a["filters"]); msg != "" {
			return msg
		}
	}
	return ""
}

// domoCheckFilters validates an authorization's optional filters: each a
// column, an operator and a list of values.
func domoCheckFilters(v any) string {
	if v == nil {
		return ""
	}
	list, ok := v.([]any)
	if !ok {
		return "filters must be a list"
	}
	for _, item := range list {
		f, ok := item.(map[string]any)
		if _, isList := f["values"].([]any); !ok || stringField(f, "column") == "" || !isList ||
			!slices.Contains(domoFilterOperators, stringField(f, "operator")) {
			return "each filter needs a column, an operator such as IN or EQUALS, and a list of values"
		}
	}
	return ""
}
