// Package servingcert creates, rotates and serves the token endpoint's TLS
// certificate without cert-manager, and publishes the CA bundle clients
// verify it with as a ConfigMap in every namespace that has an
// EmbedTokenTemplate, as kube-root-ca.crt is published.
//
// The material lives in one Secret in the operator's namespace, so every
// replica reads and writes it as a whole: two replicas creating or rotating
// it at once conflict on its resourceVersion, and the loser re-reads the
// winner's instead of publishing a CA of its own.
package servingcert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

// Keys of the Secret. TLSCertKey, TLSKeyKey and CABundleKey are the keys of
// a kubernetes.io/tls Secret as cert-manager writes it, so the server and
// the publisher read either kind; the signer keys are the operator's own.
const (
	// TLSCertKey holds the serving certificate (PEM).
	TLSCertKey = "tls.crt"
	// TLSKeyKey holds the serving certificate's private key (PEM).
	TLSKeyKey = "tls.key"
	// CABundleKey holds every CA certificate clients should trust (PEM),
	// the current signer's and, during an overlap, the previous and next.
	CABundleKey = "ca.crt"
	// SignerCertKey and SignerKeyKey hold the CA that signs serving
	// certificates.
	SignerCertKey = "signer.crt"
	SignerKeyKey  = "signer.key"
	// NextCertKey and NextKeyKey hold a CA already published in the bundle
	// that becomes the signer once clients have had time to pick it up.
	NextCertKey = "next-signer.crt"
	NextKeyKey  = "next-signer.key"
)

// Default lifetimes. The serving certificate is short-lived so a leaked key
// is useful for weeks, not years; the CA lives long enough that clients
// reload their bundle rarely.
const (
	DefaultCALifetime      = 365 * 24 * time.Hour
	DefaultServingLifetime = 90 * 24 * time.Hour
	// DefaultCAOverlap is how long a new CA is published beside the old
	// one before it signs the serving certificate, so clients that read
	// the bundle before the rotation keep verifying the server.
	DefaultCAOverlap = 24 * time.Hour
)

// maxPEMBytes bounds what is parsed from a Secret; the operator's own
// material is a few KiB, a cert-manager chain somewhat more.
const maxPEMBytes = 256 << 10

// backdate is subtracted from NotBefore so a client whose clock is a little
// behind the operator's still accepts a fresh certificate.
const backdate = 5 * time.Minute

// keyPair is a certificate and its private key.
type keyPair struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	keyPEM  []byte
}

// newCA creates a self-signed ECDSA P-256 CA valid for lifetime from now.
func newCA(now time.Time, lifetime time.Duration, commonName string) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: fmt.Sprintf("%s-ca@%d", commonName, now.Unix())},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          ski,
	}
	return sign(tmpl, tmpl, key, key)
}

// newServing creates a serving certificate for dnsNames and ips signed by
// ca, valid for lifetime from now but never past the CA's own expiry.
func newServing(now time.Time, lifetime time.Duration, ca *keyPair, dnsNames []string, ips []net.IP) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate serving key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(lifetime)
	if ca.cert.NotAfter.Before(notAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:   serial,
		Subject:        pkix.Name{CommonName: dnsNames[0]},
		NotBefore:      now.Add(-backdate),
		NotAfter:       notAfter,
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:       dnsNames,
		IPAddresses:    ips,
		AuthorityKeyId: ca.cert.SubjectKeyId,
	}
	return sign(tmpl, ca.cert, key, ca.key)
}

func sign(tmpl, parent *x509.Certificate, key *ecdsa.PrivateKey, signer crypto.Signer) (*keyPair, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse signed certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	return &keyPair{
		cert: cert, key: key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n, nil
}

func subjectKeyID(pub *ecdsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return sum[:20], nil
}

// parseKeyPair reads a certificate and its EC private key from PEM and
// checks that they belong together.
func parseKeyPair(certPEM, keyPEM []byte) (*keyPair, error) {
	certs, err := ParseCertificates(certPEM)
	if err != nil {
		return nil, err
	}
	if len(keyPEM) > maxPEMBytes {
		return nil, errors.New("private key too large")
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("no PEM private key")
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	pub, ok := certs[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(key.Public()) {
		return nil, errors.New("private key does not match certificate")
	}
	return &keyPair{cert: certs[0], key: key, certPEM: certPEM, keyPEM: keyPEM}, nil
}

// ParseCertificates decodes every CERTIFICATE block of a PEM bundle, at
// most 256 KiB of it, and fails when there is none.
func ParseCertificates(bundle []byte) ([]*x509.Certificate, error) {
	if len(bundle) > maxPEMBytes {
		return nil, fmt.Errorf("PEM bundle larger than %d bytes", maxPEMBytes)
	}
	var certs []*x509.Certificate
	for rest := bundle; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return certs, nil
}

// encodeBundle writes certs as one PEM bundle, newest first, each once.
func encodeBundle(certs ...*x509.Certificate) []byte {
	certs = slices.Clone(certs)
	slices.SortStableFunc(certs, func(a, b *x509.Certificate) int { return b.NotBefore.Compare(a.NotBefore) })
	var buf bytes.Buffer
	var seen [][]byte
	for _, c := range certs {
		if slices.ContainsFunc(seen, func(raw []byte) bool { return bytes.Equal(raw, c.Raw) }) {
			continue
		}
		seen = append(seen, c.Raw)
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return buf.Bytes()
}
