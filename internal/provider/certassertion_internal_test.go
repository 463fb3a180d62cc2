package provider

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// selfSigned is a PEM certificate for key.
func selfSigned(t *testing.T, key crypto.Signer) ([]byte, *x509.Certificate) {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "client"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(4102444800, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), cert
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// TestCertificateAssertionMatchesMSAL signs an assertion at a fixed time
// and jti and compares its header and claims, byte for byte, with what MSAL
// Go's confidential client (accesstokens.Credential.JWT, for an authority
// that is neither ADFS nor dSTS) signs from the same inputs: its header and
// claims are Go maps that golang-jwt marshals with encoding/json, so keys
// are sorted and exp/nbf are json.Numbers of whole seconds; x5t#S256 is the
// standard, padded base64 of the certificate's SHA-256.
func TestCertificateAssertionMatchesMSAL(t *testing.T) {
	now := time.Unix(1893553445, 0)
	const clientID, jti = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", "5d2e0b9a-1c3f-4e5d-8a7b-9c0d1e2f3a4b"
	const aud = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		alg  string
	}{
		{"an RSA key signs PS256, as MSAL signs for Entra ID", rsaKey, "PS256"},
		{"an ECDSA P-256 key signs ES256", ecKey, "ES256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certPEM, cert := selfSigned(t, tc.key)
			pkcs8, _ := x509.MarshalPKCS8PrivateKey(tc.key)
			cc, err := ParseClientCertificate(certPEM, pemOf("PRIVATE KEY", pkcs8))
			if err != nil {
				t.Fatal(err)
			}
			assertion, err := cc.assertion(clientID, aud, now, jti)
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(assertion, ".")
			sum := sha256.Sum256(cert.Raw)
			wantHeader := `{"alg":"` + tc.alg + `","typ":"JWT","x5t#S256":"` + base64.StdEncoding.EncodeToString(sum[:]) + `"}`
			wantClaims := `{"aud":"` + aud + `","exp":1893554045,"iss":"` + clientID + `","jti":"` + jti + `","nbf":1893553445,"sub":"` + clientID + `"}`
			for i, want := range []string{wantHeader, wantClaims} {
				got, err := base64.RawURLEncoding.DecodeString(parts[i])
				if err != nil || string(got) != want {
					t.Errorf("part %d = %s, want %s", i, got, want)
				}
			}
			if _, err := jwt.Parse(assertion, func(*jwt.Token) (any, error) { return cert.PublicKey, nil },
				jwt.WithValidMethods([]string{tc.alg}), jwt.WithTimeFunc(func() time.Time { return now })); err != nil {
				t.Errorf("the certificate's key does not verify the assertion: %v", err)
			}
		})
	}
}

// TestParseClientCertificate reads the forms a certificate credential
// takes in Secrets, and refuses what cannot sign without quoting it.
func TestParseClientCertificate(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaCert, _ := selfSigned(t, rsaKey)
	ecCert, _ := selfSigned(t, ecKey)
	p384Cert, _ := selfSigned(t, p384)
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	p384DER, _ := x509.MarshalECPrivateKey(p384)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	pkcs1 := pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey))
	tests := []struct {
		name      string
		cert, key []byte
		wantErr   string
	}{
		{name: "a PKCS #1 RSA key beside its certificate", cert: rsaCert, key: pkcs1},
		{name: "a PKCS #8 RSA key beside its certificate", cert: rsaCert, key: pemOf("PRIVATE KEY", pkcs8)},
		{name: "a SEC 1 ECDSA key beside its certificate", cert: ecCert, key: pemOf("EC PRIVATE KEY", ecDER)},
		{name: "one PEM bundle of key and certificate, key first", cert: append(append([]byte{}, pkcs1...), rsaCert...),
			key: append(append([]byte{}, pkcs1...), rsaCert...)},
		{name: "a key of another certificate is refused", cert: ecCert, key: pkcs1, wantErr: "not the certificate's"},
		{name: "a P-384 key is refused", cert: p384Cert, key: pemOf("EC PRIVATE KEY", p384DER), wantErr: "P-256"},
		{name: "no certificate is refused", cert: pkcs1, key: pkcs1, wantErr: "no PEM CERTIFICATE block"},
		{name: "no key is refused", cert: rsaCert, key: rsaCert, wantErr: "no PEM private key block"},
		{name: "a key larger than a 4096-bit RSA key is refused before it is parsed", cert: rsaCert,
			key: pemOf("PRIVATE KEY", make([]byte, 4<<10)), wantErr: "larger than a 4096-bit RSA key"},
		{name: "a corrupt key is refused without quoting it", cert: rsaCert, key: pemOf("PRIVATE KEY", []byte("hunter2")), wantErr: "does not parse"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseClientCertificate(tc.cert, tc.key)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
			case err != nil && strings.Contains(err.Error(), "hunter2"):
				t.Fatalf("error quotes the key: %v", err)
			}
		})
	}
}

// FuzzParseClientCertificate feeds arbitrary Secret values to the parser:
// it must never panic nor quote its input.
func FuzzParseClientCertificate(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("garbage"), []byte("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, cert, key []byte) {
		_, err := ParseClientCertificate(cert, key)
		if err != nil && len(err.Error()) > 200 {
			t.Fatalf("error is %d bytes", len(err.Error()))
		}
	})
}
