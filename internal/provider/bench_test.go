package provider_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// These benchmarks cover the response parsing every vendor package runs on
// each token it obtains: decoding the vendor's JSON answer, reading its
// expires_in or the token's own exp claim, and pulling a message out of an
// error body. `make bench` runs them; compare runs with benchstat.

// benchNow is when every benchmarked token is issued.
var benchNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// benchExp is the exp claim of benchJWT: one hour after benchNow.
var benchExp = benchNow.Add(time.Hour)

// benchJWT is a vendor-style access token (about 900 bytes) with the claims
// an identity provider typically puts in one, expiring at benchExp.
func benchJWT(b *testing.B) string {
	b.Helper()
	claims := jwt.MapClaims{
		"iss":       "https://login.vendor.example.com/realms/analytics-prod",
		"sub":       "f3b1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
		"aud":       []string{"embed-api", "dashboards"},
		"azp":       "embed-token-operator",
		"iat":       benchNow.Unix(),
		"nbf":       benchNow.Unix(),
		"exp":       benchExp.Unix(),
		"jti":       "6c1d9a3e-2f4b-4c8d-9e7a-1b2c3d4e5f60",
		"scope":     "embed:read dashboards:view reports:view datasets:query",
		"tenant_id": "acme-corp-eu-west-1",
		"roles":     []string{"viewer", "embed-user", "report-reader"},
		"email":     "analytics-embed@acme.example.com",
		"groups":    []string{"/analytics/finance", "/analytics/sales", "/analytics/operations"},
		"client_ip": "10.42.17.201",
		"session":   "b7e2c9f1-0a3d-4e5b-9c8f-7d6e5a4b3c2d",
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("bench-signing-secret"))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// benchTokenResponse is the shape vendors' packages decode a token answer
// into (RFC 6749 section 5.1 plus the error fields of section 5.2), as the
// oauth2 and Bold BI packages do.
type benchTokenResponse struct {
	AccessToken      string          `json:"access_token"`
	TokenType        string          `json:"token_type"`
	ExpiresIn        json.RawMessage `json:"expires_in"`
	Scope            string          `json:"scope"`
	Error            string          `json:"error"`
	ErrorDescription string          `json:"error_description"`
}

// benchBody is a token endpoint's answer of about 1.2 KB carrying token, with
// expires_in only when withExpiresIn is set (otherwise the expiry is the
// token's exp claim, as some vendors answer).
func benchBody(b *testing.B, token string, withExpiresIn bool) []byte {
	b.Helper()
	answer := map[string]any{
		"access_token":       token,
		"token_type":         "Bearer",
		"scope":              "embed:read dashboards:view reports:view datasets:query",
		"refresh_expires_in": 0,
		"not-before-policy":  0,
		"session_state":      "b7e2c9f1-0a3d-4e5b-9c8f-7d6e5a4b3c2d",
		"tenant":             map[string]any{"id": "acme-corp-eu-west-1", "region": "eu-west-1", "plan": "enterprise"},
	}
	if withExpiresIn {
		answer["expires_in"] = 3600
	}
	body, err := json.Marshal(answer)
	if err != nil {
		b.Fatal(err)
	}
	if len(body) < 900 || len(body) > 1400 {
		b.Fatalf("benchmark body is %d bytes, want about 1 KB", len(body))
	}
	return body
}

// BenchmarkDecodeJSON measures decoding a ~1 KB token answer into a struct,
// the first step of every vendor's response parser.
func BenchmarkDecodeJSON(b *testing.B) {
	token := benchJWT(b)
	body := benchBody(b, token, true)
	b.ReportAllocs()
	for b.Loop() {
		var out benchTokenResponse
		if err := provider.DecodeJSON(body, &out); err != nil || out.AccessToken != token {
			b.Fatalf("DecodeJSON = %v, token read %t", err, out.AccessToken == token)
		}
	}
}

// BenchmarkExpiresIn measures reading expires_in in both forms vendors send:
// a JSON number and a numeric string.
func BenchmarkExpiresIn(b *testing.B) {
	for _, tc := range []struct{ name, raw string }{
		{"number", "3600"},
		{"string", `"3600"`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			raw := json.RawMessage(tc.raw)
			b.ReportAllocs()
			for b.Loop() {
				if d, ok, err := provider.ExpiresIn(raw); err != nil || !ok || d != time.Hour {
					b.Fatalf("ExpiresIn(%s) = %v, %v, %v; want 1h", tc.raw, d, ok, err)
				}
			}
		})
	}
}

// BenchmarkJWTExpiry measures reading the exp claim of a realistic access
// token, done for every vendor answer without expires_in.
func BenchmarkJWTExpiry(b *testing.B) {
	token := benchJWT(b)
	b.ReportAllocs()
	for b.Loop() {
		if exp, ok := provider.JWTExpiry(token); !ok || !exp.Equal(benchExp) {
			b.Fatalf("JWTExpiry = %v, %v; want %v", exp, ok, benchExp)
		}
	}
}

// BenchmarkParseTokenResponse measures a whole token answer as the oauth2
// and Bold BI parsers read it (decode, then ExpiresInOrJWT), once with
// expires_in and once falling back to the token's exp claim.
func BenchmarkParseTokenResponse(b *testing.B) {
	token := benchJWT(b)
	for _, tc := range []struct {
		name          string
		withExpiresIn bool
	}{
		{"expires_in", true},
		{"jwt_exp", false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			body := benchBody(b, token, tc.withExpiresIn)
			b.ReportAllocs()
			for b.Loop() {
				var out benchTokenResponse
				if err := provider.DecodeJSON(body, &out); err != nil {
					b.Fatal(err)
				}
				exp, err := provider.ExpiresInOrJWT(benchNow, out.ExpiresIn, out.AccessToken)
				if err != nil || !exp.Equal(benchExp) {
					b.Fatalf("ExpiresInOrJWT = %v, %v; want %v", exp, err, benchExp)
				}
			}
		})
	}
}

// BenchmarkErrorDetail measures pulling the message out of a ~1 KB vendor
// error body, done for every non-2xx answer: an OAuth error_description
// (the first key tried) and an error object with a nested message (the
// last key tried, so every other key is probed first).
func BenchmarkErrorDetail(b *testing.B) {
	msg := "The client credentials are invalid or the client is not allowed to request embed tokens for this tenant."
	pad := strings.Repeat("x", 700) // vendors echo request IDs, traces and links
	for _, tc := range []struct{ name, body string }{
		{"error_description", `{"error":"invalid_client","error_description":"` + msg + `","trace_id":"` + pad + `"}`},
		{"nested_error", `{"error":{"code":"Unauthorized","message":"` + msg + `"},"trace_id":"` + pad + `"}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			body := []byte(tc.body)
			b.ReportAllocs()
			for b.Loop() {
				if got := provider.ErrorDetail(body); got != msg {
					b.Fatalf("ErrorDetail = %q, want %q", got, msg)
				}
			}
		})
	}
}

// BenchmarkParseExpiresAt measures reading an absolute expiry in each form
// the generic HTTP provider detects: epoch seconds, epoch milliseconds and
// RFC 3339.
func BenchmarkParseExpiresAt(b *testing.B) {
	for _, tc := range []struct {
		name string
		in   any
	}{
		{"epoch_seconds", json.Number("1893553445")},
		{"epoch_milliseconds_string", "1893553445000"},
		{"rfc3339", "2030-01-02T03:04:05Z"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if got, err := provider.ParseExpiresAt(tc.in, provider.ExpiresAtDetect); err != nil || !got.Equal(benchNow) {
					b.Fatalf("ParseExpiresAt(%v) = %v, %v; want %v", tc.in, got, err, benchNow)
				}
			}
		})
	}
}

// BenchmarkRedact measures redacting a vendor error message (Detail's 200
// characters) of the credential and Basic credentials a call sent, which
// every failed call pays once or twice.
func BenchmarkRedact(b *testing.B) {
	const id, secret = "embed-token-operator", `Zq8&<w>"9f/+'kP3xL0vT2mR7nB4yH6cJ`
	msg := "vendor answered HTTP 401: " + provider.Detail(`invalid_client: client authentication failed for `+id+
		` with client_secret "Zq8\u0026\u003cw\u003e\"9f/+'kP3xL0vT2mR7nB4yH6cJ"; check the credentials and the token endpoint's client settings`)
	secrets := append([]string{secret}, provider.BasicCredentials(id, secret)...)
	b.ReportAllocs()
	for b.Loop() {
		err := provider.Transient("VendorUnauthorized", "%s", msg)
		if !strings.Contains(provider.Redact(err, secrets...).Error(), "[redacted]") {
			b.Fatal("nothing redacted")
		}
	}
}
