package servingcert

import (
	"testing"
	"time"
)

// FuzzReadMaterial feeds arbitrary Secret data to the parser and the
// rotation decision: whatever a Secret holds, neither panics, and material
// that decide leaves alone is complete.
func FuzzReadMaterial(f *testing.F) {
	ca, err := newCA(t0, 24*time.Hour, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	s, err := newServing(t0, time.Hour, ca, DNSNames("ep", "ops"), IPAddresses())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ca.certPEM, ca.keyPEM, s.certPEM, s.keyPEM, ca.certPEM)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), []byte{}, []byte{}, []byte{}, []byte("x"))
	f.Add(s.certPEM, ca.keyPEM, ca.certPEM, s.keyPEM, append(s.certPEM, ca.certPEM...))
	pol := policy{caLifetime: 24 * time.Hour, servingLifetime: time.Hour, overlap: time.Minute,
		dnsNames: DNSNames("ep", "ops"), ips: IPAddresses()}
	f.Fuzz(func(t *testing.T, signerCert, signerKey, tlsCert, tlsKey, bundle []byte) {
		m := readMaterial(map[string][]byte{
			SignerCertKey: signerCert, SignerKeyKey: signerKey, TLSCertKey: tlsCert, TLSKeyKey: tlsKey, CABundleKey: bundle,
		})
		if p := decide(t0, m, pol); p.empty() && (m.signer == nil || m.serving == nil) {
			t.Fatalf("decide() left incomplete material alone: %+v", m)
		}
		_ = nextCheck(m, pol)
	})
}
