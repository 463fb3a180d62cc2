package servingcert

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// SecretLabel marks the Secret holding the token endpoint's TLS material, so
// the admission policy can keep the operator from writing such a Secret
// anywhere but its own namespace.
const SecretLabel = "embedtokens.io/serving-cert" //nolint:gosec // G101: a label key, not a credential

// DefaultCheckInterval is the longest a replica waits between looks at the
// Secret, whatever its certificates' dates say, so one edited or deleted by
// hand is repaired within the hour.
const DefaultCheckInterval = time.Hour

// maxAttempts bounds how often Ensure re-reads the Secret after losing a
// race to another replica.
const maxAttempts = 5

// DNSNames are the names the serving certificate is issued for: the
// Service's in-cluster names, and localhost for callers on the pod's own
// network (host-network pods and tests on loopback).
func DNSNames(service, namespace string) []string {
	return []string{
		service + "." + namespace + ".svc",
		service + "." + namespace + ".svc.cluster.local",
		service,
		"localhost",
	}
}

// IPAddresses are the addresses the serving certificate is issued for:
// loopback, for the same callers as localhost.
func IPAddresses() []net.IP { return []net.IP{net.IPv4(127, 0, 0, 1)} }

// RotatorOptions configures a Rotator. Zero durations take the defaults.
type RotatorOptions struct {
	// Namespace and SecretName locate the Secret in the operator's
	// namespace.
	Namespace, SecretName string
	// DNSNames and IPs are what the serving certificate is issued for.
	DNSNames []string
	IPs      []net.IP
	// CALifetime, ServingLifetime and CAOverlap default to
	// DefaultCALifetime, DefaultServingLifetime and DefaultCAOverlap.
	CALifetime, ServingLifetime, CAOverlap time.Duration
	// CheckInterval defaults to DefaultCheckInterval.
	CheckInterval time.Duration
	// Clock defaults to the real clock; tests step a fake one through a
	// CA's life.
	Clock clock.WithTicker
}

// Rotator keeps the TLS Secret complete and current. Every replica runs one:
// the Secret is created if missing and rotated when due, with the
// resourceVersion as the only lock, so replicas starting or rotating at once
// agree on the winner's material.
type Rotator struct {
	client client.Client
	opts   RotatorOptions
	pol    policy
}

// NewRotator returns a Rotator writing through c, which must read Secrets
// from the API server, not from a cache (the manager's API reader wrapped
// with its writer, or a plain client).
func NewRotator(c client.Client, opts RotatorOptions) (*Rotator, error) {
	if opts.Namespace == "" || opts.SecretName == "" || len(opts.DNSNames) == 0 {
		return nil, errors.New("servingcert: namespace, secret name and DNS names are required")
	}
	if opts.CALifetime <= 0 {
		opts.CALifetime = DefaultCALifetime
	}
	if opts.ServingLifetime <= 0 {
		opts.ServingLifetime = DefaultServingLifetime
	}
	if opts.CAOverlap <= 0 {
		opts.CAOverlap = DefaultCAOverlap
	}
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = DefaultCheckInterval
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	return &Rotator{client: c, opts: opts, pol: policy{
		caLifetime: opts.CALifetime, servingLifetime: opts.ServingLifetime, overlap: opts.CAOverlap,
		dnsNames: opts.DNSNames, ips: opts.IPs,
	}}, nil
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every
// replica serves, so every replica must find a certificate at start.
func (r *Rotator) NeedLeaderElection() bool { return false }

// Start implements manager.Runnable: it ensures the Secret now and again
// whenever a certificate falls due, at least every CheckInterval.
func (r *Rotator) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("servingcert")
	for {
		wait := r.opts.CheckInterval
		due, err := r.Ensure(ctx)
		if err != nil {
			logger.Error(err, "Unable to ensure the token endpoint's TLS Secret",
				"secret", klog.KRef(r.opts.Namespace, r.opts.SecretName))
			wait = min(wait, time.Minute)
		} else if d := due.Sub(r.opts.Clock.Now()); !due.IsZero() && d < wait {
			wait = max(d, time.Second)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.opts.Clock.After(wait):
		}
	}
}

// Ensure creates or rotates the Secret as decide says and returns when it
// next needs a look. A replica that loses a create or update race re-reads
// the Secret and adopts what the winner wrote.
func (r *Rotator) Ensure(ctx context.Context) (time.Time, error) {
	key := types.NamespacedName{Namespace: r.opts.Namespace, Name: r.opts.SecretName}
	for range maxAttempts {
		secret := &corev1.Secret{}
		err := r.client.Get(ctx, key, secret)
		if apierrors.IsNotFound(err) {
			secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
		} else if err != nil {
			return time.Time{}, fmt.Errorf("read TLS Secret: %w", err)
		}
		now := r.opts.Clock.Now()
		m := readMaterial(secret.Data)
		p := decide(now, m, r.pol)
		if p.empty() && secret.ResourceVersion != "" {
			return nextCheck(m, r.pol), nil
		}
		if m, err = r.apply(now, m, p); err != nil {
			return time.Time{}, err
		}
		writeMaterial(secret, m)
		if secret.ResourceVersion == "" {
			err = r.client.Create(ctx, secret)
		} else {
			err = r.client.Update(ctx, secret)
		}
		switch {
		case apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err):
			continue
		case err != nil:
			return time.Time{}, fmt.Errorf("write TLS Secret: %w", err)
		}
		log.FromContext(ctx).Info("Wrote the token endpoint's TLS Secret", "secret", klog.KObj(secret),
			"newCA", p.newSigner || p.newNext, "promotedCA", p.promote, "servingNotAfter", m.serving.cert.NotAfter)
		return nextCheck(m, r.pol), nil
	}
	return time.Time{}, fmt.Errorf("TLS Secret %s kept changing under %d attempts", key, maxAttempts)
}

// apply carries out p on m.
func (r *Rotator) apply(now time.Time, m material, p plan) (material, error) {
	var err error
	switch {
	case p.newSigner:
		if m.signer, err = newCA(now, r.pol.caLifetime, r.opts.DNSNames[0]); err != nil {
			return m, err
		}
		m.next, m.bundle = nil, nil
	case p.promote:
		if m.signer != nil {
			m.bundle = append(m.bundle, m.signer.cert)
		}
		m.signer, m.next = m.next, nil
	case p.newNext:
		if m.next, err = newCA(now, r.pol.caLifetime, r.opts.DNSNames[0]); err != nil {
			return m, err
		}
	}
	if p.reissue {
		if m.serving, err = newServing(now, r.pol.servingLifetime, m.signer, r.pol.dnsNames, r.pol.ips); err != nil {
			return m, err
		}
	}
	bundle := []*x509.Certificate{m.signer.cert}
	if m.next != nil {
		bundle = append(bundle, m.next.cert)
	}
	for _, c := range m.bundle {
		if now.Before(c.NotAfter) {
			bundle = append(bundle, c)
		}
	}
	m.bundle = bundle
	return m, nil
}

// readMaterial parses what it can of a Secret's data; decide repairs the
// rest.
func readMaterial(data map[string][]byte) material {
	var m material
	m.signer, _ = parseKeyPair(data[SignerCertKey], data[SignerKeyKey])
	m.next, _ = parseKeyPair(data[NextCertKey], data[NextKeyKey])
	m.serving, _ = parseKeyPair(data[TLSCertKey], data[TLSKeyKey])
	m.bundle, _ = ParseCertificates(data[CABundleKey])
	return m
}

// writeMaterial stores m in secret, replacing its data, labels the Secret as
// the operator's and keeps its type Opaque, the only type the admission
// policy lets the operator write.
func writeMaterial(secret *corev1.Secret, m material) {
	data := map[string][]byte{
		SignerCertKey: m.signer.certPEM, SignerKeyKey: m.signer.keyPEM,
		TLSCertKey: m.serving.certPEM, TLSKeyKey: m.serving.keyPEM,
		CABundleKey: encodeBundle(m.bundle...),
	}
	if m.next != nil {
		data[NextCertKey], data[NextKeyKey] = m.next.certPEM, m.next.keyPEM
	}
	secret.Data = data
	secret.Type = corev1.SecretTypeOpaque
	if secret.Labels == nil {
		secret.Labels = map[string]string{}
	}
	secret.Labels[v1alpha1.ManagedByLabel] = v1alpha1.ManagedByValue
	secret.Labels[SecretLabel] = "true"
}
