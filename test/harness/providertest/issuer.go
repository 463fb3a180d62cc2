package providertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

// IssuerURL is the service-account issuer of every Issuer.
const IssuerURL = "https://kubernetes.default.svc.cluster.local"

// Issuer signs ServiceAccount tokens as a cluster's service-account issuer
// does (ES256 with a kid, as envtest's API server), so vendor tests can
// send client assertions a simulator verifies against the issuer's JWKS
// without an API server.
type Issuer struct {
	key *ecdsa.PrivateKey
	kid string
}

// NewIssuer returns an Issuer with a fresh P-256 key.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Issuer{key: key, kid: "providertest-key"}
}

// Token is a ServiceAccount token of namespace/name for audience, expiring
// at exp and issued ten minutes earlier, with the claims the API server
// sets.
func (i *Issuer) Token(t testing.TB, namespace, name, audience string, exp time.Time) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": IssuerURL, "sub": Subject(namespace, name), "aud": []string{audience},
		"iat": exp.Add(-10 * time.Minute).Unix(), "nbf": exp.Add(-10 * time.Minute).Unix(), "exp": exp.Unix(),
		"kubernetes.io": map[string]any{"namespace": namespace, "serviceaccount": map[string]string{"name": name, "uid": "7c9a3a34-0000-4000-8000-000000000001"}},
	})
	tok.Header["kid"] = i.kid
	s, err := tok.SignedString(i.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// JWKS is the issuer's JSON Web Key Set, as /openid/v1/jwks serves it.
func (i *Issuer) JWKS(t testing.TB) []byte {
	t.Helper()
	point, err := i.key.PublicKey.Bytes() // 0x04 || x || y
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"use": "sig", "kty": "EC", "kid": i.kid, "crv": "P-256", "alg": "ES256",
		"x": base64.RawURLEncoding.EncodeToString(point[1:33]),
		"y": base64.RawURLEncoding.EncodeToString(point[33:]),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Federation is a simulator's federated identity credential trusting the
// issuer for ServiceAccount namespace/name and the default audience.
func (i *Issuer) Federation(t testing.TB, namespace, name string) *vendorsim.Federation {
	t.Helper()
	return &vendorsim.Federation{Issuer: IssuerURL, Subject: Subject(namespace, name), JWKS: i.JWKS(t)}
}

// Subject is the sub claim of the ServiceAccount namespace/name's tokens.
func Subject(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}
