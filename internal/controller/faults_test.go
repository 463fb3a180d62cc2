package controller_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/issuance"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

var _ = Describe("Runtime faults", func() {
	// Each entry sets up a namespace whose request cannot get a token, and
	// returns the request and a counter of vendor calls made for it.
	type setupFunc func(ctx context.Context, f *fixture) (*v1alpha1.EmbedTokenRequest, func() int)
	noCalls := func() int { return 0 }
	scripted := func(status int, body string) setupFunc {
		return func(ctx context.Context, f *fixture) (*v1alpha1.EmbedTokenRequest, func() int) {
			v := newScriptedVendor(status, body)
			f.createNamedProvider(ctx, "scripted", httpProviderSpec(v.srv.URL))
			return f.httpRequest("fault", "scripted", time.Hour), v.callCount
		}
	}
	// rs256 signs the request's tokens with a jwt provider whose RS256 key
	// is key; signing makes no vendor call.
	rs256 := func(key []byte) setupFunc {
		return func(ctx context.Context, f *fixture) (*v1alpha1.EmbedTokenRequest, func() int) {
			f.createSecret(ctx, "signing", map[string][]byte{"key": key})
			f.createNamedProvider(ctx, "jwt", v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{JWT: &v1alpha1.JWTProvider{
				Algorithm: "RS256", SigningKeySecretRef: v1alpha1.SecretKeySelector{Name: "signing", Key: "key"}}}})
			etr := f.request("fault", time.Hour)
			etr.Spec.ProviderRef.Name = "jwt"
			etr.Spec.VendorParams = v1alpha1.VendorParams{JWT: &v1alpha1.JWTParams{Subject: "alice"}}
			return etr, noCalls
		}
	}

	DescribeTable("sets Ready=False with a specific reason, writes no Secret and does not loop",
		func(setup setupFunc, reason, message string) {
			ctx := context.Background()
			f := newFixture(ctx)
			f.createCredentials(ctx)
			etr, calls := setup(ctx, f)
			secretVersions := func(g Gomega) map[string]string {
				var list corev1.SecretList
				g.Expect(k8sClient.List(ctx, &list, client.InNamespace(f.ns))).To(Succeed())
				versions := map[string]string{}
				for _, s := range list.Items {
					versions[s.Name] = s.ResourceVersion
				}
				return versions
			}
			before := secretVersions(Default)
			Expect(k8sClient.Create(ctx, etr)).To(Succeed())

			Eventually(readyCondition(ctx, etr)).Should(And(
				haveReason(metav1.ConditionFalse, reason), HaveField("Message", ContainSubstring(message))))
			settle(ctx, etr)
			Expect(calls()).To(BeNumerically("<=", 2), "retries back off instead of looping")
			Expect(secretVersions(Default)).To(Equal(before), "no Secret is created or changed")
			Expect(readyCondition(ctx, etr)(Default)).To(HaveField("Reason", reason))
			cur := get(ctx, etr).(*v1alpha1.EmbedTokenRequest)
			Expect(cur.Status.RenewAt).NotTo(BeNil(), "a retry is scheduled")
			Expect(cur.Status.TokenDigest).To(BeEmpty())
		},
		Entry("a credential Secret without the referenced key", func(ctx context.Context, f *fixture) (*v1alpha1.EmbedTokenRequest, func() int) {
			spec := f.providerSpec()
			spec.Qrvey.APIKeySecretRef.Key = "missing"
			f.createNamedProvider(ctx, "qrvey", spec)
			return f.request("fault", time.Hour), f.sim.CallCount
		}, v1alpha1.ReasonCredentialsNotFound, `has no key "missing"`),
		Entry("a signing key that is not PEM where the algorithm needs a private key", rs256([]byte("raw-shared-secret-not-a-pem-key")),
			v1alpha1.ReasonInvalidCredentials, "is not a PEM-encoded private key"),
		Entry("a signing key the size of a 16,384-bit RSA key",
			rs256(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: bytes.Repeat([]byte{0x30}, 9400)})),
			v1alpha1.ReasonInvalidCredentials, "larger than a 4096-bit RSA key"),
		Entry("a provider that does not exist", func(ctx context.Context, f *fixture) (*v1alpha1.EmbedTokenRequest, func() int) {
			return f.request("fault", time.Hour), f.sim.CallCount
		}, v1alpha1.ReasonProviderNotFound, "not found"),
		Entry("a provider of another vendor than the request's block", func(ctx context.Context, f *fixture) (*v1alpha1.EmbedTokenRequest, func() int) {
			v := newScriptedVendor(http.StatusOK, tokenBody("unused", time.Now().Add(time.Hour)))
			f.createNamedProvider(ctx, "qrvey", httpProviderSpec(v.srv.URL))
			return f.request("fault", time.Hour), v.callCount
		}, v1alpha1.ReasonVendorMismatch, "the request sets spec.qrvey but provider qrvey is a http provider"),
		Entry("a vendor answering 401", scripted(http.StatusUnauthorized, `{"message":"bad key"}`),
			v1alpha1.ReasonVendorUnauthorized, "vendor answered HTTP 401: bad key"),
		Entry("a vendor answering 403", scripted(http.StatusForbidden, `{"message":"not allowed"}`),
			v1alpha1.ReasonVendorUnauthorized, "vendor answered HTTP 403: not allowed"),
		Entry("a vendor answering 404", scripted(http.StatusNotFound, `{"message":"no such endpoint"}`),
			v1alpha1.ReasonVendorRejected, "vendor answered HTTP 404: no such endpoint"),
		Entry("a response without a token", func(ctx context.Context, f *fixture) (*v1alpha1.EmbedTokenRequest, func() int) {
			f.createProvider(ctx)
			f.sim.SetFault(vendorsim.Fault{EmptyToken: true})
			return f.request("fault", time.Hour), f.sim.CallCount
		}, v1alpha1.ReasonInvalidResponse, "qrvey response has no token"),
		Entry("an expiry already in the past", scripted(http.StatusOK, tokenBody("stale-token", time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))),
			v1alpha1.ReasonInvalidResponse, "expires at 2001-01-01T00:00:00Z, which is not in the future"),
		Entry("a vendor token larger than 64 KiB", func(ctx context.Context, f *fixture) (*v1alpha1.EmbedTokenRequest, func() int) {
			v := newScriptedVendor(http.StatusOK, `{"token":"`+strings.Repeat("x", 100<<10)+`"}`)
			spec := f.providerSpec()
			spec.Qrvey.URL = v.srv.URL
			f.createNamedProvider(ctx, "qrvey", spec)
			return f.request("fault", time.Hour), v.callCount
		}, v1alpha1.ReasonInvalidResponse, "the vendor's token is 102400 bytes, more than the 65536 bytes"),
		Entry("a placeholder expiry in the year 9000, beyond the default maxLifetime of 24h",
			scripted(http.StatusOK, tokenBody("forever-token", time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC))),
			v1alpha1.ReasonLifetimeExceedsMax, "the vendor issued a token valid until 9000-01-01T00:00:00Z, longer than provider scripted's maxLifetime of 24h"),
		Entry("a response larger than the limit", scripted(http.StatusOK, `{"token":"`+strings.Repeat("x", provider.MaxResponseBytes)+`"}`),
			v1alpha1.ReasonInvalidResponse, "vendor response is larger than 1048576 bytes"),
	)

	It("caps an expiry further away than the operator trusts, within a long maxLifetime, warns, and renews on the capped schedule", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		f.createCredentials(ctx)
		v := newScriptedVendor(http.StatusOK, tokenBody("far-future-token", time.Now().Add(20*24*time.Hour)))
		spec := httpProviderSpec(v.srv.URL)
		spec.MaxLifetime = &metav1.Duration{Duration: 30 * 24 * time.Hour}
		f.createNamedProvider(ctx, "scripted", spec)
		etr := f.httpRequest("far", "scripted", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())

		waitForToken(ctx, etr, "")
		want := time.Now().Add(issuance.MaxTrustedLifetime)
		s := secretOf(ctx, etr)(Default)
		expiresAt, err := time.Parse(time.RFC3339, string(s.Data[v1alpha1.SecretExpiresAtKey]))
		Expect(err).NotTo(HaveOccurred())
		Expect(expiresAt).To(BeTemporally("~", want, 10*time.Second), "the recorded expiry is capped")
		cur := get(ctx, etr).(*v1alpha1.EmbedTokenRequest)
		Expect(cur.Status.ExpiresAt.Time).To(BeTemporally("==", expiresAt))
		Expect(cur.Status.RenewAt.Time).To(BeTemporally("<", expiresAt))
		Expect(readyCondition(ctx, etr)(Default)).To(haveReason(metav1.ConditionTrue, v1alpha1.ReasonTokenIssued))
		Eventually(func() []string { return eventReasons(ctx, etr) }).Should(ContainElement(v1alpha1.ReasonTokenExpiryCapped))
		settle(ctx, etr)
		Expect(v.callCount()).To(Equal(1))
	})
})

// failedCallTimes are the times of the vendor calls for user that got no token.
func (f *fixture) failedCallTimes(name string) []time.Time {
	var times []time.Time
	for _, c := range f.sim.Calls() {
		if c.Body["userid"] == "user-"+name && c.Token == "" {
			times = append(times, c.Time)
		}
	}
	return times
}

var _ = Describe("Vendor outages", func() {
	DescribeTable("shorter than the token's remaining life: the old token stays, retries back off, recovery refreshes at the next step",
		func(fault vendorsim.Fault, minGap time.Duration) {
			ctx := context.Background()
			f, etr, token, expiry := startVendorOutage(ctx, fault)

			By("keeping the old token, never expired, in the Secret while the refresh is retried during the outage")
			Eventually(func(g Gomega) {
				g.Expect(len(f.failedCallTimes("brief"))).To(BeNumerically(">=", 2), "the refresh is retried during the outage")
				g.Expect(get(ctx, etr.DeepCopy()).(*v1alpha1.EmbedTokenRequest).Status.FailedAttempts).To(BeNumerically(">=", 2))
			}).Should(Succeed())
			expectOutageRidden(ctx, etr, token, time.Now())

			By("retrying with backoff, not in a loop")
			failed := f.failedCallTimes("brief")
			Expect(len(failed)).To(BeNumerically(">=", 2), "the refresh is retried during the outage")
			Expect(len(failed)).To(BeNumerically("<=", 5), "retries back off")
			for i := 1; i < len(failed); i++ {
				Expect(failed[i].Sub(failed[i-1])).To(BeNumerically(">=", minGap), "gap between retries %d and %d", i-1, i)
			}

			By("refreshing at the next scheduled retry once the vendor recovers")
			retryAt := get(ctx, etr.DeepCopy()).(*v1alpha1.EmbedTokenRequest).Status.RenewAt.Time
			recovered := time.Now()
			f.sim.ClearFault()
			expectRefreshedAfterOutage(ctx, etr, token, retryAt, recovered, expiry)
		},
		Entry("503 with Retry-After: retries wait at least Retry-After", slowSpec,
			vendorsim.Fault{Status: http.StatusServiceUnavailable, RetryAfter: 6 * time.Second}, 5*time.Second),
	)

	// The manager's clock drives these: it moves to each time the request
	// is due and a barrier makes the manager reconcile then. The entry above
	// watches the manager's own requeues back off and recover in real time.
	DescribeTable("shorter than the token's remaining life, on the manager's clock: the old token stays, retries back off, recovery refreshes at the next step",
		func(fault vendorsim.Fault, minGap time.Duration) {
			ctx := context.Background()
			clk := replaceWithClockedManager()
			f, etr, token, expiry := startVendorOutage(ctx, fault)
			status := func() v1alpha1.EmbedTokenRequestStatus {
				return get(ctx, etr.DeepCopy()).(*v1alpha1.EmbedTokenRequest).Status
			}

			By("failing at the renewal and at the retry after it, and not before the retry is due")
			// status.renewAt is kept to the second: a second past it is due.
			for attempt := int32(1); attempt <= 2; attempt++ {
				clk.SetTime(status().RenewAt.Add(time.Second))
				failedAt := clk.Now()
				settle(ctx, etr)
				Expect(status().FailedAttempts).To(Equal(attempt))
				retryAt := status().RenewAt.Time
				Expect(retryAt.Sub(failedAt)).To(BeNumerically(">=", minGap), "the retry is scheduled later")
				clk.SetTime(retryAt.Add(-time.Millisecond))
				settle(ctx, etr)
				Expect(f.callsFor("brief")()).To(Equal(1+int(attempt)), "retries back off instead of looping")
			}
			Expect(f.failedCallTimes("brief")).To(HaveLen(2))
			expectOutageRidden(ctx, etr, token, clk.Now())

			By("refreshing at the next scheduled retry once the vendor recovers")
			retryAt := status().RenewAt.Time
			recovered := clk.Now()
			f.sim.ClearFault()
			clk.SetTime(retryAt.Add(time.Second))
			settle(ctx, etr)
			expectRefreshedAfterOutage(ctx, etr, token, retryAt, recovered, expiry)
		},
		Entry("answers slower than the provider's timeout", vendorsim.Fault{Delay: 3 * time.Second}, time.Second),
		Entry("garbage instead of JSON", vendorsim.Fault{Garbage: true}, time.Second),
	)
})

// startVendorOutage issues a token the vendor grants for 30 s to a request
// named brief, whose renewal falls due 3.6-6 s after issue, through a
// provider that gives up on a call after 1 s, and then sets fault on the
// vendor. It returns the token and its expiry.
func startVendorOutage(ctx context.Context, fault vendorsim.Fault) (*fixture, *v1alpha1.EmbedTokenRequest, string, time.Time) {
	f := newFixture(ctx)
	f.createCredentials(ctx)
	spec := f.providerSpec()
	spec.Timeout = &metav1.Duration{Duration: time.Second}
	f.createNamedProvider(ctx, "qrvey", spec)
	etr, token, expiry := f.issueRenewing(ctx, "brief", 30*time.Second, 24*time.Second)
	f.sim.SetFault(fault)
	return f, etr, token, expiry
}

// issueRenewing creates a request named name whose vendor grants tokens
// for granted and which renews renewBefore their expiry, and returns it
// with its first token and that token's expiry.
func (f *fixture) issueRenewing(ctx context.Context, name string, granted, renewBefore time.Duration) (*v1alpha1.EmbedTokenRequest, string, time.Time) {
	f.grantOnly(granted)
	etr := f.request(name, time.Minute)
	etr.Spec.RenewBefore = &metav1.Duration{Duration: renewBefore}
	Expect(k8sClient.Create(ctx, etr)).To(Succeed())
	token := waitForToken(ctx, etr, "")
	return etr, token, get(ctx, etr).(*v1alpha1.EmbedTokenRequest).Status.ExpiresAt.Time
}

// expectOutageRidden asserts what a request whose refresh failed at least
// twice shows at now: the old token, not yet expired, still in its Secret
// and Ready still True, naming the failure.
func expectOutageRidden(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, token string, now time.Time) {
	GinkgoHelper()
	s := secretOf(ctx, etr)(Default)
	Expect(string(s.Data[v1alpha1.SecretTokenKey])).To(Equal(token))
	at, err := time.Parse(time.RFC3339, string(s.Data[v1alpha1.SecretExpiresAtKey]))
	Expect(err).NotTo(HaveOccurred())
	Expect(at).To(BeTemporally(">", now), "a consumer would read an expired token")
	cur := get(ctx, etr.DeepCopy()).(*v1alpha1.EmbedTokenRequest)
	ready := readyCondition(ctx, etr)(Default)
	Expect(ready.Status).To(Equal(metav1.ConditionTrue), "the stored token is still valid")
	Expect(ready.Reason).To(BeElementOf(v1alpha1.ReasonVendorUnavailable, v1alpha1.ReasonInvalidResponse))
	Expect(ready.Message).To(ContainSubstring("Refresh failed"))
	Expect(cur.Status.FailedAttempts).To(BeNumerically(">=", 2))
}

// expectRefreshedAfterOutage waits for the token that replaces token and
// asserts it was issued at the retry scheduled for retryAt, after the
// vendor recovered and before the old token's expiry, ending the failure.
func expectRefreshedAfterOutage(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, token string, retryAt, recovered, expiry time.Time) {
	GinkgoHelper()
	waitForToken(ctx, etr, provider.Digest(token))
	cur := get(ctx, etr.DeepCopy()).(*v1alpha1.EmbedTokenRequest)
	Expect(cur.Status.IssuedAt.Time).To(BeTemporally("<=", retryAt.Add(2*time.Second)), "within one backoff step")
	Expect(cur.Status.IssuedAt.Time).To(BeTemporally(">=", recovered.Truncate(time.Second)))
	Expect(cur.Status.IssuedAt.Time).To(BeTemporally("<", expiry), "before the old token expired")
	Expect(cur.Status.FailedAttempts).To(BeZero())
	Expect(readyCondition(ctx, etr)(Default)).To(haveReason(metav1.ConditionTrue, v1alpha1.ReasonTokenRefreshed))
}

var _ = Describe("API server outages", func() {
	It("retries a refresh it could not store often enough to store it before the old token expires", slowSpec, func() {
		ctx := context.Background()
		f, outage := withOutage(ctx)

		// The vendor grants 30 s and the token falls due 15-17.5 s before
		// it expires (renewBefore, its jitter and whole seconds).
		etr, token, expiry := f.issueRenewing(ctx, "outage", 30*time.Second, 15*time.Second)

		By("failing every write in the namespace from before the renewal until 4 s before expiry")
		// Retries that only doubled from the renewal would fall about 5 s
		// and 15 s after this window ends: the second is too late, and the
		// first is still inside the window when the renewal came late.
		outage.start()
		time.Sleep(time.Until(expiry.Add(-4 * time.Second)))
		outage.end()
		retries := outage.refusedSecretWrites()
		Expect(retries).To(BeNumerically(">=", 2), "the refresh was retried during the outage")
		Expect(retries).To(BeNumerically("<=", 25), "retries back off")
		// Each retry stores the token the first attempt issued; only when
		// that one falls due itself before the outage ends (up to 1.5 s of
		// jitter earlier) does a retry ask for another.
		Expect(f.callsFor("outage")()-1).To(BeNumerically("<=", 2), "retries reuse the token they could not store")

		By("storing a new token before the old one expires")
		Eventually(func(g Gomega) string { return string(secretOf(ctx, etr)(g).Data[v1alpha1.SecretTokenKey]) }).
			WithTimeout(time.Until(expiry)).ShouldNot(Equal(token))
		waitForToken(ctx, etr, provider.Digest(token))
		Expect(readyCondition(ctx, etr)(Default)).To(haveReason(metav1.ConditionTrue, v1alpha1.ReasonTokenRefreshed))
	})

	It("stores the token a refused write left unstored, without asking the vendor again", func() {
		ctx := context.Background()
		f, outage := withOutage(ctx)

		By("refusing every write in the namespace while the first token is issued")
		outage.start()
		etr := f.request("held", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		Eventually(outage.refusedSecretWrites).Should(BeNumerically(">=", 3), "the Secret create was retried")
		outage.end()

		By("storing the one token the vendor issued")
		token := waitForToken(ctx, etr, "")
		Expect(f.callsFor("held")()).To(Equal(1), "one vendor call for the first token, however many writes failed")
		Expect(f.sim.Calls()).To(ContainElement(HaveField("Token", token)), "the stored token is the one the vendor issued")
		Expect(readyCondition(ctx, etr)(Default)).To(haveReason(metav1.ConditionTrue, v1alpha1.ReasonTokenIssued))
		settle(ctx, etr)
		Expect(f.callsFor("held")()).To(Equal(1))
	})
})

// withOutage replaces the suite's manager, for the current spec, by one
// whose writes to a new fixture's namespace fail while the outage is on.
func withOutage(ctx context.Context) (*fixture, *apiOutage) {
	f := newFixtureWithProvider(ctx)
	outage := &apiOutage{namespace: f.ns}
	stopMgr()
	DeferCleanup(func() { stopMgr = startManager() })
	restCfg := rest.CopyConfig(cfg)
	restCfg.Wrap(outage.wrap)
	DeferCleanup(startOperator(restCfg, logr.Logger{}, 0, operatorOptions()))
	return f, outage
}

// apiOutage makes every write to one namespace fail as a connection to an
// API server that is down does, while reads and watches go on, so one
// spec's manager meets an outage no other namespace sees.
type apiOutage struct {
	namespace      string
	on             atomic.Bool
	secretRefusals atomic.Int64
}

func (o *apiOutage) start() { o.on.Store(true) }
func (o *apiOutage) end()   { o.on.Store(false) }

// refusedSecretWrites counts refused Secret writes: one per attempt to store
// a token.
func (o *apiOutage) refusedSecretWrites() int64 { return o.secretRefusals.Load() }

func (o *apiOutage) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		if o.on.Load() && r.Method != http.MethodGet && strings.Contains(r.URL.Path, "/namespaces/"+o.namespace+"/") {
			if strings.Contains(r.URL.Path, "/secrets") {
				o.secretRefusals.Add(1)
			}
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		}
		return next.RoundTrip(r)
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
