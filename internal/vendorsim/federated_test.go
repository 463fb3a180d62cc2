package vendorsim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestFederationVerify checks a federated credential as Entra ID checks
// one: the issuer's signature, iss, sub, aud and exp, with RSA and EC keys
// read from a JWKS document or its URL.
func TestFederationVerify(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	point, err := ecKey.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{
		{"kty": "EC", "use": "sig", "kid": "ec", "crv": "P-256", "x": b64(point[1:33]), "y": b64(point[33:])},
		{"kty": "RSA", "use": "sig", "kid": "rsa", "n": b64(rsaKey.N.Bytes()), "e": b64(big.NewInt(int64(rsaKey.E)).Bytes())},
		{"kty": "oct", "kid": "ignored", "k": "c2VjcmV0"},
	}})
	const iss, sub = "https://issuer.example", "system:serviceaccount:analytics:powerbi"
	claims := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": iss, "sub": sub, "aud": []string{DefaultFederatedAudience}, "exp": now.Add(10 * time.Minute).Unix()}
		if change != nil {
			change(c)
		}
		return c
	}
	sign := func(method jwt.SigningMethod, kid string, key any, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(method, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tests := []struct {
		name      string
		assertion string
		wantErr   string
	}{
		{name: "an ES256 token of the trusted subject passes", assertion: sign(jwt.SigningMethodES256, "ec", ecKey, claims(nil))},
		{name: "an RS256 token of the trusted subject passes", assertion: sign(jwt.SigningMethodRS256, "rsa", rsaKey, claims(nil))},
		{name: "another subject is refused", assertion: sign(jwt.SigningMethodES256, "ec", ecKey, claims(func(c jwt.MapClaims) { c["sub"] = "system:serviceaccount:x:y" })),
			wantErr: "subject"},
		{name: "another issuer is refused", assertion: sign(jwt.SigningMethodES256, "ec", ecKey, claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })),
			wantErr: "issuer"},
		{name: "another audience is refused", assertion: sign(jwt.SigningMethodES256, "ec", ecKey, claims(func(c jwt.MapClaims) { c["aud"] = "api://other" })),
			wantErr: "audience"},
		{name: "an expired token is refused", assertion: sign(jwt.SigningMethodES256, "ec", ecKey, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Second).Unix() })),
			wantErr: "expired"},
		{name: "a token without exp is refused", assertion: sign(jwt.SigningMethodES256, "ec", ecKey, claims(func(c jwt.MapClaims) { delete(c, "exp") })),
			wantErr: "exp"},
		{name: "a token signed by another key is refused", assertion: sign(jwt.SigningMethodES256, "ec", other, claims(nil)), wantErr: "signature"},
		{name: "a token of an unknown kid is refused", assertion: sign(jwt.SigningMethodES256, "nope", ecKey, claims(nil)), wantErr: "no signing key"},
		{name: "an HS256 token is refused", assertion: sign(jwt.SigningMethodHS256, "ignored", []byte("secret"), claims(nil)), wantErr: "signing method"},
		{name: "garbage is refused", assertion: "not.a.jwt", wantErr: "malformed"},
	}
	jwksServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(jwks) }))
	t.Cleanup(jwksServer.Close)
	for _, source := range []struct {
		name string
		fed  *Federation
	}{
		{"JWKS", &Federation{Issuer: iss, Subject: sub, JWKS: jwks}},
		{"JWKS URL", &Federation{Issuer: iss, Subject: sub, JWKSURL: jwksServer.URL}},
	} {
		for _, tc := range tests {
			t.Run(source.name+": "+tc.name, func(t *testing.T) {
				err := source.fed.verify(context.Background(), tc.assertion, now)
				switch {
				case tc.wantErr == "" && err != nil:
					t.Fatalf("refused: %v", err)
				case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
			})
		}
	}
	if err := (*Federation)(nil).verify(context.Background(), "x", now); err == nil {
		t.Error("a client without a federated credential passed")
	}
}

// FuzzParseJWKS feeds arbitrary documents to the JWKS parser: it must never
// panic, and every key it returns must be an RSA or EC public key.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"EC","kid":"a","crv":"P-256","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"b","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"c","n":"","e":"AAAAAAAA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-999"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		keys, err := ParseJWKS(raw)
		if err != nil {
			return
		}
		for kid, k := range keys {
			switch k.(type) {
			case *rsa.PublicKey, *ecdsa.PublicKey:
			default:
				t.Fatalf("key %q is a %T", kid, k)
			}
		}
	})
}
