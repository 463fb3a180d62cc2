package controller_test

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

// The life of a request whose provider works: issue, renewal, restarts of
// the operator, forced refresh, suspend and deletion.
var _ = Describe("EmbedTokenRequest token lifecycle", func() {
	ctx := context.Background()
	f := eachFixtureWithProvider()

	It("issues a token into an owned Secret and reports it in the status", func() {
		etr := f.request("dash", time.Hour)
		etr.Spec.SecretLabels = map[string]v1alpha1.LabelValue{"team": "sales"}
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
		Expect(s.Annotations).To(HaveKeyWithValue(v1alpha1.SecretTokenDigestAnnotation, provider.Digest(token)))

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

		By("sending the Qrvey wire format")
		calls := f.sim.Calls()
		Expect(calls).To(HaveLen(1))
		Expect(calls[0].Body).To(HaveKeyWithValue("appid", "app-1"))
		Expect(calls[0].Body).To(HaveKeyWithValue("expiresIn", "60m"))

		By("making no vendor calls, no API writes and no Events while the token is fresh: Ready records the first token")
		secretRV := s.ResourceVersion
		bumped := settle(ctx, etr)
		Expect(f.sim.CallCount()).To(Equal(1))
		Expect(secretOf(ctx, etr)(Default).ResourceVersion).To(Equal(secretRV))
		Expect(get(ctx, etr.DeepCopy()).GetResourceVersion()).To(Equal(bumped.ResourceVersion), "no status write after the barrier")
		// Events are sent asynchronously; one sent now would also break
		// the ConsistOf below.
		Expect(eventReasons(ctx, etr)).To(BeEmpty())

		By("emitting TokenIssued for a token issued because the spec changed")
		patchObject(ctx, etr, func(etr *v1alpha1.EmbedTokenRequest) {
			etr.Spec.Lifetime = &metav1.Duration{Duration: 2 * time.Hour}
		})
		waitForToken(ctx, etr, provider.Digest(token))
		Eventually(func() []string { return eventReasons(ctx, etr) }).Should(ConsistOf(v1alpha1.ReasonTokenIssued))
	})

	It("refreshes in place before expiry, once per token", slowSpec, func() {
		f.grantOnly(9 * time.Second)
		etr := f.request("short", time.Minute)
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
		settle(ctx, etr)
		Expect(refreshEvents()).To(HaveLen(1))
	})

	It("does not mint a new token when the manager restarts", func() {
		etr := f.request("restart", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		token := waitForToken(ctx, etr, "")

		stopMgr()
		stopMgr = startManager()
		settle(ctx, etr) // only the new manager can observe the barrier
		Expect(f.callsFor("restart")()).To(Equal(1))
		Expect(string(secretOf(ctx, etr)(Default).Data[v1alpha1.SecretTokenKey])).To(Equal(token))
	})

	It("repairs the Secret's labels and annotations in place, keeping the token and calling no vendor", func() {
		etr := f.request("repair", time.Hour)
		etr.Spec.SecretAnnotations = map[string]string{"note": "embed"}
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		token := waitForToken(ctx, etr, "")

		By("removing an annotation by hand and changing spec.secretLabels")
		// In this order: the repair that follows the spec change would make
		// the hand edit's update conflict.
		s := secretOf(ctx, etr)(Default)
		delete(s.Annotations, "note")
		Expect(k8sClient.Update(ctx, s)).To(Succeed())
		patchObject(ctx, etr, func(etr *v1alpha1.EmbedTokenRequest) {
			etr.Spec.SecretLabels = map[string]v1alpha1.LabelValue{"team": "sales"}
		})

		Eventually(func(g Gomega) {
			cur := secretOf(ctx, etr)(g)
			g.Expect(cur.Labels).To(HaveKeyWithValue("team", "sales"))
			g.Expect(cur.Annotations).To(HaveKeyWithValue("note", "embed"))
			g.Expect(string(cur.Data[v1alpha1.SecretTokenKey])).To(Equal(token))
			g.Expect(cur.Annotations).To(HaveKeyWithValue(v1alpha1.SecretTokenDigestAnnotation, provider.Digest(token)))
		}).Should(Succeed())
		Expect(f.callsFor("repair")()).To(Equal(1))
	})

	It("keeps the token of a Secret that does not record its digest, reading it once instead of minting", func() {
		etr := f.request("legacy", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		token := waitForToken(ctx, etr, "")

		By("removing the digest annotation while the manager is down, as a Secret written by an earlier version lacks it")
		stopMgr()
		s := secretOf(ctx, etr)(Default)
		delete(s.Annotations, v1alpha1.SecretTokenDigestAnnotation)
		Expect(k8sClient.Update(ctx, s)).To(Succeed())
		stopMgr = startManager()

		Eventually(func(g Gomega) {
			g.Expect(secretOf(ctx, etr)(g).Annotations).To(HaveKeyWithValue(v1alpha1.SecretTokenDigestAnnotation, provider.Digest(token)))
		}).Should(Succeed())
		settle(ctx, etr)
		Expect(f.callsFor("legacy")()).To(Equal(1))
		Expect(string(secretOf(ctx, etr)(Default).Data[v1alpha1.SecretTokenKey])).To(Equal(token))
		Expect(get(ctx, etr.DeepCopy()).(*v1alpha1.EmbedTokenRequest).Status.TokenDigest).To(Equal(provider.Digest(token)))
	})

	It("issues exactly one new token when the refresh annotation changes", func() {
		etr := f.request("forced", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		token := waitForToken(ctx, etr, "")

		patchObject(ctx, etr, func(etr *v1alpha1.EmbedTokenRequest) {
			etr.Annotations = map[string]string{v1alpha1.RefreshAnnotation: "2026-11-21T10:00:00Z"}
		})

		waitForToken(ctx, etr, provider.Digest(token))
		settle(ctx, etr)
		Expect(f.callsFor("forced")()).To(Equal(2))
		Expect(get(ctx, etr).(*v1alpha1.EmbedTokenRequest).Status.LastHandledRefresh).To(Equal("2026-11-21T10:00:00Z"))
	})

	It("makes no vendor calls while suspended and keeps the Secret", func() {
		f.grantOnly(4 * time.Second)
		etr := f.request("paused", time.Minute)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		token := waitForToken(ctx, etr, "")
		expiresAt := get(ctx, etr).(*v1alpha1.EmbedTokenRequest).Status.ExpiresAt.Time

		patchObject(ctx, etr, func(etr *v1alpha1.EmbedTokenRequest) { etr.Spec.Suspend = true })
		Eventually(readyCondition(ctx, etr)).Should(HaveField("Reason", v1alpha1.ReasonSuspended))
		calls := f.callsFor("paused")()

		By("reconciling once the token would have been renewed, even expired")
		time.Sleep(time.Until(expiresAt)) // a known deadline: the token's expiry
		settle(ctx, etr)
		Expect(f.callsFor("paused")()).To(Equal(calls))
		Expect(string(secretOf(ctx, etr)(Default).Data[v1alpha1.SecretTokenKey])).NotTo(BeEmpty())
		Expect(get(ctx, etr).(*v1alpha1.EmbedTokenRequest).Status.RenewAt).To(BeNil())

		patchObject(ctx, etr, func(etr *v1alpha1.EmbedTokenRequest) { etr.Spec.Suspend = false })
		waitForToken(ctx, etr, provider.Digest(token))
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
