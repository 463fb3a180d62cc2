package vendorsim

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // Looker's signature is HMAC-SHA1
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Looker wire constants, exported so clients under test and the standalone
// binary agree with the simulator without repeating literals.
const (
	// LookerEmbedPathPrefix starts a signed embed URL's path; the
	// URL-encoded target path follows.
	LookerEmbedPathPrefix = "/login/embed/"
	// LookerSessionPrefix starts every simulated Looker embed session.
	LookerSessionPrefix = "lks_"
	// DefaultLookerEmbedSecret is accepted when Options.LookerEmbedSecret is empty, for demos.
	DefaultLookerEmbedSecret = "demo-looker-embed-secret"
	// LookerURLMaxAge is how far a signed URL's time may be from the
	// simulator's clock, either way, for Looker to redeem it.
	LookerURLMaxAge = 5 * time.Minute
	// LookerMaxSessionLength is the longest session_length Looker accepts.
	LookerMaxSessionLength = 30 * 24 * time.Hour
)

// lookerSigned are the parameters of Looker's string to sign after host
// and path, in order; optional ones take a line only when sent.
var lookerSigned = []struct {
	name     string
	optional bool
}{
	{"nonce", false}, {"time", false}, {"session_length", false}, {"external_user_id", false},
	{"permissions", false}, {"models", false}, {"group_ids", true}, {"external_group_id", true},
	{"user_attributes", true}, {"access_filters", false},
}

// lookerVendor is the simulated Looker, which redeems signed embed URLs
// and remembers their nonces.
func lookerVendor() vendor {
	return vendor{
		mount: func(s *Server, opts Options) routes {
			used := &usedOnce{}
			return routes{endpoints: []endpoint{lookerEndpoint(s, opts, used)}, reset: used.reset}
		},
		flags: func(f *Flags) {
			secret := f.credential("looker-embed-secret", "VENDORSIM_LOOKER_EMBED_SECRET", "embed secret Looker signed embed URLs must be signed with", quoted(DefaultLookerEmbedSecret))
			f.set(func(o *Options) error { o.LookerEmbedSecret = *secret; return nil })
		},
		banner: func(base string, _ Options) string {
			return "Looker URL " + base + " (signed embed URLs redeemed at " + LookerEmbedPathPrefix + "...)"
		},
	}
}

// lookerEndpoint simulates a browser opening a signed embed URL,
// GET /login/embed/{url-encoded target}?...: the signature must be the
// HMAC-SHA1 of the host, path and parameters with the embed secret, the
// time recent, the session length in range and the nonce new. A reused
// nonce is refused with 403, a bad signature with 401.
func lookerEndpoint(s *Server, opts Options, used *usedOnce) endpoint {
	secret := opts.LookerEmbedSecret
	if secret == "" {
		secret = DefaultLookerEmbedSecret
	}
	errorBody := func(status int, msg string) any { return map[string]any{"message": msg} }
	fail := func(status int, msg string) reply { return reply{status: status, body: errorBody(status, msg)} }
	return endpoint{
		vendor:       "looker",
		method:       http.MethodGet,
		path:         LookerEmbedPathPrefix,
		secretFields: []string{"signature", "nonce"},
		queryBody:    true,
		emptyToken:   map[string]string{"session": ""},
		errorBody:    errorBody,
		issue: func(r *http.Request, body map[string]any, decodeErr error) reply {
			if decodeErr != nil {
				return fail(http.StatusBadRequest, "malformed query")
			}
			var lines []string
			lines = append(lines, r.Host, r.URL.EscapedPath())
			for _, p := range lookerSigned {
				v, ok := body[p.name].(string)
				switch {
				case !ok && p.optional:
					continue
				case !ok || v == "":
					return fail(http.StatusBadRequest, p.name+" is required, once")
				}
				lines = append(lines, v)
			}
			mac := hmac.New(sha1.New, []byte(secret))
			mac.Write([]byte(strings.Join(lines, "\n")))
			want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
			if !hmac.Equal([]byte(stringField(body, "signature")), []byte(want)) {
				return fail(http.StatusUnauthorized, "signature mismatch")
			}
			now := s.clock.Now()
			unix, err := strconv.ParseInt(stringField(body, "time"), 10, 64)
			if err != nil || now.Sub(time.Unix(unix, 0)).Abs() > LookerURLMaxAge {
				return fail(http.StatusUnauthorized, "time is not within 5 minutes of the server's clock")
			}
			session, err := strconv.ParseInt(stringField(body, "session_length"), 10, 64)
			if err != nil || session < 1 || time.Duration(session)*time.Second > LookerMaxSessionLength {
				return fail(http.StatusBadRequest, "session_length must be 1 to 2592000 seconds")
			}
			var user string
			if json.Unmarshal([]byte(stringField(body, "external_user_id")), &user) != nil || user == "" {
				return fail(http.StatusBadRequest, "external_user_id must be a JSON string")
			}
			for _, name := range []string{"permissions", "models"} {
				var list []string
				if json.Unmarshal([]byte(stringField(body, name)), &list) != nil {
					return fail(http.StatusBadRequest, name+" must be a JSON list of strings")
				}
			}
			if !used.use(stringField(body, "nonce"), now, time.Unix(unix, 0).Add(LookerURLMaxAge)) {
				return fail(http.StatusForbidden, "nonce already used")
			}
			token := newToken(LookerSessionPrefix)
			return reply{status: http.StatusOK, body: map[string]string{"session": token, "external_user_id": user},
				token: token, ttl: time.Duration(session) * time.Second}
		},
	}
}
