package vendorsim

import (
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Apache Superset wire constants, exported so clients under test and the
// standalone binary agree with the simulator without repeating literals.
// Superset's URL is the simulator's URL itself.
const (
	// SupersetLoginPath trades a user's password for an access token.
	SupersetLoginPath = "/api/v1/security/login"
	// SupersetCSRFPath returns a CSRF token and sets the session cookie.
	SupersetCSRFPath = "/api/v1/security/csrf_token/"
	// SupersetGuestTokenPath issues guest tokens.
	SupersetGuestTokenPath = "/api/v1/security/guest_token/"
	// SupersetSessionCookie is the cookie the CSRF token belongs to.
	SupersetSessionCookie = "session"
	// DefaultSupersetUsername is accepted when SupersetOptions.Username is empty, for demos.
	DefaultSupersetUsername = "demo-superset-admin"
	// DefaultSupersetPassword is accepted when SupersetOptions.Password is empty, for demos.
	DefaultSupersetPassword = "demo-superset-password"
	// SupersetAccessTokenLifetime is the access tokens' lifetime, Superset's
	// default (JWT_ACCESS_TOKEN_EXPIRES).
	SupersetAccessTokenLifetime = 15 * time.Minute
	// DefaultSupersetGuestTokenLifetime is the guest tokens' lifetime unless
	// SupersetOptions says otherwise, Superset's default
	// (GUEST_TOKEN_JWT_EXP_SECONDS).
	DefaultSupersetGuestTokenLifetime = 5 * time.Minute
	// SupersetGuestSigningKey signs the simulated guest tokens (HS256). It
	// is public on purpose: tests may verify tokens with it; nothing real
	// trusts it.
	SupersetGuestSigningKey = "vendorsim-superset-guest-signing-key"
)

// SupersetOptions configures the simulated Superset; the zero value is usable.
type SupersetOptions struct {
	// Username and Password are the only login accepted. Empty means
	// DefaultSupersetUsername/Password.
	Username, Password string
	// GuestTokenLifetime is the guest tokens' lifetime; zero means
	// DefaultSupersetGuestTokenLifetime.
	GuestTokenLifetime time.Duration
	// GuestTokenValidator, when set, is Superset's GUEST_TOKEN_VALIDATOR_HOOK:
	// it sees every well-formed guest token body, and an error refuses the
	// token as a hook raising a marshmallow ValidationError does, with HTTP
	// 400 and {"message": ["<the error>"]}.
	GuestTokenValidator func(body map[string]any) error
}

// supersetState is what the three Superset routes share: live access
// tokens and the CSRF token of each session. The zero value is usable.
type supersetState struct {
	mu       sync.Mutex
	access   map[string]time.Time // access token → expiry
	sessions map[string]string    // session cookie → CSRF token
	key      []byte               // signs access tokens
}

func (st *supersetState) init() {
	if st.access == nil {
		st.access, st.sessions, st.key = map[string]time.Time{}, map[string]string{}, make([]byte, 32)
		_, _ = rand.Read(st.key) // crypto/rand.Read never fails since Go 1.24
	}
}

// SupersetLogins counts the successful Superset logins, so tests can check
// that the operator reuses one.
func (s *Server) SupersetLogins() int {
	n := 0
	for _, c := range s.Calls() {
		if c.Vendor == "superset" && c.Path == SupersetLoginPath && c.Status == http.StatusOK {
			n++
		}
	}
	return n
}

// ExpireSupersetLogins makes every access token issued so far invalid, as a
// Superset restart with a new secret key does, so the next call with one is
// answered 401.
func (s *Server) ExpireSupersetLogins() {
	st := &s.superset
	st.mu.Lock()
	defer st.mu.Unlock()
	st.access = map[string]time.Time{}
}

// supersetVendor is the simulated Apache Superset: login, CSRF token and
// guest tokens.
func supersetVendor() vendor {
	return vendor{
		mount: func(s *Server, opts Options) routes {
			return routes{endpoints: []endpoint{supersetLoginEndpoint(s, opts), supersetCSRFEndpoint(s), supersetGuestEndpoint(s, opts)}}
		},
		flags: func(f *Flags) {
			user := f.credential("superset-username", "VENDORSIM_SUPERSET_USERNAME", "login the Superset endpoints accept", quoted(DefaultSupersetUsername))
			password := f.credential("superset-password", "VENDORSIM_SUPERSET_PASSWORD", "password of that login", quoted(DefaultSupersetPassword))
			guestTTL := f.fs.Duration("superset-guest-token-lifetime", DefaultSupersetGuestTokenLifetime, "lifetime of Superset guest tokens (Superset's GUEST_TOKEN_JWT_EXP_SECONDS)")
			f.set(func(o *Options) error {
				if *guestTTL <= 0 {
					return fmt.Errorf("--superset-guest-token-lifetime must be positive, not %s", *guestTTL)
				}
				o.Superset = SupersetOptions{Username: *user, Password: *password, GuestTokenLifetime: *guestTTL}
				return nil
			})
		},
		banner: func(base string, _ Options) string {
			return "Superset URL " + base + " (guest tokens at " + SupersetGuestTokenPath + ")"
		},
	}
}

// supersetError is Superset's REST API error: {"message": ...}, where the
// message is a string or, for a body that fails validation, an object of
// field errors.
func supersetError(status int, msg any) reply {
	return reply{status: status, body: map[string]any{"message": msg}}
}

func supersetEndpoint(path, method string, emptyToken any, issue func(*http.Request, map[string]any, error) reply) endpoint {
	return endpoint{
		vendor:     "superset",
		method:     method,
		path:       path,
		emptyToken: emptyToken,
		errorBody:  func(_ int, msg string) any { return supersetError(0, msg).body },
		issue:      issue,
	}
}

// supersetLoginEndpoint simulates POST /api/v1/security/login.
func supersetLoginEndpoint(s *Server, opts Options) endpoint {
	user := cmp.Or(opts.Superset.Username, DefaultSupersetUsername)
	pass := cmp.Or(opts.Superset.Password, DefaultSupersetPassword)
	e := supersetEndpoint(SupersetLoginPath, http.MethodPost, map[string]string{"access_token": ""},
		func(_ *http.Request, body map[string]any, decodeErr error) reply {
			if decodeErr != nil {
				return supersetError(http.StatusBadRequest, "request body must be a JSON object")
			}
			if msg := checkSupersetLogin(body); msg != nil {
				return supersetError(http.StatusBadRequest, msg)
			}
			if stringField(body, "username") != user || subtle.ConstantTimeCompare([]byte(stringField(body, "password")), []byte(pass)) != 1 {
				return supersetError(http.StatusUnauthorized, "Not authorized")
			}
			now := s.clock.Now()
			token, err := s.superset.issueAccess(user, now)
			if err != nil {
				return supersetError(http.StatusInternalServerError, "sign token")
			}
			out := map[string]any{"access_token": token}
			if body["refresh"] == true {
				out["refresh_token"] = newToken("ssr_")
			}
			return reply{status: http.StatusOK, body: out}
		})
	e.secretFields = []string{"password"}
	return e
}

// checkSupersetLogin validates a login body strictly, returning nil when
// it is acceptable.
func checkSupersetLogin(body map[string]any) any {
	fields := map[string]any{}
	for _, f := range []string{"username", "password"} {
		if v, ok := body[f].(string); !ok || v == "" {
			fields[f] = []string{"Missing data for required field."}
		}
	}
	if p := body["provider"]; p != "db" && p != "ldap" {
		fields["provider"] = []string{"Must be one of: db, ldap."}
	}
	if r, ok := body["refresh"]; ok {
		if _, isBool := r.(bool); !isBool {
			fields["refresh"] = []string{"Not a valid boolean."}
		}
	}
	checkKeys(body, []string{"username", "password", "provider", "refresh"}, "", fields)
	if len(fields) == 0 {
		return nil
	}
	return fields
}

// issueAccess signs an access token valid for SupersetAccessTokenLifetime.
func (st *supersetState) issueAccess(user string, now time.Time) (string, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.init()
	exp := now.Add(SupersetAccessTokenLifetime)
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": user, "type": "access", "fresh": true, "jti": newToken(""), "iat": now.Unix(), "nbf": now.Unix(), "exp": exp.Unix(),
	}).SignedString(st.key)
	if err == nil {
		st.access[token] = exp
	}
	return token, err
}

// checkAccess answers the 401 Superset gives a missing, unknown or expired
// access token, or ok.
func (st *supersetState) checkAccess(r *http.Request, now time.Time) (reply, bool) {
	token, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !found || token == "" {
		return reply{status: http.StatusUnauthorized, body: map[string]string{"msg": "Missing Authorization Header"}}, false
	}
	st.mu.Lock()
	exp, ok := st.access[token]
	st.mu.Unlock()
	if !ok || !now.Before(exp) {
		return reply{status: http.StatusUnauthorized, body: map[string]string{"msg": "Token has expired"}}, false
	}
	return reply{}, true
}

// supersetCSRFEndpoint simulates GET /api/v1/security/csrf_token/: a new
// session cookie and the CSRF token bound to it.
func supersetCSRFEndpoint(s *Server) endpoint {
	return supersetEndpoint(SupersetCSRFPath, http.MethodGet, map[string]string{"result": ""},
		func(r *http.Request, _ map[string]any, _ error) reply {
			st := &s.superset
			if rep, ok := st.checkAccess(r, s.clock.Now()); !ok {
				return rep
			}
			session, csrf := newToken(""), newToken("")
			st.mu.Lock()
			st.init()
			st.sessions[session] = csrf
			st.mu.Unlock()
			cookie := &http.Cookie{Name: SupersetSessionCookie, Value: session, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode} //nolint:gosec // G124: the simulator serves plain HTTP, a Secure cookie would never come back
			return reply{status: http.StatusOK, body: map[string]string{"result": csrf},
				header: http.Header{"Set-Cookie": {cookie.String()}}}
		})
}

// supersetGuestEndpoint simulates POST /api/v1/security/guest_token/. It
// checks the access token, the CSRF token against the session cookie, a
// same-origin Referer (Superset asks for one over https) and the body,
// more strictly than Superset: unknown fields are refused.
func supersetGuestEndpoint(s *Server, opts Options) endpoint {
	ttl := cmp.Or(opts.Superset.GuestTokenLifetime, DefaultSupersetGuestTokenLifetime)
	return supersetEndpoint(SupersetGuestTokenPath, http.MethodPost, map[string]string{"token": ""},
		func(r *http.Request, body map[string]any, decodeErr error) reply {
			st := &s.superset
			now := s.clock.Now()
			if rep, ok := st.checkAccess(r, now); !ok {
				return rep
			}
			if msg := st.checkCSRF(r); msg != "" {
				return reply{status: http.StatusBadRequest, body: map[string]any{"errors": []any{
					map[string]any{"message": "400 Bad Request: " + msg, "error_type": "GENERIC_BACKEND_ERROR", "level": "error"}}}}
			}
			if decodeErr != nil {
				return supersetError(http.StatusBadRequest, "request body must be a JSON object")
			}
			if fields := checkGuestBody(body); fields != nil {
				return supersetError(http.StatusBadRequest, fields)
			}
			if hook := opts.Superset.GuestTokenValidator; hook != nil {
				if err := hook(body); err != nil {
					return supersetError(http.StatusBadRequest, []string{err.Error()})
				}
			}
			token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
				"user": body["user"], "resources": body["resources"], "rls_rules": body["rls"], "type": "guest",
				"aud": "superset", "iat": now.Unix(), "exp": now.Add(ttl).Unix(), "jti": newToken(""),
			}).SignedString([]byte(SupersetGuestSigningKey))
			if err != nil {
				return supersetError(http.StatusInternalServerError, "sign token")
			}
			return reply{status: http.StatusOK, body: map[string]string{"token": token}, token: token, ttl: ttl}
		})
}

// checkCSRF returns why Flask-WTF would refuse the call, or "".
func (st *supersetState) checkCSRF(r *http.Request) string {
	cookie, err := r.Cookie(SupersetSessionCookie)
	if err != nil {
		return "The CSRF session token is missing."
	}
	st.mu.Lock()
	want, ok := st.sessions[cookie.Value]
	st.mu.Unlock()
	got := r.Header.Get("X-CSRFToken")
	switch {
	case got == "":
		return "The CSRF token is missing."
	case !ok || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1:
		return "The CSRF tokens do not match."
	}
	ref, err := url.Parse(r.Referer())
	if r.Referer() == "" || err != nil {
		return "The referrer header is missing."
	}
	if ref.Host != r.Host {
		return "The referrer does not match the host."
	}
	return ""
}

// checkGuestBody validates a guest token body as Superset's schema does,
// and refuses unknown fields too; it returns the field errors in
// Superset's shape, or nil.
func checkGuestBody(body map[string]any) map[string]any {
	fields := map[string]any{}
	checkKeys(body, []string{"user", "resources", "rls"}, "", fields)
	if u, ok := body["user"]; ok {
		user, isObject := u.(map[string]any)
		if !isObject {
			fields["user"] = []string{"Not a valid mapping type."}
		}
		checkKeys(user, []string{"username", "first_name", "last_name", "attributes"}, "user.", fields)
		for k, v := range user {
			if _, isString := v.(string); !isString && k != "attributes" {
				fields["user."+k] = []string{"Not a valid string."}
			}
		}
		if a, ok := user["attributes"]; ok {
			if _, isObject := a.(map[string]any); !isObject && a != nil {
				fields["user.attributes"] = []string{"Not a valid mapping type."}
			}
		}
	}
	resources, ok := body["resources"].([]any)
	if !ok || len(resources) == 0 {
		fields["resources"] = []string{"Missing data for required field."}
	}
	for i, item := range resources {
		r, _ := item.(map[string]any)
		path := "resources." + strconv.Itoa(i) + "."
		checkKeys(r, []string{"type", "id"}, path, fields)
		if r["type"] != "dashboard" {
			fields[path+"type"] = []string{"Must be one of: dashboard."}
		}
		if id, _ := r["id"].(string); id == "" {
			fields[path+"id"] = []string{"Missing data for required field."}
		}
	}
	rls, ok := body["rls"].([]any)
	if !ok {
		fields["rls"] = []string{"Missing data for required field."}
	}
	for i, item := range rls {
		r, _ := item.(map[string]any)
		path := "rls." + strconv.Itoa(i) + "."
		checkKeys(r, []string{"clause", "dataset"}, path, fields)
		if c, _ := r["clause"].(string); c == "" {
			fields[path+"clause"] = []string{"Missing data for required field."}
		}
		if d, ok := r["dataset"]; ok {
			if n, isNumber := d.(float64); !isNumber || n < 1 || n != float64(int64(n)) {
				fields[path+"dataset"] = []string{"Not a valid integer."}
			}
		}
	}
	if len(fields) == 0 {
		return nil
	}
	return fields
}

// checkKeys records every key of obj not in allowed as an unknown field.
func checkKeys(obj map[string]any, allowed []string, path string, fields map[string]any) {
	for k := range obj {
		if !slices.Contains(allowed, k) {
			fields[path+k] = []string{"Unknown field."}
		}
	}
}
