package vendorsim

import (
	"cmp"
	"crypto/subtle"
	"fmt"
	"net/http"
	"time"
)

// Qlik Cloud wire constants, exported so clients under test and the
// standalone binary agree with the simulator without repeating literals.
const (
	// QlikTokenPath is where a Qlik Cloud tenant issues OAuth access tokens.
	QlikTokenPath = "/oauth/token"
	// QlikRevokePath is where a Qlik Cloud tenant revokes them.
	QlikRevokePath = "/oauth/revoke"
	// QlikImpersonationGrant is the grant that issues a token for a user.
	QlikImpersonationGrant = "urn:qlik:oauth:user-impersonation"
	// QlikTokenPrefix starts every simulated Qlik token, making them easy to recognise.
	QlikTokenPrefix = "qlk_"
	// QlikTokenLimitCode is the error code answered when a user holds
	// Options.QlikMaxTokensPerUser live tokens.
	QlikTokenLimitCode = "OAUTH-14"
	// QlikTokenLifetime is the lifetime of every simulated Qlik token; Qlik
	// decides it, the client cannot ask for another.
	QlikTokenLifetime = time.Hour
	// DefaultQlikClientID is accepted when Options.QlikClientID is empty, for demos.
	DefaultQlikClientID = "demo-qlik-client-id"
	// DefaultQlikClientSecret is accepted when Options.QlikClientSecret is empty, for demos.
	DefaultQlikClientSecret = "demo-qlik-client-secret"
)

// qlikUserFields are the user_lookup fields Qlik matches users by.
var qlikUserFields = map[string]bool{"subject": true, "userId": true, "email": true}

// qlikError renders Qlik's error shape: a list of errors with code and title.
func qlikError(status int, code, title, detail string) reply {
	e := map[string]string{"code": code, "title": title, "status": fmt.Sprint(status)}
	if detail != "" {
		e["detail"] = detail
	}
	return reply{status: status, body: map[string]any{"errors": []any{e}}}
}

// qlikCloudVendor is the simulated Qlik Cloud tenant.
func qlikCloudVendor() vendor {
	return vendor{
		mount: func(s *Server, opts Options) routes {
			return routes{endpoints: []endpoint{qlikTokenEndpoint(s, opts), qlikRevokeEndpoint(s, opts)}}
		},
		flags: func(f *Flags) {
			id := f.credential("qlik-client-id", "VENDORSIM_QLIK_CLIENT_ID", "OAuth client_id the Qlik Cloud endpoints accept", quoted(DefaultQlikClientID))
			secret := f.credential("qlik-client-secret", "VENDORSIM_QLIK_CLIENT_SECRET", "OAuth client_secret the Qlik Cloud endpoints accept", quoted(DefaultQlikClientSecret))
			expiresAt := f.fs.Bool("qlik-expires-at", false, "answer Qlik Cloud with expires_at (RFC 3339) instead of expires_in")
			maxTokens := f.fs.Int("qlik-max-tokens-per-user", 0, "refuse a Qlik Cloud user more live tokens than this (0: no limit)")
			f.set(func(o *Options) error {
				o.QlikClientID, o.QlikClientSecret, o.QlikExpiresAt, o.QlikMaxTokensPerUser = *id, *secret, *expiresAt, *maxTokens
				return nil
			})
		},
		banner: func(base string, _ Options) string {
			return fmt.Sprintf("Qlik Cloud tenant URL %s (token at %s, revoke at %s)", base, QlikTokenPath, QlikRevokePath)
		},
	}
}

// qlikEndpoint builds one Qlik route; both check the OAuth client the same way.
func qlikEndpoint(opts Options, path string, secretFields []string, emptyToken any, handle func(body map[string]any) reply) endpoint {
	id, secret := cmp.Or(opts.QlikClientID, DefaultQlikClientID), cmp.Or(opts.QlikClientSecret, DefaultQlikClientSecret)
	return endpoint{
		vendor:       "qlikCloud",
		method:       http.MethodPost,
		path:         path,
		secretFields: secretFields,
		emptyToken:   emptyToken,
		errorBody: func(status int, msg string) any {
			return qlikError(status, fmt.Sprintf("HTTP-%d", status), msg, "").body
		},
		issue: func(_ *http.Request, body map[string]any, decodeErr error) reply {
			if decodeErr != nil {
				return qlikError(http.StatusBadRequest, "OAUTH-2", "invalid_request", "request body must be a JSON object")
			}
			if stringField(body, "client_id") != id || subtle.ConstantTimeCompare([]byte(stringField(body, "client_secret")), []byte(secret)) != 1 {
				return qlikError(http.StatusUnauthorized, "OAUTH-1", "invalid_client", "client authentication failed")
			}
			return handle(body)
		},
	}
}

// qlikTokenEndpoint simulates POST /oauth/token: client_credentials, or user
// impersonation with a user_lookup, optionally capped per user. The cap is
// checked when a request arrives, so concurrent requests for one user may
// overshoot it; tests that exercise it call sequentially.
func qlikTokenEndpoint(s *Server, opts Options) endpoint {
	empty := map[string]any{"access_token": "", "token_type": "Bearer", "expires_in": 3600}
	return qlikEndpoint(opts, QlikTokenPath, []string{"client_secret"}, empty, func(body map[string]any) reply {
		user, rep, ok := qlikUser(body)
		if !ok {
			return rep
		}
		if opts.QlikMaxTokensPerUser > 0 && user != "" &&
			s.liveTokens(func(b map[string]any) bool { u, _, _ := qlikUser(b); return u == user }) >= opts.QlikMaxTokensPerUser {
			return qlikError(http.StatusForbidden, QlikTokenLimitCode, "Too many tokens", "The user has reached the maximum number of access tokens")
		}
		token := newToken(QlikTokenPrefix)
		out := map[string]any{"access_token": token, "token_type": "Bearer", "scope": stringField(body, "scope")}
		if opts.QlikExpiresAt {
			out["expires_at"] = s.clock.Now().Add(QlikTokenLifetime).UTC().Format(time.RFC3339)
		} else {
			out["expires_in"] = int(QlikTokenLifetime / time.Second)
		}
		return reply{status: http.StatusOK, body: out, token: token, ttl: QlikTokenLifetime}
	})
}

// qlikUser validates the grant and names the impersonated user as
// "field=value" ("" for client_credentials); ok is false with the error reply.
func qlikUser(body map[string]any) (user string, rep reply, ok bool) {
	switch stringField(body, "grant_type") {
	case "client_credentials":
		return "", reply{}, true
	case QlikImpersonationGrant:
		lookup, _ := body["user_lookup"].(map[string]any)
		field, value := stringField(lookup, "field"), stringField(lookup, "value")
		if !qlikUserFields[field] || value == "" {
			return "", qlikError(http.StatusBadRequest, "OAUTH-3", "invalid_request", "user_lookup needs a field (subject, userId or email) and a value"), false
		}
		return field + "=" + value, reply{}, true
	}
	return "", qlikError(http.StatusBadRequest, "OAUTH-4", "unsupported_grant_type", "grant_type must be client_credentials or "+QlikImpersonationGrant), false
}

// qlikRevokeEndpoint simulates POST /oauth/revoke (RFC 7009): unknown tokens
// are not an error, and a revoked token frees its user's slot.
func qlikRevokeEndpoint(s *Server, opts Options) endpoint {
	return qlikEndpoint(opts, QlikRevokePath, []string{"client_secret", "token"}, map[string]any{}, func(body map[string]any) reply {
		token := stringField(body, "token")
		if token == "" {
			return qlikError(http.StatusBadRequest, "OAUTH-2", "invalid_request", "token is required")
		}
		s.revoke(QlikTokenPrefix, token)
		return reply{status: http.StatusOK, body: map[string]any{}}
	})
}
