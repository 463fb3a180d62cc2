package servingcert

import (
	"crypto/x509"
	"net"
	"slices"
	"time"
)

// ShouldRotate reports whether a certificate valid from notBefore to
// notAfter is due for replacement at now: once two thirds of its life have
// passed, so a replica that misses a check still renews it with a third of
// its life to spare, and always once it has expired.
func ShouldRotate(now, notBefore, notAfter time.Time) bool {
	if !now.Before(notAfter) || !notAfter.After(notBefore) {
		return true
	}
	return !now.Before(rotateAt(notBefore, notAfter))
}

// rotateAt is when ShouldRotate turns true for a certificate that is valid.
func rotateAt(notBefore, notAfter time.Time) time.Time {
	return notBefore.Add(notAfter.Sub(notBefore) / 3 * 2)
}

// material is what the Secret holds, parsed. A missing or unreadable part
// is nil.
type material struct {
	signer, next, serving *keyPair
	// bundle is the published CA certificates, signer and next included.
	bundle []*x509.Certificate
}

// policy is what the material should look like.
type policy struct {
	caLifetime, servingLifetime, overlap time.Duration
	dnsNames                             []string
	ips                                  []net.IP
}

// plan is what must change in the material at a given time.
type plan struct {
	// newSigner: there is no usable CA, so one is created and signs at
	// once; nothing can overlap with a CA that does not exist.
	newSigner bool
	// newNext: the signer is two thirds through its life, so its successor
	// is created and published beside it.
	newNext bool
	// promote: the successor has been published for the overlap, so it
	// becomes the signer.
	promote bool
	// reissue: the serving certificate is missing, due, signed by a CA that
	// is not the signer, or names other hosts.
	reissue bool
	// prune: the bundle holds an expired CA.
	prune bool
}

func (p plan) empty() bool { return p == plan{} }

// decide is the pure rotation decision at now.
func decide(now time.Time, m material, pol policy) plan {
	var p plan
	for _, c := range m.bundle {
		if !now.Before(c.NotAfter) {
			p.prune = true
		}
	}
	signer, next := m.signer, m.next
	if next != nil && !now.Before(next.cert.NotAfter) {
		next = nil
	}
	switch {
	case signer == nil || !now.Before(signer.cert.NotAfter):
		if next != nil {
			// Better a CA clients may not have yet than none.
			p.promote, p.reissue = true, true
		} else {
			p.newSigner, p.reissue = true, true
		}
		return p
	case next != nil && !now.Before(published(next).Add(pol.overlap)):
		p.promote, p.reissue = true, true
		return p
	case next == nil && ShouldRotate(now, signer.cert.NotBefore, signer.cert.NotAfter):
		p.newNext = true
	}
	if m.serving == nil || ShouldRotate(now, m.serving.cert.NotBefore, m.serving.cert.NotAfter) ||
		m.serving.cert.CheckSignatureFrom(signer.cert) != nil || !sameNames(m.serving.cert, pol) {
		p.reissue = true
	}
	return p
}

// published is when a CA was created and so first published.
func published(ca *keyPair) time.Time { return ca.cert.NotBefore.Add(backdate) }

// nextCheck is the earliest time decide may change its answer for m, so a
// replica sleeps until then rather than polling.
func nextCheck(m material, pol policy) time.Time {
	var times []time.Time
	if m.signer != nil {
		times = append(times, m.signer.cert.NotAfter)
		if m.next == nil {
			times = append(times, rotateAt(m.signer.cert.NotBefore, m.signer.cert.NotAfter))
		}
	}
	if m.next != nil {
		times = append(times, published(m.next).Add(pol.overlap))
	}
	if m.serving != nil {
		times = append(times, rotateAt(m.serving.cert.NotBefore, m.serving.cert.NotAfter))
	}
	for _, c := range m.bundle {
		times = append(times, c.NotAfter)
	}
	if len(times) == 0 {
		return time.Time{}
	}
	return slices.MinFunc(times, time.Time.Compare)
}

// sameNames reports whether cert is issued for exactly the policy's names
// and addresses.
func sameNames(cert *x509.Certificate, pol policy) bool {
	if !slices.Equal(sorted(cert.DNSNames), sorted(pol.dnsNames)) || len(cert.IPAddresses) != len(pol.ips) {
		return false
	}
	for _, ip := range pol.ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
