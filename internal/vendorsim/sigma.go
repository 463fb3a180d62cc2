package vendorsim

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Sigma wire constants, exported so clients under test and the standalone
// binary agree with the simulator without repeating literals.
const (
	// SigmaEmbedPath is a workbook's embed URL path; the embed JWT comes in
	// its :jwt query parameter, as in Sigma's
	// https://app.sigmacomputing.com/<org>/workbook/<name>-<id>?:jwt=<token>&:embed=true.
	SigmaEmbedPath = "/demo-org/workbook/"
	// SigmaSessionPrefix starts every simulated Sigma embed session.
	SigmaSessionPrefix = "sgs_"
	// DefaultSigmaClientID and DefaultSigmaSecret are the embed credentials
	// accepted when Options leaves them empty, for demos.
	DefaultSigmaClientID = "demo-sigma-client-id"
	DefaultSigmaSecret   = "demo-sigma-embed-secret"
	// SigmaMaxLifetime is the longest exp - iat Sigma accepts.
	SigmaMaxLifetime = 30 * 24 * time.Hour
)

// sigmaVendor is the simulated Sigma Computing, which redeems embed JWTs
// and remembers their jtis.
func sigmaVendor() vendor {
	return vendor{
		mount: func(s *Server, opts Options) routes {
			used := &usedOnce{}
			return routes{endpoints: []endpoint{sigmaEndpoint(s, opts, used)}, reset: used.reset}
		},
		flags: func(f *Flags) {
			id := f.credential("sigma-client-id", "VENDORSIM_SIGMA_CLIENT_ID", "embed client ID Sigma embed JWTs must name as kid", quoted(DefaultSigmaClientID))
			secret := f.credential("sigma-secret", "VENDORSIM_SIGMA_SECRET", "embed secret Sigma embed JWTs must be signed with", quoted(DefaultSigmaSecret))
			f.set(func(o *Options) error { o.SigmaClientID, o.SigmaSecret = *id, *secret; return nil })
		},
		banner: func(base string, _ Options) string {
			return "Sigma embed URLs at " + base + SigmaEmbedPath + "<workbook>?:jwt=..."
		},
	}
}

// sigmaEndpoint simulates a browser opening a Sigma embed URL: the :jwt
// parameter must be an HS256 JWT signed with the embed secret whose kid
// header (and iss, when present) is the client ID, with sub, jti, iat and
// exp, exp - iat at most 30 days, and a jti never seen before (403).
func sigmaEndpoint(s *Server, opts Options, used *usedOnce) endpoint {
	clientID, secret := opts.SigmaClientID, opts.SigmaSecret
	if clientID == "" {
		clientID = DefaultSigmaClientID
	}
	if secret == "" {
		secret = DefaultSigmaSecret
	}
	errorBody := func(status int, msg string) any { return map[string]any{"code": status, "message": msg} }
	fail := func(status int, msg string) reply { return reply{status: status, body: errorBody(status, msg)} }
	return endpoint{
		vendor:       "sigma",
		method:       http.MethodGet,
		path:         SigmaEmbedPath,
		secretFields: []string{":jwt"},
		queryBody:    true,
		emptyToken:   map[string]string{"session": ""},
		errorBody:    errorBody,
		issue: func(r *http.Request, body map[string]any, decodeErr error) reply {
			raw := stringField(body, ":jwt")
			if decodeErr != nil || raw == "" {
				return fail(http.StatusBadRequest, ":jwt is required, once")
			}
			now := s.clock.Now()
			claims, err := parseSingleUseJWT(raw, []byte(secret), now, func(t *jwt.Token, c jwt.MapClaims) error {
				if kid, _ := t.Header["kid"].(string); kid != clientID {
					return errors.New("kid is not the embed client ID")
				}
				if iss, ok := c["iss"]; ok && iss != clientID {
					return errors.New("iss is not the embed client ID")
				}
				if sub, _ := c["sub"].(string); !strings.Contains(sub, "@") {
					return errors.New("sub must be the user's email")
				}
				iat, err := c.GetIssuedAt()
				exp, _ := c.GetExpirationTime()
				if err != nil || iat == nil {
					return errors.New("iat is required")
				}
				if exp.Sub(iat.Time) > SigmaMaxLifetime {
					return errors.New("exp - iat exceeds 30 days")
				}
				if teams, ok := c["teams"]; ok {
					if _, isList := teams.([]any); !isList {
						return errors.New("teams must be a list")
					}
				}
				return nil
			})
			if err != nil {
				return fail(http.StatusUnauthorized, err.Error())
			}
			if !used.use(claims.jti, now, claims.exp) {
				return fail(http.StatusForbidden, "jti already used")
			}
			token := newToken(SigmaSessionPrefix)
			return reply{status: http.StatusOK, body: map[string]string{"session": token, "user": claims.sub},
				token: token, ttl: claims.exp.Sub(now)}
		},
	}
}

// singleUseClaims are what the redeemers need from a verified JWT.
type singleUseClaims struct {
	sub, jti string
	exp      time.Time
}

// parseSingleUseJWT verifies an HS256 JWT with key at now (no leeway for
// exp; iat may be up to a minute ahead), requires sub, jti and exp, and
// runs check on the verified header and claims.
func parseSingleUseJWT(raw string, key []byte, now time.Time, check func(*jwt.Token, jwt.MapClaims) error) (singleUseClaims, error) {
	claims := jwt.MapClaims{}
	t, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(time.Minute)).
		ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return key, nil })
	if err != nil {
		return singleUseClaims{}, fmt.Errorf("token refused: %w", err)
	}
	out := singleUseClaims{}
	out.sub, _ = claims["sub"].(string)
	out.jti, _ = claims["jti"].(string)
	exp, _ := claims.GetExpirationTime()
	if out.sub == "" || out.jti == "" || exp == nil {
		return out, errors.New("sub, jti and exp are required")
	}
	if !exp.After(now) {
		return out, errors.New("token expired")
	}
	out.exp = exp.Time
	return out, check(t, claims)
}

// stringList reads a JWT claim that must be a list of strings.
func stringList(v any) ([]string, bool) {
	list, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(list))
	for _, item := range list {
		s, ok := item.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}
