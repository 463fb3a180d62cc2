package issuance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/fairness"
	"github.com/embedtokens/embed-token-operator/internal/provider/egress"
	"github.com/embedtokens/embed-token-operator/internal/requestrules"
)

// testCAPEM is a new self-signed CA certificate, PEM-encoded.
func testCAPEM(t *testing.T, name string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// rootsOf is the pool a client built by httpClients verifies servers with.
func rootsOf(c *http.Client) *x509.CertPool {
	if tr := c.Transport.(*http.Transport); tr.TLSClientConfig != nil {
		return tr.TLSClientConfig.RootCAs
	}
	return nil
}

// providerObj is an EmbedProvider as a provider reconcile sees it.
func providerObj(name string, uid types.UID, generation int64) *v1alpha1.EmbedProvider {
	return &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name, UID: uid, Generation: generation}}
}

func providerKey(name string) requestrules.Key {
	return requestrules.Key{Kind: "EmbedProvider", Namespace: "team-a", Name: name}
}

// TestHTTPClientsShareCABundles proves providers whose CA bundles are equal
// share one parsed pool, a different bundle gets its own, and a pool goes
// with the last client that uses it.
func TestHTTPClientsShareCABundles(t *testing.T) {
	h := newHTTPClients(0, clocktesting.NewFakePassiveClock(time.Now()))
	bundle, other := testCAPEM(t, "private CA"), testCAPEM(t, "other CA")
	build := func(name string, uid types.UID, caPEM []byte) *http.Client {
		t.Helper()
		c, err := h.client(providerKey(name), uid, 1, time.Second, caPEM, egress.Guard{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := build("a", "uid-a", bundle)
	b := build("b", "uid-b", append([]byte(nil), bundle...)) // equal content, another copy
	c := build("c", "uid-c", other)
	if rootsOf(a) == nil || rootsOf(a) != rootsOf(b) {
		t.Error("two providers with the same CA bundle do not share one pool")
	}
	if rootsOf(c) == rootsOf(a) {
		t.Error("a provider with another CA bundle shares its pool")
	}
	if _, pools := h.size(); pools != 2 {
		t.Errorf("%d pools for two distinct bundles", pools)
	}
	h.forget(providerKey("a"))
	if _, pools := h.size(); pools != 2 {
		t.Errorf("%d pools after one of the bundle's two users went, want 2", pools)
	}
	h.forget(providerKey("b"))
	h.forget(providerKey("c"))
	if clients, pools := h.size(); clients != 0 || pools != 0 {
		t.Errorf("%d clients and %d pools remain after every provider went", clients, pools)
	}
}

// TestHTTPClientsForgetAndRelease proves nothing is kept for a provider
// that no longer needs it: a deleted one, another object under the same
// name, an older spec, or one no request has used for idleClientTTL. Its
// HTTP client and its rate limiter (in the fairness gates) go together.
func TestHTTPClientsForgetAndRelease(t *testing.T) {
	start := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	bundle := testCAPEM(t, "private CA")
	for _, tc := range []struct {
		name string
		// then runs after the provider "p" (uid-1, generation 1) was used.
		then func(i *Issuer, clk *clocktesting.FakePassiveClock)
		// want is how many clients, limiters and pools are kept.
		want [3]int
	}{
		{"A deleted provider's entries are forgotten", func(i *Issuer, _ *clocktesting.FakePassiveClock) {
			i.ForgetProvider(providerKey("p"))
		}, [3]int{}},
		{"A provider reconciled unchanged and in use keeps its entries", func(i *Issuer, clk *clocktesting.FakePassiveClock) {
			clk.SetTime(start.Add(idleClientTTL))
			i.ReleaseProvider(providerKey("p"), providerObj("p", "uid-1", 1))
		}, [3]int{1, 1, 1}},
		{"A provider whose spec changed gives up its client, and keeps its limiter while the limit is the same", func(i *Issuer, _ *clocktesting.FakePassiveClock) {
			i.ReleaseProvider(providerKey("p"), providerObj("p", "uid-1", 2))
		}, [3]int{0, 1, 0}},
		{"A provider deleted and created again under the same name gives up the old one's entries", func(i *Issuer, _ *clocktesting.FakePassiveClock) {
			i.ReleaseProvider(providerKey("p"), providerObj("p", "uid-2", 1))
		}, [3]int{}},
		{"A provider no request used for longer than idleClientTTL gives up its entries", func(i *Issuer, clk *clocktesting.FakePassiveClock) {
			clk.SetTime(start.Add(idleClientTTL + time.Second))
			i.ReleaseProvider(providerKey("p"), providerObj("p", "uid-1", 1))
		}, [3]int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakePassiveClock(start)
			i := New(Options{Clock: clk})
			p := &Provider{Kind: "EmbedProvider", Namespace: "team-a", Name: "p", UID: "uid-1", Generation: 1,
				Spec: &v1alpha1.EmbedProviderSpec{RateLimit: &v1alpha1.RateLimit{RequestsPerSecond: 1}}}
			use(t, i, p, bundle, start)
			tc.then(i, clk)
			if clients, limiters, pools := i.HTTPClientCounts(); [3]int{clients, limiters, pools} != tc.want {
				t.Errorf("%d clients, %d limiters, %d pools kept; want %v", clients, limiters, pools, tc.want)
			}
		})
	}
}

// use makes i build p's HTTP client and rate limiter, as a vendor call does.
func use(t *testing.T, i *Issuer, p *Provider, bundle []byte, now time.Time) {
	t.Helper()
	if _, err := i.clients.client(p.Key(), p.UID, p.Generation, time.Second, bundle, egress.Guard{}); err != nil {
		t.Fatal(err)
	}
	i.gates.Limiters.For(fairness.ProviderKey(p.Key()), p.UID, p.Spec.RateLimit, now)
}

// TestHTTPClientsHoldNothingForDeletedProviders creates, uses and deletes
// many providers that share one CA bundle, as a tenant repeating the cycle
// would, and checks nothing is left of them.
func TestHTTPClientsHoldNothingForDeletedProviders(t *testing.T) {
	now := time.Now()
	i := New(Options{Clock: clocktesting.NewFakePassiveClock(now)})
	bundle := testCAPEM(t, "private CA")
	for cycle := range 3 {
		for n := range 50 {
			name := fmt.Sprintf("p%d", n)
			p := &Provider{Kind: "EmbedProvider", Namespace: "team-a", Name: name, UID: types.UID(fmt.Sprint(cycle, name)),
				Generation: 1, Spec: &v1alpha1.EmbedProviderSpec{}}
			use(t, i, p, bundle, now)
		}
		if _, _, pools := i.HTTPClientCounts(); pools != 1 {
			t.Fatalf("cycle %d: %d pools for one bundle", cycle, pools)
		}
		for n := range 50 {
			i.ForgetProvider(providerKey(fmt.Sprintf("p%d", n)))
		}
		if clients, limiters, pools := i.HTTPClientCounts(); clients+limiters+pools != 0 {
			t.Fatalf("cycle %d: %d clients, %d limiters, %d pools left after every provider was deleted", cycle, clients, limiters, pools)
		}
	}
}
