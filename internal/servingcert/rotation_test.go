package servingcert

import (
	"crypto/x509"
	"net"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestShouldRotate(t *testing.T) {
	nb, na := t0, t0.Add(90*24*time.Hour) // renewed at day 60
	cases := []struct {
		name string
		now  time.Time
		want bool
	}{
		{name: "a certificate just issued is kept", now: t0, want: false},
		{name: "a certificate one minute short of two thirds of its life is kept", now: t0.Add(60*24*time.Hour - time.Minute), want: false},
		{name: "a certificate at two thirds of its life is rotated", now: t0.Add(60 * 24 * time.Hour), want: true},
		{name: "an expired certificate is rotated", now: na.Add(time.Second), want: true},
		{name: "a certificate at its expiry instant is rotated", now: na, want: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ShouldRotate(tc.now, nb, na); got != tc.want {
				t.Fatalf("ShouldRotate(%s) = %v, want %v", tc.now, got, tc.want)
			}
		})
	}
	if !ShouldRotate(t0, t0, t0) {
		t.Fatal("a certificate with no validity window must be rotated")
	}
}

func TestDecide(t *testing.T) {
	pol := policy{caLifetime: 365 * 24 * time.Hour, servingLifetime: 90 * 24 * time.Hour, overlap: 24 * time.Hour,
		dnsNames: DNSNames("ep", "ops"), ips: IPAddresses()}
	day := 24 * time.Hour
	ca := mustCA(t, t0, pol.caLifetime)
	serving := mustServing(t, t0, pol.servingLifetime, ca, pol.dnsNames, pol.ips)
	next := mustCA(t, t0.Add(250*day), pol.caLifetime)
	other := mustCA(t, t0, pol.caLifetime)
	foreignServing := mustServing(t, t0, pol.servingLifetime, other, pol.dnsNames, pol.ips)
	wrongNames := mustServing(t, t0, pol.servingLifetime, ca, DNSNames("old", "ops"), pol.ips)
	expiredCA := mustCA(t, t0.Add(-400*day), pol.caLifetime)
	fresh := material{signer: ca, serving: serving, bundle: []*x509.Certificate{ca.cert}}
	withNext := material{signer: ca, next: next, serving: serving, bundle: []*x509.Certificate{ca.cert, next.cert}}

	cases := []struct {
		name string
		now  time.Time
		m    material
		want plan
	}{
		{name: "an empty Secret gets a CA and a serving certificate", now: t0, m: material{},
			want: plan{newSigner: true, reissue: true}},
		{name: "fresh material is left alone", now: t0.Add(day), m: fresh, want: plan{}},
		{name: "a serving certificate at two thirds of its life is reissued by the same CA", now: t0.Add(60 * day), m: fresh,
			want: plan{reissue: true}},
		{name: "a CA at two thirds of its life gets a successor published beside it", now: t0.Add(250 * day),
			m: material{signer: ca, serving: mustServing(t, t0.Add(240*day), pol.servingLifetime, ca, pol.dnsNames, pol.ips),
				bundle: []*x509.Certificate{ca.cert}},
			want: plan{newNext: true}},
		{name: "a successor published less than the overlap ago does not sign yet", now: t0.Add(250*day + 23*time.Hour),
			m: material{signer: ca, next: next, serving: mustServing(t, t0.Add(240*day), pol.servingLifetime, ca, pol.dnsNames, pol.ips),
				bundle: withNext.bundle},
			want: plan{}},
		{name: "a successor published for the overlap becomes the signer", now: t0.Add(251*day + time.Minute), m: withNext,
			want: plan{promote: true, reissue: true}},
		{name: "an expired CA without a successor is replaced at once", now: t0.Add(366 * day), m: fresh,
			want: plan{newSigner: true, reissue: true, prune: true}},
		{name: "an expired CA with a successor hands over to it", now: t0.Add(366 * day), m: withNext,
			want: plan{promote: true, reissue: true, prune: true}},
		{name: "a serving certificate another CA signed is reissued", now: t0.Add(day),
			m: material{signer: ca, serving: foreignServing, bundle: fresh.bundle}, want: plan{reissue: true}},
		{name: "a serving certificate for other names is reissued", now: t0.Add(day),
			m: material{signer: ca, serving: wrongNames, bundle: fresh.bundle}, want: plan{reissue: true}},
		{name: "an expired CA left in the bundle is pruned", now: t0.Add(day),
			m: material{signer: ca, serving: serving, bundle: []*x509.Certificate{ca.cert, expiredCA.cert}}, want: plan{prune: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := decide(tc.now, tc.m, pol); got != tc.want {
				t.Fatalf("decide() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestNextCheck(t *testing.T) {
	pol := policy{caLifetime: 365 * 24 * time.Hour, servingLifetime: 90 * 24 * time.Hour, overlap: 24 * time.Hour,
		dnsNames: DNSNames("ep", "ops"), ips: IPAddresses()}
	ca := mustCA(t, t0, pol.caLifetime)
	serving := mustServing(t, t0, pol.servingLifetime, ca, pol.dnsNames, pol.ips)
	m := material{signer: ca, serving: serving, bundle: []*x509.Certificate{ca.cert}}
	want := rotateAt(serving.cert.NotBefore, serving.cert.NotAfter)
	if got := nextCheck(m, pol); !got.Equal(want) {
		t.Fatalf("nextCheck() = %s, want the serving certificate's renewal at %s", got, want)
	}
	if p := decide(want.Add(-time.Second), m, pol); !p.empty() {
		t.Fatalf("decide() a second before nextCheck = %+v, want nothing to do", p)
	}
	if p := decide(want, m, pol); !p.reissue {
		t.Fatalf("decide() at nextCheck = %+v, want a reissue", p)
	}
}

func TestServingCertificateCappedByCA(t *testing.T) {
	ca := mustCA(t, t0, 100*24*time.Hour)
	s := mustServing(t, t0.Add(50*24*time.Hour), 90*24*time.Hour, ca, DNSNames("ep", "ops"), IPAddresses())
	if !s.cert.NotAfter.Equal(ca.cert.NotAfter) {
		t.Fatalf("serving NotAfter = %s, want the CA's %s", s.cert.NotAfter, ca.cert.NotAfter)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	if _, err := s.cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "ep.ops.svc", CurrentTime: t0.Add(51 * 24 * time.Hour)}); err != nil {
		t.Fatalf("serving certificate does not verify against its CA: %v", err)
	}
	if err := s.cert.VerifyHostname("127.0.0.1"); err != nil {
		t.Fatalf("serving certificate is not valid for loopback: %v", err)
	}
}

func mustCA(t *testing.T, now time.Time, lifetime time.Duration) *keyPair {
	t.Helper()
	ca, err := newCA(now, lifetime, "test")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func mustServing(t *testing.T, now time.Time, lifetime time.Duration, ca *keyPair, names []string, ips []net.IP) *keyPair {
	t.Helper()
	s, err := newServing(now, lifetime, ca, names, ips)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
