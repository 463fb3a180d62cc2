package controller_test

import (
	"context"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

const apiKey = "test-api-key-0f9e8d"

// fixture is one namespace with its own vendor simulator, credential Secret
// and Qrvey provider (harness.QrveyFixture), so faults injected by one spec
// never reach another.
type fixture struct {
	ns    string
	sim   *vendorsim.Server
	qrvey harness.QrveyFixture
}

func newFixture(ctx context.Context) *fixture {
	f := &fixture{ns: "t-" + rand.String(6), sim: vendorsim.New(vendorsim.Options{QrveyAPIKey: apiKey})}
	Expect(f.sim.Start()).To(Succeed())
	DeferCleanup(f.sim.Close)
	f.qrvey = harness.QrveyFixture{Namespace: f.ns, Provider: "qrvey", SimURL: f.sim.URL(), APIKey: apiKey}
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}})).To(Succeed())
	return f
}

// newFixtureWithProvider adds the credential Secret and a working provider.
func newFixtureWithProvider(ctx context.Context) *fixture {
	f := newFixture(ctx)
	f.createCredentials(ctx)
	f.createProvider(ctx)
	// A provider's first status (with its credentialsVersion) is written by
	// another controller; waiting for it keeps specs about a request's own
	// writes from counting the one that records it on the Secret.
	Eventually(func() string {
		p := get(ctx, &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "qrvey"}})
		return p.(*v1alpha1.EmbedProvider).Status.CredentialsVersion
	}).ShouldNot(BeEmpty())
	return f
}

func (f *fixture) createCredentials(ctx context.Context) {
	Expect(k8sClient.Create(ctx, f.qrvey.Credentials())).To(Succeed())
}

func (f *fixture) providerSpec() v1alpha1.EmbedProviderSpec { return f.qrvey.ProviderSpec() }

func (f *fixture) createProvider(ctx context.Context) {
	Expect(k8sClient.Create(ctx, f.qrvey.EmbedProvider())).To(Succeed())
}

func (f *fixture) request(name string, lifetime time.Duration) *v1alpha1.EmbedTokenRequest {
	return f.qrvey.Request(name, lifetime)
}

// callsFor counts vendor calls made for one request's user.
func (f *fixture) callsFor(name string) func() int {
	return func() int {
		n := 0
		for _, c := range f.sim.Calls() {
			if c.Body["userid"] == f.qrvey.UserID(name) {
				n++
			}
		}
		return n
	}
}

func get(ctx context.Context, obj client.Object) client.Object {
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
	return obj
}

func secretOf(ctx context.Context, etr *v1alpha1.EmbedTokenRequest) func(g Gomega) *corev1.Secret {
	return func(g Gomega) *corev1.Secret {
		s := &corev1.Secret{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: etr.Namespace, Name: etr.TargetSecretName()}, s)).To(Succeed())
		return s
	}
}

func readyCondition(ctx context.Context, etr *v1alpha1.EmbedTokenRequest) func(g Gomega) metav1.Condition {
	return func(g Gomega) metav1.Condition {
		cur := &v1alpha1.EmbedTokenRequest{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(etr), cur)).To(Succeed())
		c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		return *c
	}
}

func haveReason(status metav1.ConditionStatus, reason string) OmegaMatcher {
	return And(HaveField("Status", status), HaveField("Reason", reason))
}

// waitForToken waits for a token whose digest differs from previous and
// returns it.
func waitForToken(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, previous string) string {
	var token harness.Token
	Eventually(func(g Gomega) {
		token = harness.TokenOf(secretOf(ctx, etr)(g))
		g.Expect(token.Value).NotTo(BeEmpty())
		g.Expect(token.Digest()).NotTo(Equal(previous))
		cur := get(ctx, etr.DeepCopy()).(*v1alpha1.EmbedTokenRequest)
		g.Expect(cur.Status.TokenDigest).To(Equal(token.Digest()))
	}).Should(Succeed())
	return token.Value
}

func eventReasons(ctx context.Context, etr *v1alpha1.EmbedTokenRequest) []string {
	var list eventsv1.EventList
	Expect(k8sClient.List(ctx, &list, client.InNamespace(etr.Namespace))).To(Succeed())
	var reasons []string
	for _, e := range list.Items {
		if e.Regarding.Name == etr.Name {
			reasons = append(reasons, e.Reason)
		}
	}
	return reasons
}

var _ = Describe("EmbedTokenRequest", func() {
	var (
		ctx context.Context
		f   *fixture
	)
	BeforeEach(func() {
		ctx = context.Background()
		f = newFixtureWithProvider(ctx)
	})

	It("issues a token into an owned Secret and reports it in the status", func() {
		etr := f.request("dash", time.Hour)
		etr.Spec.SecretLabels = map[string]string{"team": "sales"}
		etr.Spec.SecretAnnotations = map[string]string{"note": "embed"}
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())

		token := waitForToken(ctx, etr, "")
		Expect(f.sim.Validate(token)).To(Equal(vendorsim.ValidityValid))
		s := secretOf(ctx, etr)(Default)
		get(ctx, etr)

		By("writing the documented Secret layout")
		expiresAt, err := time.Parse(time.RFC3339, string(s.Data[v1alpha1.SecretExpiresAtKey]))
		Expect(err).NotTo(HaveOccurred())
		Expect(expiresAt).To(BeTemporally("~", time.Now().Add(time.Hour), 10*time.Second))
		Expect(s.Labels).To(HaveKeyWithValue(v1alpha1.ManagedByLabel, v1alpha1.ManagedByValue))
		Expect(s.Labels).To(HaveKeyWithValue("team", "sales"))
		Expect(s.Annotations).To(HaveKeyWithValue("note", "embed"))
		Expect(s.Annotations).To(HaveKeyWithValue(v1alpha1.ExpiresAtAnnotation, expiresAt.UTC().Format(time.RFC3339)))
		Expect(s.Annotations).To(HaveKey(v1alpha1.IssuedAtAnnotation))

		By("owning the Secret, so it is deleted with the request")
		owner := metav1.GetControllerOf(s)
		Expect(owner).NotTo(BeNil())
		Expect(owner.UID).To(Equal(etr.UID))
		Expect(owner.Kind).To(Equal("EmbedTokenRequest"))
		Expect(*owner.BlockOwnerDeletion).To(BeTrue())

		By("reporting validity without revealing the token")
		st := etr.Status
		Expect(st.SecretName).To(Equal("dash"))
		Expect(st.ObservedGeneration).To(Equal(etr.Generation))
		Expect(st.ExpiresAt.Time).To(BeTemporally("==", expiresAt))
		Expect(st.RenewAt.Time).To(BeTemporally("<", expiresAt.Add(-19*time.Minute)))
		Expect(st.TokenDigest).To(HaveLen(12))
		Expect(fmt.Sprintf("%+v", st)).NotTo(ContainSubstring(token))
		Expect(readyCondition(ctx, etr)(Default)).To(haveReason(metav1.ConditionTrue, v1alpha1.ReasonTokenIssued))
		Expect(meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReconciling)).To(BeNil())
		Expect(meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionStalled)).To(BeNil())
		Eventually(func() []string { return eventReasons(ctx, etr) }).Should(ContainElement(v1alpha1.ReasonTokenIssued))

		By("sending the Qrvey wire format")
		calls := f.sim.Calls()
		Expect(calls).To(HaveLen(1))
		Expect(calls[0].Body).To(HaveKeyWithValue("appid", "app-1"))
		Expect(calls[0].Body).To(HaveKeyWithValue("expiresIn", "60m"))

		By("making no vendor calls and no API writes while the token is fresh")
		secretRV, etrRV := s.ResourceVersion, etr.ResourceVersion
		Consistently(func(g Gomega) {
			g.Expect(f.sim.CallCount()).To(Equal(1))
			g.Expect(secretOf(ctx, etr)(g).ResourceVersion).To(Equal(secretRV))
			g.Expect(get(ctx, etr.DeepCopy()).GetResourceVersion()).To(Equal(etrRV))
		}).Should(Succeed())
	})

	It("refreshes in place before expiry, once per token", func() {
		etr := f.request("short", 9*time.Second)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		token := waitForToken(ctx, etr, "")
		uid := secretOf(ctx, etr)(Default).UID

		for cycle := range 3 {
			expiresAt := get(ctx, etr).(*v1alpha1.EmbedTokenRequest).Status.ExpiresAt.Time
			next := waitForToken(ctx, etr, provider.Digest(token))
			cur := get(ctx, etr).(*v1alpha1.EmbedTokenRequest)
			Expect(cur.Status.IssuedAt.Time).To(BeTemporally("<", expiresAt), "cycle %d renewed after expiry", cycle)
			Expect(f.sim.Validate(next)).To(Equal(vendorsim.ValidityValid))
			Expect(secretOf(ctx, etr)(Default).UID).To(Equal(uid), "the Secret is updated in place")
			token = next
		}
		Expect(f.callsFor("short")()).To(BeNumerically("<=", 4+1)) // one call per token, one more may be in flight
		Expect(readyCondition(ctx, etr)(Default)).To(haveReason(metav1.ConditionTrue, v1alpha1.ReasonTokenRefreshed))
		By("emitting one TokenRefreshed Event, when Ready became TokenRefreshed, not one per renewal")
		refreshEvents := func() []string {
			var refreshed []string
			for _, reason := range eventReasons(ctx, etr) {
				if reason == v1alpha1.ReasonTokenRefreshed {
					refreshed = append(refreshed, reason)
				}
			}
			return refreshed
		}
		Eventually(refreshEvents).Should(HaveLen(1))
		Consistently(refreshEvents).WithTimeout(2 * time.Second).Should(HaveLen(1))
	})

	It("does not mint a new token when the manager restarts", func() {
		etr := f.request("restart", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		token := waitForToken(ctx, etr, "")

		stopMgr()
		stopMgr = startManager()
		Consistently(func(g Gomega) {
			g.Expect(f.callsFor("restart")()).To(Equal(1))
			g.Expect(string(secretOf(ctx, etr)(g).Data[v1alpha1.SecretTokenKey])).To(Equal(token))
		}, 3*time.Second).Should(Succeed())
	})

	It("issues exactly one new token when the refresh annotation changes", func() {
		etr := f.request("forced", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		token := waitForToken(ctx, etr, "")

		get(ctx, etr)
		patch := client.MergeFrom(etr.DeepCopy())
		etr.Annotations = map[string]string{v1alpha1.RefreshAnnotation: "2026-11-21T10:00:00Z"}
		Expect(k8sClient.Patch(ctx, etr, patch)).To(Succeed())

		waitForToken(ctx, etr, provider.Digest(token))
		Consistently(f.callsFor("forced")).Should(Equal(2))
		Expect(get(ctx, etr).(*v1alpha1.EmbedTokenRequest).Status.LastHandledRefresh).To(Equal("2026-11-21T10:00:00Z"))
	})

	It("makes no vendor calls while suspended and keeps the Secret", func() {
		etr := f.request("paused", 4*time.Second)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		token := waitForToken(ctx, etr, "")

		get(ctx, etr)
		patch := client.MergeFrom(etr.DeepCopy())
		etr.Spec.Suspend = true
		Expect(k8sClient.Patch(ctx, etr, patch)).To(Succeed())
		Eventually(readyCondition(ctx, etr)).Should(HaveField("Reason", v1alpha1.ReasonSuspended))
		calls := f.callsFor("paused")()

		Consistently(func(g Gomega) {
			g.Expect(f.callsFor("paused")()).To(Equal(calls))
			g.Expect(string(secretOf(ctx, etr)(g).Data[v1alpha1.SecretTokenKey])).NotTo(BeEmpty())
		}, 5*time.Second).Should(Succeed())
		Expect(get(ctx, etr).(*v1alpha1.EmbedTokenRequest).Status.RenewAt).To(BeNil())

		get(ctx, etr)
		patch = client.MergeFrom(etr.DeepCopy())
		etr.Spec.Suspend = false
		Expect(k8sClient.Patch(ctx, etr, patch)).To(Succeed())
		waitForToken(ctx, etr, provider.Digest(token))
	})

	It("leaves a Secret it does not own untouched and reports SecretConflict", func() {
		foreign := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "taken", Labels: map[string]string{"owner": "someone"}},
			Data:       map[string][]byte{"token": []byte("not-ours")},
		}
		Expect(k8sClient.Create(ctx, foreign)).To(Succeed())
		before := get(ctx, foreign.DeepCopy()).(*corev1.Secret)

		etr := f.request("conflict", time.Hour)
		etr.Spec.SecretName = "taken"
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())

		Eventually(readyCondition(ctx, etr)).Should(And(
			haveReason(metav1.ConditionFalse, v1alpha1.ReasonSecretConflict),
			HaveField("Message", ContainSubstring(f.ns+"/taken"))))
		cur := get(ctx, etr).(*v1alpha1.EmbedTokenRequest)
		Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, v1alpha1.ConditionStalled)).To(BeTrue())
		Expect(f.sim.CallCount()).To(Equal(0), "no vendor call is spent on a request that cannot store its token")
		after := get(ctx, foreign.DeepCopy()).(*corev1.Secret)
		Expect(after.ResourceVersion).To(Equal(before.ResourceVersion))
		Expect(after.Data).To(Equal(before.Data))
		Expect(after.Labels).To(Equal(before.Labels))
		Expect(after.OwnerReferences).To(BeEmpty())
	})

	It("reports a second request for the same Secret name as a conflict and keeps the first working", func() {
		first := f.request("first", time.Hour)
		first.Spec.SecretName = "shared"
		Expect(k8sClient.Create(ctx, first)).To(Succeed())
		token := waitForToken(ctx, first, "")

		second := f.request("second", time.Hour)
		second.Spec.SecretName = "shared"
		Expect(k8sClient.Create(ctx, second)).To(Succeed())
		Eventually(readyCondition(ctx, second)).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonSecretConflict))
		Expect(string(secretOf(ctx, first)(Default).Data[v1alpha1.SecretTokenKey])).To(Equal(token))
		Expect(readyCondition(ctx, first)(Default)).To(HaveField("Status", metav1.ConditionTrue))
	})

	It("reports missing credentials and recovers when they appear", func() {
		g := newFixture(ctx)
		g.createProvider(ctx)
		etr := g.request("nocreds", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())

		Eventually(readyCondition(ctx, etr)).Should(And(
			haveReason(metav1.ConditionFalse, v1alpha1.ReasonCredentialsNotFound),
			HaveField("Message", ContainSubstring(g.ns+"/qrvey-credentials"))))
		Expect(g.sim.CallCount()).To(BeZero())
		Eventually(func(gm Gomega) {
			p := &v1alpha1.EmbedProvider{}
			gm.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: g.ns, Name: "qrvey"}, p)).To(Succeed())
			gm.Expect(meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)).To(
				HaveValue(haveReason(metav1.ConditionFalse, v1alpha1.ReasonCredentialsNotFound)))
		}).Should(Succeed())

		g.createCredentials(ctx)
		waitForToken(ctx, etr, "")
		Expect(readyCondition(ctx, etr)(Default)).To(haveReason(metav1.ConditionTrue, v1alpha1.ReasonTokenIssued))
	})

	It("backs off on vendor errors, keeps the last token and recovers", func() {
		etr := f.request("outage", 12*time.Second)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		token := waitForToken(ctx, etr, "")
		f.sim.SetFault(vendorsim.Fault{Status: 500})

		Eventually(func(g Gomega) {
			cur := get(ctx, etr.DeepCopy()).(*v1alpha1.EmbedTokenRequest)
			g.Expect(cur.Status.FailedAttempts).To(BeNumerically(">=", 2))
			c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionReady)
			g.Expect(c.Reason).To(Equal(v1alpha1.ReasonVendorUnavailable))
			g.Expect(c.Message).To(ContainSubstring("HTTP 500"))
			g.Expect(c.Message).NotTo(ContainSubstring(token))
			g.Expect(cur.Status.LastFailure).To(HaveValue(And(HaveField("Reason", v1alpha1.ReasonVendorUnavailable),
				HaveField("Message", ContainSubstring("HTTP 500")))))
		}).Should(Succeed())
		Expect(string(secretOf(ctx, etr)(Default).Data[v1alpha1.SecretTokenKey])).To(Equal(token), "the last valid token is kept")
		Expect(f.callsFor("outage")()).To(BeNumerically("<=", 6), "retries back off instead of looping")

		f.sim.ClearFault()
		waitForToken(ctx, etr, provider.Digest(token))
		cur := get(ctx, etr).(*v1alpha1.EmbedTokenRequest)
		Expect(cur.Status.FailedAttempts).To(BeZero())
		Expect(readyCondition(ctx, etr)(Default)).To(HaveField("Status", metav1.ConditionTrue))
	})

	It("reports a token that expired during an outage and recovers without help", func() {
		etr := f.request("expired", 3*time.Second)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		token := waitForToken(ctx, etr, "")
		f.sim.SetFault(vendorsim.Fault{Status: 503, RetryAfter: time.Second})

		Eventually(readyCondition(ctx, etr)).Should(And(haveReason(metav1.ConditionFalse, v1alpha1.ReasonTokenExpired),
			HaveField("Message", ContainSubstring("HTTP 503")), HaveField("Message", ContainSubstring("refreshing it failed"))))
		Expect(string(secretOf(ctx, etr)(Default).Data[v1alpha1.SecretTokenKey])).To(Equal(token))
		Eventually(func() []string { return eventReasons(ctx, etr) }).Should(ContainElement(v1alpha1.ReasonTokenExpired))

		f.sim.ClearFault()
		waitForToken(ctx, etr, provider.Digest(token))
		Eventually(readyCondition(ctx, etr)).Should(HaveField("Status", metav1.ConditionTrue))
	})

	It("stalls on rejected credentials without retrying quickly", func() {
		g := newFixture(ctx)
		Expect(k8sClient.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: g.ns, Name: "qrvey-credentials"},
			Data:       map[string][]byte{"apiKey": []byte("wrong-key")},
		})).To(Succeed())
		g.createProvider(ctx)
		etr := g.request("denied", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())

		Eventually(readyCondition(ctx, etr)).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonVendorUnauthorized))
		cur := get(ctx, etr).(*v1alpha1.EmbedTokenRequest)
		Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, v1alpha1.ConditionStalled)).To(BeTrue())
		Expect(cur.Status.RenewAt.Time).To(BeTemporally(">", time.Now().Add(time.Minute)))
		Expect(readyMessageOf(cur)).NotTo(ContainSubstring("wrong-key"))
		Consistently(g.callsFor("denied")).Should(Equal(1))
	})

	It("reports a request whose block does not match its provider's vendor", func() {
		etr := f.request("mismatch", time.Hour)
		Expect(k8sClient.Create(ctx, &v1alpha1.EmbedProvider{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "other"},
			Spec: v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{HTTP: &v1alpha1.HTTPProvider{
				URL: "https://vendor.example.com/token", TokenPath: ".token", ExpiresInPath: ".expires_in"}}},
		})).To(Succeed())
		etr.Spec.ProviderRef.Name = "other"
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		Eventually(readyCondition(ctx, etr)).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonVendorMismatch))
	})

	It("reports a missing provider and recovers when it is created", func() {
		etr := f.request("noprov", time.Hour)
		etr.Spec.ProviderRef.Name = "later"
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		Eventually(readyCondition(ctx, etr)).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonProviderNotFound))

		Expect(k8sClient.Create(ctx, &v1alpha1.EmbedProvider{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "later"}, Spec: f.providerSpec(),
		})).To(Succeed())
		waitForToken(ctx, etr, "")
	})

	It("deletes the Secret with the request through its owner reference", func() {
		etr := f.request("gone", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		waitForToken(ctx, etr, "")
		s := secretOf(ctx, etr)(Default)
		// envtest runs no garbage collector: assert the reference it acts on.
		Expect(s.OwnerReferences).To(ConsistOf(HaveField("UID", etr.UID)))
		Expect(*s.OwnerReferences[0].Controller).To(BeTrue())
		Expect(k8sClient.Delete(ctx, etr)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(etr), &v1alpha1.EmbedTokenRequest{}))
		}).Should(BeTrue())
	})
})

func readyMessageOf(etr *v1alpha1.EmbedTokenRequest) string {
	if c := meta.FindStatusCondition(etr.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		return c.Message
	}
	return ""
}

var _ = Describe("Credentials and providers", func() {
	var (
		ctx context.Context
		f   *fixture
	)
	BeforeEach(func() {
		ctx = context.Background()
		f = newFixtureWithProvider(ctx)
	})

	It("re-issues tokens when a credential Secret is rotated", func() {
		etr := f.request("rotate", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		token := waitForToken(ctx, etr, "")
		Eventually(func(g Gomega) {
			g.Expect(secretOf(ctx, etr)(g).Annotations).To(HaveKey(v1alpha1.CredentialsVersionAnnotation))
		}).Should(Succeed())
		Consistently(f.callsFor("rotate")).Should(Equal(1))

		creds := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "qrvey-credentials"}, creds)).To(Succeed())
		creds.Data["apiKey"] = []byte(apiKey) // same key, new version: a rotation to an equal value
		creds.Labels = map[string]string{"rotated": "yes"}
		Expect(k8sClient.Update(ctx, creds)).To(Succeed())

		waitForToken(ctx, etr, provider.Digest(token))
		Consistently(f.callsFor("rotate")).Should(Equal(2))
	})

	It("keeps tokens when the provider opts out of re-issuing on rotation", func() {
		p := &v1alpha1.EmbedProvider{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "qrvey"}, p)).To(Succeed())
		patch := client.MergeFrom(p.DeepCopy())
		p.Spec.ReissueOnCredentialChange = ptr.To(false)
		Expect(k8sClient.Patch(ctx, p, patch)).To(Succeed())
		etr := f.request("keep", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		waitForToken(ctx, etr, "")

		creds := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "qrvey-credentials"}, creds)).To(Succeed())
		creds.Labels = map[string]string{"rotated": "yes"}
		Expect(k8sClient.Update(ctx, creds)).To(Succeed())
		Consistently(f.callsFor("keep"), 3*time.Second).Should(Equal(1))
	})

	It("lets a ClusterEmbedProvider serve only the namespaces its selector admits", func() {
		spec := f.providerSpec()
		spec.Qrvey.APIKeySecretRef.Namespace = f.ns
		cp := &v1alpha1.ClusterEmbedProvider{
			ObjectMeta: metav1.ObjectMeta{Name: "shared-" + f.ns},
			Spec: v1alpha1.ClusterEmbedProviderSpec{EmbedProviderSpec: spec,
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"embed": f.ns}}},
		}
		Expect(k8sClient.Create(ctx, cp)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, cp)).To(Succeed()) })

		allowed := newFixture(ctx)
		ns := &corev1.Namespace{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: allowed.ns}, ns)).To(Succeed())
		ns.Labels["embed"] = f.ns
		Expect(k8sClient.Update(ctx, ns)).To(Succeed())
		denied := newFixture(ctx)

		for _, g := range []*fixture{allowed, denied} {
			etr := g.request("cluster", time.Hour)
			etr.Spec.ProviderRef = v1alpha1.ProviderRef{Kind: "ClusterEmbedProvider", Name: cp.Name}
			Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		}
		waitForToken(ctx, &v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: allowed.ns, Name: "cluster"}}, "")
		deniedETR := &v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: denied.ns, Name: "cluster"}}
		Eventually(readyCondition(ctx, deniedETR)).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonNamespaceNotAllowed))
		Expect(f.callsFor("cluster")()).To(Equal(1), "only the admitted namespace's request reached the vendor")
	})

	It("never lets an EmbedProvider read a Secret in another namespace", func() {
		other := newFixture(ctx)
		other.createCredentials(ctx)
		spec := f.providerSpec()
		spec.Qrvey.APIKeySecretRef.Namespace = other.ns
		Expect(k8sClient.Create(ctx, &v1alpha1.EmbedProvider{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "sneaky"}, Spec: spec,
		})).To(Succeed())
		etr := f.request("sneaky", time.Hour)
		etr.Spec.ProviderRef.Name = "sneaky"
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())

		Eventually(readyCondition(ctx, etr)).Should(And(
			haveReason(metav1.ConditionFalse, v1alpha1.ReasonProviderInvalid),
			HaveField("Message", ContainSubstring("own namespace"))))
		Expect(f.sim.CallCount()).To(BeZero())
	})
})

var _ = Describe("Other vendors", func() {
	It("stores a locally signed JWT from a jwt provider, with no vendor-specific controller code", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		key := []byte("0123456789abcdef0123456789abcdef")
		Expect(k8sClient.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "signing"}, Data: map[string][]byte{"key": key},
		})).To(Succeed())
		Expect(k8sClient.Create(ctx, &v1alpha1.EmbedProvider{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "tableau"},
			Spec: v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{JWT: &v1alpha1.JWTProvider{
				Algorithm: "HS256", SigningKeySecretRef: v1alpha1.SecretKeySelector{Name: "signing", Key: "key"},
				Issuer: "client-id", Audience: "tableau", KeyID: "secret-id",
				MaxLifetime: &metav1.Duration{Duration: 10 * time.Minute},
			}}},
		})).To(Succeed())
		etr := &v1alpha1.EmbedTokenRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "viz"},
			Spec: v1alpha1.EmbedTokenRequestSpec{
				ProviderRef:  v1alpha1.ProviderRef{Name: "tableau"},
				VendorParams: v1alpha1.VendorParams{JWT: &v1alpha1.JWTParams{Subject: "alice@example.com"}},
				Lifetime:     &metav1.Duration{Duration: time.Hour},
			},
		}
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		token := waitForToken(ctx, etr, "")

		claims := jwt.MapClaims{}
		parsed, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return key, nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithAudience("tableau"), jwt.WithIssuer("client-id"))
		Expect(err).NotTo(HaveOccurred())
		Expect(parsed.Header["kid"]).To(Equal("secret-id"))
		Expect(claims["sub"]).To(Equal("alice@example.com"))
		exp, err := claims.GetExpirationTime()
		Expect(err).NotTo(HaveOccurred())
		Expect(exp.Time).To(BeTemporally("~", time.Now().Add(10*time.Minute), 5*time.Second), "maxLifetime caps the hour requested")
		Expect(string(secretOf(ctx, etr)(Default).Data[v1alpha1.SecretExpiresAtKey])).To(Equal(exp.UTC().Format(time.RFC3339)))
		Eventually(func(g Gomega) {
			p := &v1alpha1.EmbedProvider{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "tableau"}, p)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())
		}).Should(Succeed())
	})
})
