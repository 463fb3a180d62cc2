package provider

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// CertificateAssertionLifetime is how long a certificate-signed client
// assertion is valid, as MSAL's confidential client signs them.
const CertificateAssertionLifetime = 10 * time.Minute

// The largest keys a certificate credential may hold, as the jwt vendor
// bounds its signing keys: parsing and signing with larger ones costs the
// manager time a namespace's Secret should not decide.
const (
	// maxCertificateRSABits is the largest RSA key accepted.
	maxCertificateRSABits = 4096
	// maxCertificateKeyDER bounds a PEM private key's DER before it is
	// parsed: a 4,096-bit PKCS #8 RSA key is about 2,400 bytes.
	maxCertificateKeyDER = 3 << 10
)

// ClientCertificate is a certificate credential read from its Secrets: the
// certificate, which names it to the server, and its private key.
type ClientCertificate struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// ReadClientCertificate reads and parses the certificate and private key
// that c names. A missing key is a transient CredentialsNotFound, as Read
// reports it; one that does not parse, or a key that does not match the
// certificate, is a permanent InvalidCredentials whose message quotes
// neither.
func ReadClientCertificate(ctx context.Context, creds CredentialReader, c *v1alpha1.ClientCertificate) (ClientCertificate, error) {
	certPEM, err := creds.Read(ctx, c.CertificateSecretRef)
	if err != nil {
		return ClientCertificate{}, err
	}
	keyPEM := certPEM
	if c.PrivateKeySecretRef != nil {
		if keyPEM, err = creds.Read(ctx, *c.PrivateKeySecretRef); err != nil {
			return ClientCertificate{}, err
		}
	}
	cc, err := ParseClientCertificate(certPEM, keyPEM)
	if err != nil {
		return ClientCertificate{}, Permanent(v1alpha1.ReasonInvalidCredentials, "clientCertificate %s: %v", c.CertificateSecretRef.Name, err)
	}
	return cc, nil
}

// certificateError is a parse failure that names what is wrong and never
// quotes the input.
type certificateError string

func (e certificateError) Error() string { return string(e) }

// ParseClientCertificate reads the first CERTIFICATE block of certPEM and
// the first private key block of keyPEM (PKCS #1, SEC 1 or PKCS #8; RSA or
// ECDSA P-256), which must be the certificate's key. The two may be the
// same bundle.
func ParseClientCertificate(certPEM, keyPEM []byte) (ClientCertificate, error) {
	var cc ClientCertificate
	for rest := certPEM; cc.cert == nil; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return ClientCertificate{}, certificateError("no PEM CERTIFICATE block")
		}
		if block.Type == "CERTIFICATE" {
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return ClientCertificate{}, certificateError("the certificate does not parse")
			}
			cc.cert = cert
		}
	}
	for rest := keyPEM; cc.key == nil; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return ClientCertificate{}, certificateError("no PEM private key block")
		}
		key, err := parsePrivateKey(block)
		if err != nil {
			return ClientCertificate{}, err
		}
		cc.key = key
	}
	pub, ok := cc.key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cc.cert.PublicKey) {
		return ClientCertificate{}, certificateError("the private key is not the certificate's")
	}
	return cc, nil
}

// parsePrivateKey parses one PEM block, nil for a block that is not a key.
func parsePrivateKey(block *pem.Block) (crypto.Signer, error) {
	if len(block.Bytes) > maxCertificateKeyDER {
		return nil, certificateError("the private key is larger than a 4096-bit RSA key")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, certificateError("the private key does not parse")
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() > maxCertificateRSABits {
			return nil, certificateError("an RSA private key may have at most 4096 bits")
		}
		return k, nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, certificateError("an ECDSA private key must be on P-256")
		}
		return k, nil
	}
	return nil, certificateError("the private key must be RSA or ECDSA P-256")
}

// Thumbprint is the certificate's SHA-256 thumbprint as the x5t#S256
// header carries it: standard base64, padded, as MSAL writes it.
func (c ClientCertificate) Thumbprint() string {
	sum := sha256.Sum256(c.cert.Raw)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// Assertion signs the client assertion of clientID for the token endpoint
// audience at now with MSAL Go's confidential client's header and claims:
// header alg (PS256 for an RSA key, as MSAL signs for Entra ID; ES256 for
// ECDSA), typ JWT and x5t#S256; claims aud, exp (now plus
// CertificateAssertionLifetime), iss and sub (clientID), jti (a random
// UUID) and nbf (now), the numeric ones as whole seconds.
func (c ClientCertificate) Assertion(clientID, audience string, now time.Time) (string, error) {
	return c.assertion(clientID, audience, now, string(uuid.NewUUID()))
}

func (c ClientCertificate) assertion(clientID, audience string, now time.Time, jti string) (string, error) {
	var method jwt.SigningMethod = jwt.SigningMethodPS256
	if _, ok := c.key.(*ecdsa.PrivateKey); ok {
		method = jwt.SigningMethodES256
	}
	tok := jwt.NewWithClaims(method, jwt.MapClaims{
		"aud": audience,
		"exp": json.Number(strconv.FormatInt(now.Add(CertificateAssertionLifetime).Unix(), 10)),
		"iss": clientID,
		"jti": jti,
		"nbf": json.Number(strconv.FormatInt(now.Unix(), 10)),
		"sub": clientID,
	})
	tok.Header = map[string]any{"alg": method.Alg(), "typ": "JWT", "x5t#S256": c.Thumbprint()}
	s, err := tok.SignedString(c.key)
	if err != nil {
		return "", Permanent(v1alpha1.ReasonInvalidCredentials, "signing the client assertion failed")
	}
	return s, nil
}
