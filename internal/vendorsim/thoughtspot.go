package vendorsim

import (
	"crypto/subtle"
	"math"
	"net/http"
	"time"
)

// ThoughtSpot wire constants, exported so clients under test and the
// standalone binary agree with the simulator without repeating literals.
const (
	// ThoughtSpotTokenPath is where ThoughtSpot issues full access tokens
	// with a trusted-authentication secret key.
	ThoughtSpotTokenPath = "/api/rest/2.0/auth/token/full"
	// ThoughtSpotTokenPrefix starts every simulated ThoughtSpot token.
	ThoughtSpotTokenPrefix = "ts_"
	// DefaultThoughtSpotSecretKey is accepted when Options.ThoughtSpotSecretKey is empty, for demos.
	DefaultThoughtSpotSecretKey = "demo-secret-key"
	// DefaultThoughtSpotValidity is the lifetime when validity_time_in_sec is absent.
	DefaultThoughtSpotValidity = 300 * time.Second
	// maxThoughtSpotValidity bounds validity_time_in_sec to keep durations sane.
	maxThoughtSpotValidity = 10 * 365 * 24 * time.Hour
)

// thoughtSpotVendor is the simulated ThoughtSpot, which the generic http
// block reaches.
func thoughtSpotVendor() vendor {
	return vendor{
		mount: func(s *Server, opts Options) routes { return one(thoughtSpotEndpoint(s, opts)) },
		flags: func(f *Flags) {
			key := f.credential("thoughtspot-secret-key", "VENDORSIM_THOUGHTSPOT_SECRET_KEY", "secret_key the ThoughtSpot endpoint accepts", quoted(DefaultThoughtSpotSecretKey))
			f.set(func(o *Options) error { o.ThoughtSpotSecretKey = *key; return nil })
		},
		banner: func(base string, _ Options) string {
			return "ThoughtSpot token endpoint at " + base + ThoughtSpotTokenPath
		},
	}
}

// thoughtSpotEndpoint simulates POST /api/rest/2.0/auth/token/full: the
// secret_key in the body authenticates, username names the user, and the
// answer states creation and expiry in epoch milliseconds.
func thoughtSpotEndpoint(s *Server, opts Options) endpoint {
	key := opts.ThoughtSpotSecretKey
	if key == "" {
		key = DefaultThoughtSpotSecretKey
	}
	errorBody := func(status int, msg string) any {
		return map[string]any{"error": map[string]any{"message": msg, "code": status}}
	}
	fail := func(status int, msg string) reply { return reply{status: status, body: errorBody(status, msg)} }
	return endpoint{
		vendor:       "thoughtspot",
		method:       http.MethodPost,
		path:         ThoughtSpotTokenPath,
		secretFields: []string{"secret_key"},
		emptyToken:   map[string]any{"token": "", "creation_time_in_millis": 0, "expiration_time_in_millis": 0},
		errorBody:    errorBody,
		issue: func(_ *http.Request, body map[string]any, decodeErr error) reply {
			if decodeErr != nil {
				return fail(http.StatusBadRequest, "request body must be a JSON object")
			}
			user := stringField(body, "username")
			if user == "" {
				return fail(http.StatusBadRequest, "username is required")
			}
			if subtle.ConstantTimeCompare([]byte(stringField(body, "secret_key")), []byte(key)) != 1 {
				return fail(http.StatusUnauthorized, "invalid secret_key for trusted authentication")
			}
			ttl, ok := thoughtSpotValidity(body["validity_time_in_sec"])
			if !ok {
				return fail(http.StatusBadRequest, "validity_time_in_sec must be a positive whole number")
			}
			if v, present := body["org_id"]; present && !wholeNumber(v) {
				return fail(http.StatusBadRequest, "org_id must be a whole number")
			}
			now := s.clock.Now()
			token := newToken(ThoughtSpotTokenPrefix)
			return reply{status: http.StatusOK, token: token, ttl: ttl, body: map[string]any{
				"token":                     token,
				"creation_time_in_millis":   now.UnixMilli(),
				"expiration_time_in_millis": now.Add(ttl).UnixMilli(),
				"valid_for_user_id":         "uid-" + user,
				"valid_for_username":        user,
			}}
		},
	}
}

// thoughtSpotValidity reads validity_time_in_sec, defaulting when absent.
func thoughtSpotValidity(v any) (time.Duration, bool) {
	if v == nil {
		return DefaultThoughtSpotValidity, true
	}
	n, ok := v.(float64)
	if !ok || !wholeNumber(v) || n <= 0 || n > maxThoughtSpotValidity.Seconds() {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// wholeNumber reports whether a decoded JSON value is an integer number.
func wholeNumber(v any) bool {
	n, ok := v.(float64)
	return ok && n == math.Trunc(n) && !math.IsInf(n, 0)
}
