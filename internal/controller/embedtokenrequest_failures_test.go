package controller_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

// What a request reports when it cannot be served, and how it heals.
var _ = Describe("EmbedTokenRequest conflicts and failures", func() {
	ctx := context.Background()
	f := eachFixtureWithProvider()

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
		// The create's AlreadyExists finds the foreign Secret, so the first
		// attempt may have spent a vendor call; no later one does.
		calls := f.sim.CallCount()
		Expect(calls).To(BeNumerically("<=", 1), "a conflict costs at most one vendor call")
		patchObject(ctx, etr, func(etr *v1alpha1.EmbedTokenRequest) {
			etr.Spec.SecretLabels = map[string]v1alpha1.LabelValue{"again": "yes"}
		})
		Eventually(func(g Gomega) {
			cur := get(ctx, etr).(*v1alpha1.EmbedTokenRequest)
			g.Expect(cur.Status.ObservedGeneration).To(Equal(cur.Generation))
			g.Expect(readyReasonOf(cur)).To(Equal(v1alpha1.ReasonSecretConflict))
		}).Should(Succeed())
		Expect(f.sim.CallCount()).To(Equal(calls), "a request already in conflict spends no further vendor call")
		after := get(ctx, foreign.DeepCopy()).(*corev1.Secret)
		Expect(after.ResourceVersion).To(Equal(before.ResourceVersion))
		Expect(after.Data).To(Equal(before.Data))
		Expect(after.Labels).To(Equal(before.Labels))
		Expect(after.OwnerReferences).To(BeEmpty())
	})

	It("adopts a Secret it owns that its cache does not hold, updating it in place", func() {
		etr := f.request("adopt", time.Hour)
		etr.Spec.Suspend = true
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		etr = get(ctx, etr).(*v1alpha1.EmbedTokenRequest)
		// Owned by the request but without the managed-by label, so the
		// manager's cache never shows it: only the create finds it.
		own := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: etr.TargetSecretName(),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(etr, v1alpha1.GroupVersion.WithKind("EmbedTokenRequest"))}},
			Data: map[string][]byte{v1alpha1.SecretTokenKey: []byte("left-by-an-earlier-attempt")}}
		Expect(k8sClient.Create(ctx, own)).To(Succeed())

		patchObject(ctx, etr, func(etr *v1alpha1.EmbedTokenRequest) { etr.Spec.Suspend = false })
		token := waitForToken(ctx, etr, "")
		Expect(token).NotTo(Equal("left-by-an-earlier-attempt"))
		Expect(f.sim.CallCount()).To(Equal(1))
		stored := secretOf(ctx, etr)(Default)
		Expect(stored.UID).To(Equal(get(ctx, own.DeepCopy()).GetUID()), "updated in place, not recreated")
		Expect(stored.Labels).To(HaveKeyWithValue(v1alpha1.ManagedByLabel, v1alpha1.ManagedByValue))
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
		By("emitting TokenIssued: a first token that ends a failure changes the state")
		Eventually(func() []string { return eventReasons(ctx, etr) }).Should(ContainElement(v1alpha1.ReasonTokenIssued))
	})

	// The manager's clock drives this spec: it moves to each time the
	// request is due and a barrier makes the manager reconcile then. The
	// Vendor outages spec with Retry-After (faults_test.go) watches backoff
	// in real time.
	It("backs off on vendor errors, keeps the last token and recovers", func() {
		clk := replaceWithClockedManager()
		etr := f.request("outage", time.Minute)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		token := waitForToken(ctx, etr, "")
		f.sim.SetFault(vendorsim.Fault{Status: 500})
		status := func() v1alpha1.EmbedTokenRequestStatus {
			return get(ctx, etr.DeepCopy()).(*v1alpha1.EmbedTokenRequest).Status
		}

		By("failing at the renewal and at the retry after it, and not before the retry is due")
		// status.renewAt is kept to the second: a second past it is due.
		for attempt := int32(1); attempt <= 2; attempt++ {
			clk.SetTime(status().RenewAt.Add(time.Second))
			settle(ctx, etr)
			Expect(status().FailedAttempts).To(Equal(attempt))
			retryAt := status().RenewAt.Time
			Expect(retryAt).To(BeTemporally(">", clk.Now()), "the retry is scheduled later")
			clk.SetTime(retryAt.Add(-time.Millisecond))
			settle(ctx, etr)
			Expect(f.callsFor("outage")()).To(Equal(1+int(attempt)), "retries back off instead of looping")
		}
		cur := get(ctx, etr.DeepCopy()).(*v1alpha1.EmbedTokenRequest)
		c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionReady)
		Expect(c.Reason).To(Equal(v1alpha1.ReasonVendorUnavailable))
		Expect(c.Message).To(ContainSubstring("HTTP 500"))
		Expect(c.Message).NotTo(ContainSubstring(token))
		Expect(cur.Status.LastFailure).To(HaveValue(And(HaveField("Reason", v1alpha1.ReasonVendorUnavailable),
			HaveField("Message", ContainSubstring("HTTP 500")))))
		Expect(string(secretOf(ctx, etr)(Default).Data[v1alpha1.SecretTokenKey])).To(Equal(token), "the last valid token is kept")

		By("recovering at the next retry")
		f.sim.ClearFault()
		clk.SetTime(status().RenewAt.Add(time.Second))
		settle(ctx, etr)
		waitForToken(ctx, etr, provider.Digest(token))
		cur = get(ctx, etr).(*v1alpha1.EmbedTokenRequest)
		Expect(cur.Status.FailedAttempts).To(BeZero())
		Expect(readyCondition(ctx, etr)(Default)).To(HaveField("Status", metav1.ConditionTrue))
	})

	// On the clock as well; the Vendor outages spec with Retry-After sees
	// the manager's own requeues recover a token in real time.
	It("reports a token that expired during an outage and recovers without help", func() {
		clk := replaceWithClockedManager()
		etr := f.request("expired", time.Minute)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		token := waitForToken(ctx, etr, "")
		f.sim.SetFault(vendorsim.Fault{Status: 503, RetryAfter: time.Second})
		status := func() v1alpha1.EmbedTokenRequestStatus {
			return get(ctx, etr.DeepCopy()).(*v1alpha1.EmbedTokenRequest).Status
		}

		By("failing to renew, then failing the retry after the token expired")
		clk.SetTime(status().RenewAt.Add(time.Second))
		settle(ctx, etr)
		Expect(status().FailedAttempts).To(Equal(int32(1)))
		clk.SetTime(status().ExpiresAt.Add(time.Second))
		settle(ctx, etr)
		Expect(readyCondition(ctx, etr)(Default)).To(And(haveReason(metav1.ConditionFalse, v1alpha1.ReasonTokenExpired),
			HaveField("Message", ContainSubstring("HTTP 503")), HaveField("Message", ContainSubstring("refreshing it failed"))))
		Expect(string(secretOf(ctx, etr)(Default).Data[v1alpha1.SecretTokenKey])).To(Equal(token))
		Eventually(func() []string { return eventReasons(ctx, etr) }).Should(ContainElement(v1alpha1.ReasonTokenExpired))

		By("issuing at the retry it scheduled once the vendor answers")
		f.sim.ClearFault()
		Expect(status().RenewAt.Time).To(BeTemporally(">", clk.Now()), "a retry is scheduled")
		clk.SetTime(status().RenewAt.Add(time.Second))
		settle(ctx, etr)
		waitForToken(ctx, etr, provider.Digest(token))
		Expect(readyCondition(ctx, etr)(Default)).To(HaveField("Status", metav1.ConditionTrue))
	})

	It("stalls on rejected credentials without retrying quickly", func() {
		g := newFixture(ctx)
		g.createSecret(ctx, "qrvey-credentials", map[string][]byte{"apiKey": []byte("wrong-key")})
		g.createProvider(ctx)
		etr := g.request("denied", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())

		Eventually(readyCondition(ctx, etr)).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonVendorUnauthorized))
		cur := get(ctx, etr).(*v1alpha1.EmbedTokenRequest)
		Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, v1alpha1.ConditionStalled)).To(BeTrue())
		Expect(cur.Status.RenewAt.Time).To(BeTemporally(">", time.Now().Add(time.Minute)))
		Expect(readyMessageOf(cur)).NotTo(ContainSubstring("wrong-key"))
		settle(ctx, etr)
		Expect(g.callsFor("denied")()).To(Equal(1))
	})

	It("reports a request whose block does not match its provider's vendor", func() {
		etr := f.request("mismatch", time.Hour)
		f.createNamedProvider(ctx, "other", v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{HTTP: &v1alpha1.HTTPProvider{
			URL: "https://vendor.example.com/token", TokenPath: ".token", ExpiresInPath: ".expires_in"}}})
		etr.Spec.ProviderRef.Name = "other"
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		Eventually(readyCondition(ctx, etr)).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonVendorMismatch))
	})

	It("reports a missing provider and recovers when it is created", func() {
		etr := f.request("noprov", time.Hour)
		etr.Spec.ProviderRef.Name = "later"
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		Eventually(readyCondition(ctx, etr)).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonProviderNotFound))

		f.createNamedProvider(ctx, "later", f.providerSpec())
		waitForToken(ctx, etr, "")
	})
})
