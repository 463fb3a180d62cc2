package vendorsim

import (
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Generic OAuth 2.0 (RFC 6749) wire constants, exported so clients under test
// and the standalone binary agree with the simulator without repeating literals.
const (
	// OAuth2TokenPath is the simulated authorization server's token endpoint.
	OAuth2TokenPath = "/oauth2/token"
	// OAuth2TokenPrefix starts every simulated opaque OAuth2 token.
	OAuth2TokenPrefix = "oa2_"
	// OAuth2TokenLifetime is the lifetime of every simulated OAuth2 token.
	OAuth2TokenLifetime = time.Hour
	// DefaultOAuth2ClientID is accepted when Options.OAuth2ClientID is empty, for demos.
	DefaultOAuth2ClientID = "demo-oauth2-client-id"
	// DefaultOAuth2ClientSecret is accepted when Options.OAuth2ClientSecret is empty, for demos.
	DefaultOAuth2ClientSecret = "demo-oauth2-client-secret"
)

// oauth2Vendor is the simulated generic OAuth 2.0 authorization server.
func oauth2Vendor() vendor {
	return vendor{
		mount: func(s *Server, opts Options) routes { return one(oauth2Endpoint(s, opts)) },
		flags: func(f *Flags) {
			id := f.credential("oauth2-client-id", "VENDORSIM_OAUTH2_CLIENT_ID", "client_id the OAuth2 endpoint accepts", quoted(DefaultOAuth2ClientID))
			secret := f.credential("oauth2-client-secret", "VENDORSIM_OAUTH2_CLIENT_SECRET", "client_secret the OAuth2 endpoint accepts", quoted(DefaultOAuth2ClientSecret))
			jwtTokens := f.fs.Bool("oauth2-jwt-access-tokens", false, "answer OAuth2 with JWT access tokens and no expires_in, so clients must read the exp claim")
			subject := f.fs.String("oauth2-federated-subject", "", "sub the OAuth2 endpoint trusts in a client assertion; enables client assertions")
			audience := f.fs.String("oauth2-federated-audience", DefaultFederatedAudience, "aud the OAuth2 endpoint expects in a federated client assertion")
			certFile := f.fs.String("oauth2-client-certificate", "", "PEM file of the certificate the OAuth2 endpoint accepts private_key_jwt assertions signed with")
			f.set(func(o *Options) (err error) {
				o.OAuth2ClientID, o.OAuth2ClientSecret, o.OAuth2JWTAccessTokens = *id, *secret, *jwtTokens
				if o.OAuth2Federation, err = f.federated(*subject, *audience); err != nil {
					return err
				}
				o.OAuth2Certificates, err = readCertificates(*certFile)
				return err
			})
		},
		banner: func(base string, _ Options) string {
			return "OAuth2 token endpoint at " + base + OAuth2TokenPath
		},
	}
}

// oauth2Error renders an RFC 6749 section 5.2 error.
func oauth2Error(status int, code, description string) reply {
	return reply{status: status, body: map[string]string{"error": code, "error_description": description}}
}

// oauth2Endpoint simulates a token endpoint that accepts client_secret_basic
// or client_secret_post, form or JSON bodies, client_credentials or any URN
// grant, and answers opaque tokens with expires_in, or JWTs without it when
// Options.OAuth2JWTAccessTokens is set.
func oauth2Endpoint(s *Server, opts Options) endpoint {
	id, secret := cmp.Or(opts.OAuth2ClientID, DefaultOAuth2ClientID), cmp.Or(opts.OAuth2ClientSecret, DefaultOAuth2ClientSecret)
	signingKey := make([]byte, 32)
	_, _ = rand.Read(signingKey) // crypto/rand.Read never fails since Go 1.24
	return endpoint{
		vendor:       "oauth2",
		method:       http.MethodPost,
		path:         OAuth2TokenPath,
		secretFields: []string{"client_secret", "client_assertion"},
		formBodies:   true,
		emptyToken:   map[string]any{"access_token": "", "token_type": "Bearer", "expires_in": 3600},
		errorBody: func(status int, msg string) any {
			code := "server_error"
			if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
				code = "temporarily_unavailable"
			}
			return oauth2Error(status, code, msg).body
		},
		issue: func(r *http.Request, body map[string]any, decodeErr error) reply {
			if decodeErr != nil {
				return oauth2Error(http.StatusBadRequest, "invalid_request", "body must be form-encoded or a JSON object")
			}
			if _, ok := body["client_assertion"]; ok {
				if rep, ok := oauth2CheckAssertion(r, body, id, opts, s.clock.Now()); !ok {
					return rep
				}
			} else {
				gotID, gotSecret, err := oauth2Client(r, body)
				if err != nil {
					return oauth2Error(http.StatusBadRequest, "invalid_request", err.Error())
				}
				if gotID != id || subtle.ConstantTimeCompare([]byte(gotSecret), []byte(secret)) != 1 {
					return oauth2Error(http.StatusUnauthorized, "invalid_client", "client authentication failed")
				}
			}
			if rep, ok := oauth2CheckGrant(body, opts.OAuth2AllowedScopes); !ok {
				return rep
			}
			now := s.clock.Now()
			out := map[string]any{"token_type": "Bearer"}
			if scope := stringField(body, "scope"); scope != "" {
				out["scope"] = scope
			}
			token := newToken(OAuth2TokenPrefix)
			if opts.OAuth2JWTAccessTokens {
				token, _ = jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
					"sub": id, "iat": now.Unix(), "exp": now.Add(OAuth2TokenLifetime).Unix(), "jti": newToken(""),
				}).SignedString(signingKey) // HMAC signing with a 32-byte key cannot fail
			} else {
				out["expires_in"] = int(OAuth2TokenLifetime / time.Second)
			}
			out["access_token"] = token
			return reply{status: http.StatusOK, body: out, token: token, ttl: OAuth2TokenLifetime}
		},
	}
}

// oauth2Client reads the client's credentials from HTTP Basic, where RFC 6749
// section 2.3.1 form-encodes them first, or from the body; RFC 6749 forbids
// using both in one request.
func oauth2Client(r *http.Request, body map[string]any) (id, secret string, err error) {
	if r.Header.Get("Authorization") == "" {
		return stringField(body, "client_id"), stringField(body, "client_secret"), nil
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return "", "", errors.New("the Authorization header must use the Basic scheme")
	}
	if _, inBody := body["client_secret"]; inBody {
		return "", "", errors.New("the client must use exactly one authentication method")
	}
	if id, err = url.QueryUnescape(user); err == nil {
		secret, err = url.QueryUnescape(pass)
	}
	if err != nil {
		return "", "", errors.New("the Basic credentials must be form-encoded")
	}
	return id, secret, nil
}

// oauth2CheckAssertion authenticates a client by a JWT client assertion
// (RFC 7523 section 2.2): client_id and the assertion in the body, no other
// authentication, the assertion verified against the federation or the
// certificates opts configure; ok is false with the error reply.
func oauth2CheckAssertion(r *http.Request, body map[string]any, id string, opts Options, now time.Time) (rep reply, ok bool) {
	_, secret := body["client_secret"]
	switch {
	case r.Header.Get("Authorization") != "" || secret:
		return oauth2Error(http.StatusBadRequest, "invalid_request", "the client must use exactly one authentication method"), false
	case stringField(body, "client_assertion_type") != ClientAssertionType:
		return oauth2Error(http.StatusBadRequest, "invalid_request", "client_assertion_type must be "+ClientAssertionType), false
	case stringField(body, "client_id") != id:
		return oauth2Error(http.StatusUnauthorized, "invalid_client", "client authentication failed"), false
	}
	if err := verifyAssertion(r, opts.OAuth2Federation, opts.OAuth2Certificates, stringField(body, "client_assertion"), id, now); err != nil {
		return oauth2Error(http.StatusUnauthorized, "invalid_client", err.Error()), false
	}
	return reply{}, true
}

// oauth2CheckGrant accepts client_credentials and any URN grant, and scopes
// from allowed when that list is set; ok is false with the error reply.
func oauth2CheckGrant(body map[string]any, allowed []string) (rep reply, ok bool) {
	grant := stringField(body, "grant_type")
	switch {
	case grant == "":
		return oauth2Error(http.StatusBadRequest, "invalid_request", "grant_type is required"), false
	case grant != "client_credentials" && !strings.HasPrefix(grant, "urn:"):
		return oauth2Error(http.StatusBadRequest, "unsupported_grant_type", "grant_type "+grant+" is not supported"), false
	}
	for _, scope := range strings.Fields(stringField(body, "scope")) {
		if len(allowed) > 0 && !slices.Contains(allowed, scope) {
			return oauth2Error(http.StatusBadRequest, "invalid_scope", "scope "+scope+" is not allowed"), false
		}
	}
	return reply{}, true
}
