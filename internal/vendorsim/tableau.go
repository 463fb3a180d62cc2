package vendorsim

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Tableau connected-app wire constants, exported so clients under test and
// the standalone binary agree with the simulator without repeating
// literals.
const (
	// TableauSessionPath stands in for the Tableau server a <tableau-viz
	// token=...> element sends its JWT to; the JWT comes in the token query
	// parameter.
	TableauSessionPath = "/tableau/embed/session"
	// TableauSessionPrefix starts every simulated Tableau session.
	TableauSessionPrefix = "tbs_"
	// DefaultTableauClientID, DefaultTableauSecretID and
	// DefaultTableauSecretValue are the connected app accepted when Options
	// leaves them empty, for demos.
	DefaultTableauClientID    = "demo-tableau-client-id"
	DefaultTableauSecretID    = "demo-tableau-secret-id"
	DefaultTableauSecretValue = "demo-tableau-secret-value"
	// TableauMaxLifetime is how far ahead of Tableau's clock exp may be.
	TableauMaxLifetime = 10 * time.Minute
	// TableauEmbedScope is the scope a token must grant to embed views.
	TableauEmbedScope = "tableau:views:embed"
)

// tableauVendor is the simulated Tableau, which redeems connected-app JWTs
// (the jwt block's) and remembers their jtis.
func tableauVendor() vendor {
	return vendor{
		mount: func(s *Server, opts Options) routes {
			used := &usedOnce{}
			return routes{endpoints: []endpoint{tableauEndpoint(s, opts, used)}, reset: used.reset}
		},
		flags: func(f *Flags) {
			id := f.credential("tableau-client-id", "VENDORSIM_TABLEAU_CLIENT_ID", "connected app client ID Tableau JWTs must name as iss", quoted(DefaultTableauClientID))
			secretID := f.credential("tableau-secret-id", "VENDORSIM_TABLEAU_SECRET_ID", "connected app secret ID Tableau JWTs must name as kid", quoted(DefaultTableauSecretID))
			secret := f.credential("tableau-secret-value", "VENDORSIM_TABLEAU_SECRET_VALUE", "connected app secret value Tableau JWTs must be signed with", quoted(DefaultTableauSecretValue))
			f.set(func(o *Options) error {
				o.TableauClientID, o.TableauSecretID, o.TableauSecretValue = *id, *secretID, *secret
				return nil
			})
		},
		banner: func(base string, _ Options) string {
			return "Tableau connected-app JWTs at " + base + TableauSessionPath + "?token=..."
		},
	}
}

// tableauEndpoint simulates Tableau redeeming a connected app's JWT: HS256
// with the secret value, kid the secret ID, iss the client ID, aud
// "tableau", a sub, scp listing tableau:views:embed, an exp at most 10
// minutes ahead, and a jti never seen before (403).
func tableauEndpoint(s *Server, opts Options, used *usedOnce) endpoint {
	clientID, secretID, secret := opts.TableauClientID, opts.TableauSecretID, opts.TableauSecretValue
	if clientID == "" {
		clientID = DefaultTableauClientID
	}
	if secretID == "" {
		secretID = DefaultTableauSecretID
	}
	if secret == "" {
		secret = DefaultTableauSecretValue
	}
	errorBody := func(status int, msg string) any {
		return map[string]any{"error": map[string]any{"code": status, "detail": msg}}
	}
	fail := func(status int, msg string) reply { return reply{status: status, body: errorBody(status, msg)} }
	return endpoint{
		vendor:       "tableau",
		method:       http.MethodGet,
		path:         TableauSessionPath,
		secretFields: []string{"token"},
		queryBody:    true,
		emptyToken:   map[string]string{"session": ""},
		errorBody:    errorBody,
		issue: func(r *http.Request, body map[string]any, decodeErr error) reply {
			raw := stringField(body, "token")
			if decodeErr != nil || raw == "" {
				return fail(http.StatusBadRequest, "token is required, once")
			}
			now := s.clock.Now()
			claims, err := parseSingleUseJWT(raw, []byte(secret), now, func(t *jwt.Token, c jwt.MapClaims) error {
				if kid, _ := t.Header["kid"].(string); kid != secretID {
					return errors.New("kid is not the connected app's secret ID")
				}
				if iss, _ := c["iss"].(string); iss != clientID {
					return errors.New("iss is not the connected app's client ID")
				}
				if aud, _ := c.GetAudience(); !slices.Contains(aud, "tableau") {
					return errors.New(`aud must be "tableau"`)
				}
				if scp, ok := stringList(c["scp"]); !ok || !slices.Contains(scp, TableauEmbedScope) {
					return errors.New("scp must be a list holding " + TableauEmbedScope)
				}
				if exp, _ := c.GetExpirationTime(); exp.Sub(now) > TableauMaxLifetime {
					return errors.New("exp is more than 10 minutes ahead")
				}
				return nil
			})
			if err != nil {
				return fail(http.StatusUnauthorized, err.Error())
			}
			if !used.use(claims.jti, now, claims.exp) {
				return fail(http.StatusForbidden, "jti already used")
			}
			token := newToken(TableauSessionPrefix)
			return reply{status: http.StatusOK, body: map[string]string{"session": token, "user": claims.sub},
				token: token, ttl: claims.exp.Sub(now)}
		},
	}
}
