package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// maxDetail bounds vendor text quoted in a message: conditions and events are
// read by people and must stay short.
const maxDetail = 200

// maxExpiresIn bounds a vendor's expires_in so absurd values cannot overflow
// a time.Duration or park a token for centuries.
const maxExpiresIn = 10 * 366 * 24 * time.Hour

// ExpiresIn reads an OAuth-style expires_in, which servers send either as a
// JSON number or as a numeric string, so every vendor accepts both alike.
// ok is false when the field is absent or null; a value that is not a
// positive number of seconds is a transient InvalidResponse error.
func ExpiresIn(raw json.RawMessage) (d time.Duration, ok bool, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false, nil
	}
	num := raw
	var s string
	if json.Unmarshal(raw, &s) == nil {
		num = []byte(strings.TrimSpace(s))
	}
	var secs float64
	valid := json.Unmarshal(num, &secs) == nil && secs > 0 && secs <= maxExpiresIn.Seconds()
	if d = time.Duration(secs * float64(time.Second)); !valid || d <= 0 { // d is 0 below a nanosecond
		return 0, true, Transient(v1alpha1.ReasonInvalidResponse, "vendor response has an expires_in that is not a positive number of seconds")
	}
	return d, true, nil
}

// JWTExpiry reads the exp claim of a JWT without verifying its signature. It
// serves vendors whose responses carry no lifetime: the token's own exp is
// then the only statement of its validity, and it is used only to schedule
// renewal, never to trust the token. ok is false for anything else.
func JWTExpiry(token string) (exp time.Time, ok bool) {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		return time.Time{}, false
	}
	at, err := claims.GetExpirationTime()
	if err != nil || at == nil {
		return time.Time{}, false
	}
	return at.Time, true
}

// CheckJWTClaims refuses a token that lacks one of the named claims or
// holds it empty (null, "", [] or {}), read without verifying the
// signature: it serves vendors whose token states what it grants, so a
// token granting nothing is not stored. what names the token in messages,
// which name the claim but never quote the token or a claim's value. A
// token that is not a JWT is a transient InvalidResponse error; an empty
// claim a permanent VendorRejected one, since asking again grants the same.
func CheckJWTClaims(what, token string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		return Transient(v1alpha1.ReasonInvalidResponse, "%s is not a JWT, so its claims %s cannot be checked", what, strings.Join(names, ", "))
	}
	for _, name := range names {
		if claimEmpty(claims[name]) {
			return Permanent(v1alpha1.ReasonVendorRejected, "%s has no %s claim or an empty one: the vendor granted it nothing "+
				"(check that the vendor account may see what the request asks for)", what, name)
		}
	}
	return nil
}

// claimEmpty reports whether a decoded claim is absent or empty.
func claimEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// ExpiresInOrJWT is when a token issued at now expires: after expires_in
// when the answer has one, else at the token's own JWT exp claim. OAuth-style
// vendors answer one or the other; with neither the operator does not guess,
// and the answer is a transient InvalidResponse error.
func ExpiresInOrJWT(now time.Time, expiresIn json.RawMessage, token string) (time.Time, error) {
	d, ok, err := ExpiresIn(expiresIn)
	switch {
	case err != nil:
		return time.Time{}, err
	case ok:
		return now.Add(d), nil
	}
	if exp, ok := JWTExpiry(token); ok {
		return exp, nil
	}
	return time.Time{}, Transient(v1alpha1.ReasonInvalidResponse,
		"vendor response has no expires_in and the access token is not a JWT with an exp claim, so its expiry is unknown")
}

// Detail joins the human parts of a vendor's error body (code, title,
// description) into one short line for a condition message: empty and
// repeated parts are dropped, control characters become spaces and the
// result is cut to a bounded length, so a hostile body cannot flood status.
func Detail(parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" && !strings.Contains(strings.Join(kept, "\n"), p) {
			kept = append(kept, p)
		}
	}
	// Trimmed again after mapping: a part that starts or ends with a control
	// character or invalid UTF-8 would otherwise leave a stray space.
	s := strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, strings.Join(kept, ": ")))
	if utf8.RuneCountInString(s) > maxDetail {
		s = string([]rune(s)[:maxDetail]) + "…"
	}
	return s
}

// DecodeObject parses a spec field holding a free-form JSON object (extra
// parameters, claims) and refuses the keys in reserved, which the operator
// sets itself, so a user cannot silently replace them. Numbers keep their
// literal form as json.Number. field names the spec field in messages, which
// never quote the value: it may hold something sensitive.
func DecodeObject(field string, raw *apiextensionsv1.JSON, reserved ...string) (map[string]any, error) {
	obj := map[string]any{}
	if raw == nil || len(raw.Raw) == 0 {
		return obj, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw.Raw))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, Permanent(v1alpha1.ReasonInvalidRequest, "%s must be a JSON object", field)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, Permanent(v1alpha1.ReasonInvalidRequest, "%s must be a single JSON object", field)
	}
	for _, k := range reserved {
		if _, ok := obj[k]; ok {
			return nil, Permanent(v1alpha1.ReasonInvalidRequest, "%s must not set %q: the operator sets it from its own field", field, k)
		}
	}
	return obj, nil
}
