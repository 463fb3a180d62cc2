package vendorsim

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ClientAssertionType is RFC 7523's client_assertion_type of a JWT client
// assertion, the only one the simulated token endpoints accept.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// DefaultFederatedAudience is the audience a Federation expects when it
// names none: the one Microsoft Entra ID's federated credentials use.
const DefaultFederatedAudience = "api://AzureADTokenExchange"

// maxJWKSBytes bounds a JWKS document read from JWKSURL.
const maxJWKSBytes = 1 << 20

// Federation is a federated identity credential of a simulated client, as
// Microsoft Entra ID stores one on an app registration: the issuer, subject
// and audience a client assertion must carry, and the issuer's signing keys
// (a JWKS document, or the URL serving it, such as a Kubernetes API
// server's /openid/v1/jwks) its signature is checked against.
type Federation struct {
	// Issuer is the only iss accepted, e.g. the cluster's
	// --service-account-issuer.
	Issuer string
	// Subject is the only sub accepted, e.g. system:serviceaccount:NS:NAME.
	Subject string
	// Audience is the only aud accepted; DefaultFederatedAudience when empty.
	Audience string
	// JWKS is the issuer's JSON Web Key Set. When empty, JWKSURL is read on
	// every verification.
	JWKS []byte
	// JWKSURL serves the issuer's JSON Web Key Set.
	JWKSURL string
	// HTTPClient reads JWKSURL; http.DefaultClient when nil.
	HTTPClient *http.Client
}

// verify checks assertion at now: signed by one of the issuer's keys with
// an asymmetric algorithm, with the expected iss, sub and aud, and not
// expired. Its errors are Entra ID's descriptions of the failure.
func (f *Federation) verify(ctx context.Context, assertion string, now time.Time) error {
	if f == nil {
		return errors.New("the application has no federated identity credential")
	}
	keys, err := f.keys(ctx)
	if err != nil {
		return fmt.Errorf("the issuer's signing keys cannot be read: %w", err)
	}
	_, err = jwt.Parse(assertion, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		key, ok := keys[kid]
		if !ok {
			return nil, fmt.Errorf("no signing key %q", kid)
		}
		return key, nil
	},
		jwt.WithValidMethods([]string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256"}),
		jwt.WithIssuer(f.Issuer), jwt.WithSubject(f.Subject), jwt.WithAudience(cmp.Or(f.Audience, DefaultFederatedAudience)),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		return fmt.Errorf("client assertion failed validation: %w", err)
	}
	return nil
}

// keys reads the issuer's keys by kid.
func (f *Federation) keys(ctx context.Context) (map[string]crypto.PublicKey, error) {
	raw := f.JWKS
	if len(raw) == 0 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.JWKSURL, nil)
		if err != nil {
			return nil, err
		}
		resp, err := cmp.Or(f.HTTPClient, http.DefaultClient).Do(req)
		if err != nil {
			return nil, err
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s answered HTTP %d", f.JWKSURL, resp.StatusCode)
		}
		if raw, err = io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes)); err != nil {
			return nil, err
		}
	}
	return ParseJWKS(raw)
}

// jwk is the part of an RFC 7517 JSON Web Key that RSA and EC public keys use.
type jwk struct {
	Kid string `json:"kid"`
	Kty string `json:"kty"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ParseJWKS reads the RSA and EC (P-256, P-384, P-521) signing keys of a
// JSON Web Key Set by kid, skipping keys of other types or uses.
func ParseJWKS(raw []byte) (map[string]crypto.PublicKey, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("decode JWKS: %w", err)
	}
	keys := map[string]crypto.PublicKey{}
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		key, err := k.publicKey()
		if err != nil {
			return nil, fmt.Errorf("JWKS key %q: %w", k.Kid, err)
		}
		if key != nil {
			keys[k.Kid] = key
		}
	}
	return keys, nil
}

// publicKey is the key k describes, or nil for a type it does not know.
func (k jwk) publicKey() (crypto.PublicKey, error) {
	b64 := base64.RawURLEncoding.DecodeString
	switch k.Kty {
	case "RSA":
		n, err := b64(k.N)
		if err != nil || len(n) < 256 || n[0] == 0 {
			return nil, errors.New("n is not a base64url RSA modulus of at least 2048 bits")
		}
		e, err := b64(k.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("e is not a base64url integer of at most 4 bytes")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
	case "EC":
		curves := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}
		curve, ok := curves[k.Crv]
		if !ok {
			return nil, fmt.Errorf("unknown curve %q", k.Crv)
		}
		x, errX := b64(k.X)
		y, errY := b64(k.Y)
		size := (curve.Params().BitSize + 7) / 8
		if errX != nil || errY != nil || len(x) != size || len(y) != size {
			return nil, errors.New("x and y must be base64url coordinates of the curve's size")
		}
		return ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
	}
	return nil, nil
}

// isCertificateAssertion reports whether assertion's header names a
// certificate by its SHA-256 thumbprint (x5t#S256), as assertions signed
// with a certificate credential do; a federated one names its key by kid.
func isCertificateAssertion(assertion string) bool {
	tok, _, err := jwt.NewParser().ParseUnverified(assertion, jwt.MapClaims{})
	if err != nil {
		return false
	}
	_, ok := tok.Header["x5t#S256"]
	return ok
}

// verifyCertificateAssertion checks a client assertion signed with a
// certificate credential as Entra ID checks one: the header's x5t#S256
// names one of certs, whose public key made the signature (PS256, RS256 or
// ES256); iss and sub are clientID, aud is the token endpoint audience, jti
// is set, and now lies between nbf and exp.
func verifyCertificateAssertion(certs []*x509.Certificate, assertion, clientID, audience string, now time.Time) error {
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(assertion, claims, func(t *jwt.Token) (any, error) {
		thumbprint, _ := t.Header["x5t#S256"].(string)
		for _, c := range certs {
			sum := sha256.Sum256(c.Raw)
			if thumbprint == base64.StdEncoding.EncodeToString(sum[:]) {
				return c.PublicKey, nil
			}
		}
		return nil, errors.New("no certificate with the thumbprint x5t#S256 is registered")
	},
		jwt.WithValidMethods([]string{"PS256", "RS256", "ES256"}),
		jwt.WithIssuer(clientID), jwt.WithSubject(clientID), jwt.WithAudience(audience),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		return fmt.Errorf("client assertion failed validation: %w", err)
	}
	if jti, _ := claims["jti"].(string); jti == "" {
		return errors.New("client assertion has no jti")
	}
	if _, err := claims.GetNotBefore(); err != nil || claims["nbf"] == nil {
		return errors.New("client assertion has no nbf")
	}
	return nil
}

// verifyAssertion checks a client assertion at the token endpoint r
// reached: one signed with a registered certificate, else a federated one.
func verifyAssertion(r *http.Request, fed *Federation, certs []*x509.Certificate, assertion, clientID string, now time.Time) error {
	if isCertificateAssertion(assertion) {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		return verifyCertificateAssertion(certs, assertion, clientID, scheme+"://"+r.Host+r.URL.Path, now)
	}
	return fed.verify(r.Context(), assertion, now)
}
