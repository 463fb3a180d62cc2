// Package jwtprovider signs embed tokens locally, for vendors that trust a
// key instead of issuing tokens: no HTTP call is made.
//
// Common presets:
//
// Tableau connected apps (direct trust): algorithm HS256, signingKeySecretRef
// the connected app's secret value, keyID the secret ID, headers
// {"iss": "<client ID>"}, issuer the client ID, audience "tableau",
// maxLifetime 9m (Tableau rejects an exp more than 10 minutes ahead of its
// clock; the minute spare absorbs clock skew), singleUse true (Tableau
// accepts each jti once, so tokens are served by the token endpoint, one per
// call), and in the template subject the Tableau username and claims
// {"scp": ["tableau:views:embed"]}.
//
// Metabase static embedding: algorithm HS256, signingKeySecretRef the
// embedding secret key, and in the request claims
// {"resource": {"dashboard": 1}, "params": {}}.
//
// The package is named jwtprovider so it does not clash with golang-jwt.
package jwtprovider

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// Signing keys are bounded so one provider's key cannot make signing costly
// for everyone: the cost of parsing an RSA key, and of signing with it,
// grows steeply with its size, and a 16,384-bit key parsed for every token
// of a one-second lifetime kept more than a core busy.
const (
	// minRSABits is the smallest RSA key RFC 7518 section 3.3 allows for
	// RS256.
	minRSABits = 2048
	// maxRSABits is the largest RSA key accepted: a 4,096-bit key already
	// has a security margin no vendor asks to exceed.
	maxRSABits = 4096
	// maxKeyBytes bounds a signing key Secret's value, PEM or shared
	// secret: a 4,096-bit PEM key with a certificate chain fits easily.
	maxKeyBytes = 64 << 10
	// maxKeyDER bounds the DER of a PEM private key, checked before it is
	// parsed: a 4,096-bit RSA key in PKCS#8 is about 2,400 bytes, and EC
	// P-256 keys are far smaller.
	maxKeyDER = 3 << 10
)

// reservedClaims are set by the operator; spec.jwt.claims cannot replace
// them, so a request cannot extend its own lifetime or change who it is for.
var reservedClaims = []string{"iat", "nbf", "exp", "jti", "iss", "aud", "sub"}

// reservedHeaders are set by the signer (alg, typ) or by keyID (kid).
var reservedHeaders = []string{"alg", "typ", "kid"}

// methods are the supported algorithms; the CRD enumerates the same ones.
var methods = map[string]jwt.SigningMethod{
	"HS256": jwt.SigningMethodHS256,
	"HS384": jwt.SigningMethodHS384,
	"HS512": jwt.SigningMethodHS512,
	"RS256": jwt.SigningMethodRS256,
	"ES256": jwt.SigningMethodES256,
}

// Provider is the signed-JWT implementation of provider.Provider,
// provider.ConfigValidator, provider.ConfigWarner and provider.SingleUser. Its only state is the
// cache of parsed signing keys, so a key is parsed once, not per token.
type Provider struct {
	keys *keyCache
}

// New returns the signed-JWT provider with an empty key cache.
func New() *Provider { return &Provider{keys: newKeyCache(maxCachedKeys)} }

// SecretRefs implements provider.Provider: the references of spec.jwt.
func (p *Provider) SecretRefs(config *v1alpha1.EmbedProviderSpec) []v1alpha1.SecretKeySelector {
	return provider.SecretRefsIn(config.JWT)
}

// SingleUse implements provider.SingleUser: every token carries a new jti,
// and a provider declaring singleUse signs for a vendor that accepts each
// jti once (Tableau connected apps).
func (p *Provider) SingleUse(config *v1alpha1.EmbedProviderSpec) bool {
	return config.JWT != nil && config.JWT.SingleUse
}

// Validate implements provider.ConfigValidator: it parses the signing key and
// checks the headers, so a bad key shows on the provider's Ready condition
// before any request uses it.
func (p *Provider) Validate(ctx context.Context, config *v1alpha1.EmbedProviderSpec, creds provider.CredentialReader) error {
	if config.JWT == nil {
		return provider.Permanent(v1alpha1.ReasonVendorMismatch, "jwt provider needs spec.jwt")
	}
	_, _, err := p.signer(ctx, config.JWT, creds)
	return err
}

// ConfigWarnings implements provider.ConfigWarner: an HMAC key that ends in
// whitespace is most likely a Secret made from a file with a trailing
// newline. The key is still used byte for byte, since whitespace may be part
// of a real shared secret, but the warning says so, naming only the Secret
// and key: the vendor would otherwise just reject every signature.
func (p *Provider) ConfigWarnings(ctx context.Context, config *v1alpha1.EmbedProviderSpec, creds provider.CredentialReader) []string {
	if config.JWT == nil {
		return nil
	}
	var warnings []string
	if config.JWT.Audience == "tableau" && !config.JWT.SingleUse {
		warnings = append(warnings, `audience "tableau" signs Tableau connected-app tokens, which Tableau accepts once each: `+
			"set singleUse: true and serve them through an EmbedTokenTemplate")
	}
	return append(warnings, hmacKeyWarnings(ctx, config, creds)...)
}

// hmacKeyWarnings warns of an HMAC key ending in whitespace.
func hmacKeyWarnings(ctx context.Context, config *v1alpha1.EmbedProviderSpec, creds provider.CredentialReader) []string {
	if _, isHMAC := methods[config.JWT.Algorithm].(*jwt.SigningMethodHMAC); !isHMAC {
		return nil
	}
	ref := config.JWT.SigningKeySecretRef
	raw, err := creds.Read(ctx, ref)
	if last, _ := utf8.DecodeLastRune(raw); err != nil || !unicode.IsSpace(last) {
		return nil
	}
	name := ref.Name
	if ref.Namespace != "" {
		name = ref.Namespace + "/" + ref.Name
	}
	return []string{fmt.Sprintf("the HMAC key in Secret %s, key %s, ends in whitespace (a trailing newline?), which is used as part of the key; "+
		"recreate the Secret without it (e.g. --from-literal) unless it is meant", name, ref.Key)}
}

// Issue implements provider.Provider.
func (p *Provider) Issue(ctx context.Context, req provider.Request) (provider.Token, error) {
	cfg, params := req.Config.JWT, req.Params.JWT
	if cfg == nil || params == nil {
		return provider.Token{}, provider.Permanent(v1alpha1.ReasonVendorMismatch, "jwt provider needs spec.jwt on both provider and request")
	}
	claims, exp, err := buildClaims(cfg, params, req.Lifetime, req.Now)
	if err != nil {
		return provider.Token{}, err
	}
	method, key, err := p.signer(ctx, cfg, req.Credentials)
	if err != nil {
		return provider.Token{}, err
	}
	token := jwt.NewWithClaims(method, claims)
	for k, v := range cfg.Headers {
		token.Header[k] = v
	}
	if cfg.KeyID != "" {
		token.Header["kid"] = cfg.KeyID
	}
	signed, err := token.SignedString(key)
	if err != nil {
		return provider.Token{}, provider.Permanent(v1alpha1.ReasonInvalidCredentials, "signing with the %s key failed", cfg.Algorithm)
	}
	return provider.Token{Value: signed, IssuedAt: req.Now, ExpiresAt: exp}, nil
}

// ClockSkew is how far cfg backdates iat and nbf: its clockSkew, bounded to
// [0, v1alpha1.MaxJWTClockSkew] for providers built in code, or
// v1alpha1.DefaultJWTClockSkew when unset.
func ClockSkew(cfg *v1alpha1.JWTProvider) time.Duration {
	if cfg.ClockSkew == nil {
		return v1alpha1.DefaultJWTClockSkew
	}
	return min(max(cfg.ClockSkew.Duration, 0), v1alpha1.MaxJWTClockSkew)
}

// buildClaims merges the request's claims with the ones the operator owns.
// exp is now plus the lifetime, capped by maxLifetime and cut to whole
// seconds, so the recorded expiry is never later than the token's; iat and
// nbf are now less the clock skew allowance.
func buildClaims(cfg *v1alpha1.JWTProvider, p *v1alpha1.JWTParams, lifetime time.Duration, now time.Time) (jwt.MapClaims, time.Time, error) {
	claims, err := provider.DecodeObject("spec.jwt.claims", p.Claims, reservedClaims...)
	if err != nil {
		return nil, time.Time{}, err
	}
	if lifetime <= 0 {
		lifetime = v1alpha1.DefaultLifetime
	}
	if cfg.MaxLifetime != nil && cfg.MaxLifetime.Duration > 0 {
		lifetime = min(lifetime, cfg.MaxLifetime.Duration)
	}
	exp := time.Unix(now.Add(lifetime).Unix(), 0).UTC()
	issued := now.Add(-ClockSkew(cfg)).Unix()
	claims["iat"], claims["nbf"], claims["exp"], claims["jti"] = issued, issued, exp.Unix(), newJTI()
	for k, v := range map[string]string{"iss": cfg.Issuer, "aud": cfg.Audience, "sub": p.Subject} {
		if v != "" {
			claims[k] = v
		}
	}
	return claims, exp, nil
}

// newJTI returns a random 128-bit token ID, so vendors that remember IDs
// (Tableau) never see one twice.
func newJTI() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails since Go 1.24
	return hex.EncodeToString(b)
}

// signer checks the headers and reads the signing key for the configured
// algorithm, parsed through the key cache.
func (p *Provider) signer(ctx context.Context, cfg *v1alpha1.JWTProvider, creds provider.CredentialReader) (jwt.SigningMethod, any, error) {
	for _, h := range reservedHeaders {
		if _, ok := cfg.Headers[h]; ok {
			return nil, nil, provider.Permanent(v1alpha1.ReasonInvalidRequest, "spec.jwt.headers must not set %q: the operator sets it (use keyID for kid)", h)
		}
	}
	method, ok := methods[cfg.Algorithm]
	if !ok {
		return nil, nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "jwt algorithm %q is not supported", cfg.Algorithm)
	}
	raw, err := creds.Read(ctx, cfg.SigningKeySecretRef)
	if err != nil {
		return nil, nil, err
	}
	key, err := p.keys.parse(method, raw)
	if err != nil {
		return nil, nil, provider.Permanent(v1alpha1.ReasonInvalidCredentials, "signing key for %s %v", cfg.Algorithm, err)
	}
	return method, key, nil
}

// parseKey returns the key method signs with. Its errors describe the key's
// form (PEM block type, key type, size) and never include key bytes.
func parseKey(method jwt.SigningMethod, raw []byte) (any, error) {
	if len(raw) > maxKeyBytes {
		return nil, fmt.Errorf("is %d bytes, more than the %d bytes accepted", len(raw), maxKeyBytes)
	}
	if _, isHMAC := method.(*jwt.SigningMethodHMAC); isHMAC {
		if len(raw) == 0 {
			return nil, errors.New("is empty")
		}
		if bytes.Contains(raw, []byte("-----BEGIN ")) {
			return nil, errors.New("is a PEM block; HMAC algorithms need the raw shared secret")
		}
		return raw, nil
	}
	key, err := parsePrivateKey(raw)
	if err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if method != jwt.SigningMethodRS256 {
			return nil, fmt.Errorf("is an RSA private key; %s needs an EC P-256 key", method.Alg())
		}
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("is a %d-bit RSA key; RS256 needs at least %d bits", k.N.BitLen(), minRSABits)
		}
		if k.N.BitLen() > maxRSABits {
			return nil, fmt.Errorf("is a %d-bit RSA key; the operator accepts at most %d bits", k.N.BitLen(), maxRSABits)
		}
	case *ecdsa.PrivateKey:
		if method != jwt.SigningMethodES256 {
			return nil, fmt.Errorf("is an EC private key; %s needs an RSA key", method.Alg())
		}
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("uses curve %s; ES256 needs P-256", k.Curve.Params().Name)
		}
	case ed25519.PrivateKey:
		return nil, fmt.Errorf("is an Ed25519 private key; %s needs another key type", method.Alg())
	default:
		return nil, errors.New("is an unsupported private key type")
	}
	return key, nil
}

// parsePrivateKey decodes the first PEM block as a PKCS#1 RSA, SEC1 EC or
// PKCS#8 private key.
func parsePrivateKey(raw []byte) (any, error) {
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, errors.New("is not a PEM-encoded private key")
	}
	if len(block.Bytes) > maxKeyDER {
		return nil, fmt.Errorf("is a PEM %q block of %d bytes, larger than a %d-bit RSA key", block.Type, len(block.Bytes), maxRSABits)
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("is a PEM %q block, not an unencrypted private key", block.Type)
	}
	if err != nil {
		// x509's errors may quote ASN.1 content: say only what failed.
		return nil, fmt.Errorf("is a PEM %q block that does not parse", block.Type)
	}
	return key, nil
}
