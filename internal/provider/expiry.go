package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Vendors state a token's expiry in many ways. ExpiresIn and JWTExpiry
// (response.go) read a lifetime and a JWT's exp; ParseExpiresAt below reads an
// absolute expiry time from a decoded JSON value (json.Number, float64 or
// string). It returns plain errors that never quote the value (it might be
// the token, when a path is misconfigured); callers classify them, usually as
// transient ReasonInvalidResponse.

// Expiry formats for ParseExpiresAt. They equal the values of the HTTP
// provider's expiresAtFormat field, so the field can be passed through as is.
const (
	// ExpiresAtDetect guesses the format; see ParseExpiresAt for the rule.
	ExpiresAtDetect = ""
	// ExpiresAtEpochSeconds is a Unix time in seconds, e.g. 1767225600.
	ExpiresAtEpochSeconds = "EpochSeconds"
	// ExpiresAtEpochMilliseconds is a Unix time in milliseconds, e.g. 1767225600000.
	ExpiresAtEpochMilliseconds = "EpochMilliseconds"
	// ExpiresAtRFC3339 is an RFC 3339 timestamp, e.g. 2026-01-01T00:00:00Z.
	ExpiresAtRFC3339 = "RFC3339"
)

// EpochMillisecondsThreshold splits detected epoch numbers: values at or above
// it are milliseconds, values below are seconds. 1e11 seconds is in the year
// 5138 and 1e11 milliseconds is in March 1973, so every plausible expiry is
// read correctly either way.
const EpochMillisecondsThreshold = 1e11

// maxEpochSeconds is 9999-12-31T23:59:59Z, the last time RFC 3339 can write.
const maxEpochSeconds = 253402300799

// decimalRE is a plain decimal number; strconv.ParseFloat alone would also
// accept "NaN", "Inf", hexadecimal and underscores, which no vendor means.
var decimalRE = regexp.MustCompile(`^[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// ParseExpiresAt reads an expiry time. format is one of the ExpiresAt*
// constants. With ExpiresAtDetect, a number or numeric string is epoch
// milliseconds when at least EpochMillisecondsThreshold and epoch seconds
// otherwise, and any other string must be RFC 3339.
func ParseExpiresAt(v any, format string) (time.Time, error) {
	switch format {
	case ExpiresAtRFC3339:
		return parseRFC3339(v)
	case ExpiresAtEpochSeconds, ExpiresAtEpochMilliseconds:
		n, err := number(v)
		if err != nil {
			return time.Time{}, err
		}
		return fromEpoch(n, format == ExpiresAtEpochMilliseconds)
	case ExpiresAtDetect:
		n, err := number(v)
		if err != nil {
			if s, ok := v.(string); ok && !decimalRE.MatchString(strings.TrimSpace(s)) {
				return parseRFC3339(v)
			}
			return time.Time{}, err
		}
		return fromEpoch(n, n >= EpochMillisecondsThreshold)
	}
	return time.Time{}, fmt.Errorf("unknown expiry format %q (want %s, %s or %s)", format,
		ExpiresAtEpochSeconds, ExpiresAtEpochMilliseconds, ExpiresAtRFC3339)
}

// errOutOfRange refuses expiry times no vendor means: they are unit or
// format mistakes.
var errOutOfRange = errors.New("expiry time is out of range (not after 1970 or after 9999)")

// number reads a JSON number or a decimal string as a finite float64.
func number(v any) (float64, error) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = strings.TrimSpace(x)
	case float64:
		s = strconv.FormatFloat(x, 'g', -1, 64)
	case nil:
		return 0, errors.New("value is null, not a number")
	default:
		return 0, fmt.Errorf("value is a %s, not a number", JSONKind(v))
	}
	if !decimalRE.MatchString(s) {
		return 0, errors.New("value is not a decimal number")
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(n, 0) {
		return 0, errors.New("value is out of range")
	}
	return n, nil
}

// fromEpoch turns an epoch number into a time, rejecting times before 1970
// or after the year 9999.
func fromEpoch(n float64, millis bool) (time.Time, error) {
	secs := n
	if millis {
		secs = n / 1000
	}
	if secs <= 0 || secs > maxEpochSeconds {
		return time.Time{}, errOutOfRange
	}
	whole := math.Floor(n)
	if millis {
		return time.UnixMilli(int64(whole)).Add(time.Duration((n - whole) * float64(time.Millisecond))).UTC(), nil
	}
	return time.Unix(int64(whole), int64((n-whole)*float64(time.Second))).UTC(), nil
}

func parseRFC3339(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("value is a %s, not an RFC 3339 string", JSONKind(v))
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, errors.New("value is not an RFC 3339 time such as 2026-01-01T00:00:00Z")
	}
	if t.Unix() <= 0 {
		return time.Time{}, errOutOfRange
	}
	return t.UTC(), nil
}
