package vendorsim

import (
	"crypto/subtle"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"time"
)

// Qrvey wire constants, exported so clients under test and the standalone
// binary agree with the simulator without repeating literals.
const (
	// QrveyTokenPath is where Qrvey issues embed tokens.
	QrveyTokenPath = "/devapi/v4/core/login/token"
	// QrveyTokenPrefix starts every simulated Qrvey token, making them easy to recognise.
	QrveyTokenPrefix = "qrv_"
	// DefaultQrveyAPIKey is accepted when Options.QrveyAPIKey is empty, for demos.
	DefaultQrveyAPIKey = "demo-api-key"
	// DefaultQrveyExpiresIn is the lifetime Qrvey gives tokens when the request has no expiresIn.
	DefaultQrveyExpiresIn = 60 * time.Minute
)

// qrveyVendor is the simulated Qrvey.
func qrveyVendor() vendor {
	return vendor{
		mount: func(_ *Server, opts Options) routes { return one(qrveyEndpoint(opts)) },
		flags: func(f *Flags) {
			key := f.credential("qrvey-api-key", "VENDORSIM_QRVEY_API_KEY", "x-api-key the Qrvey endpoint accepts", quoted(DefaultQrveyAPIKey))
			f.set(func(o *Options) error { o.QrveyAPIKey = *key; return nil })
		},
		banner: func(base string, _ Options) string {
			return fmt.Sprintf("Qrvey token endpoint at %s%s", base, QrveyTokenPath)
		},
	}
}

// qrveyEndpoint simulates POST /devapi/v4/core/login/token: the x-api-key
// header authenticates, and the JSON body names the user and app the token is for.
func qrveyEndpoint(opts Options) endpoint {
	key := opts.QrveyAPIKey
	if key == "" {
		key = DefaultQrveyAPIKey
	}
	errorBody := func(status int, msg string) any {
		return map[string]any{"statusCode": status, "message": msg}
	}
	bad := func(msg string) reply {
		return reply{status: http.StatusBadRequest, body: errorBody(http.StatusBadRequest, msg)}
	}
	return endpoint{
		vendor:     "qrvey",
		method:     http.MethodPost,
		path:       QrveyTokenPath,
		emptyToken: map[string]string{"token": ""},
		errorBody:  errorBody,
		issue: func(r *http.Request, body map[string]any, decodeErr error) reply {
			if subtle.ConstantTimeCompare([]byte(r.Header.Get("x-api-key")), []byte(key)) != 1 {
				return reply{status: http.StatusUnauthorized, body: errorBody(http.StatusUnauthorized, "invalid or missing x-api-key")}
			}
			if decodeErr != nil {
				return bad("request body must be a JSON object: " + decodeErr.Error())
			}
			for _, field := range []string{"userid", "appid"} {
				if v, _ := body[field].(string); v == "" {
					return bad(field + " is required and must be a non-empty string")
				}
			}
			if v, ok := body["clientid"]; ok {
				if _, isString := v.(string); !isString {
					return bad("clientid must be a string")
				}
			}
			ttl := DefaultQrveyExpiresIn
			if v, ok := body["expiresIn"]; ok {
				str, _ := v.(string)
				d, err := parseQrveyDuration(str)
				if err != nil {
					return bad(err.Error())
				}
				ttl = d
			}
			token := newToken(QrveyTokenPrefix)
			return reply{status: http.StatusOK, body: map[string]string{"token": token}, token: token, ttl: ttl}
		},
	}
}

var qrveyDurationRE = regexp.MustCompile(`^([0-9]{1,9})([smhdw])$`)

var qrveyUnits = map[string]time.Duration{
	"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour,
}

// parseQrveyDuration parses Qrvey's expiresIn form: a positive whole number
// followed by s, m, h, d or w, such as "10m" or "1d".
func parseQrveyDuration(s string) (time.Duration, error) {
	m := qrveyDurationRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("expiresIn %q must look like 10s, 60m, 2h, 1d or 1w", s)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return 0, fmt.Errorf("expiresIn %q: %w", s, err)
	}
	unit := qrveyUnits[m[2]]
	if n == 0 || int64(n) > math.MaxInt64/int64(unit) {
		return 0, fmt.Errorf("expiresIn %q is out of range", s)
	}
	return time.Duration(n) * unit, nil
}
