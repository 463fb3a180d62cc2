package controller_test

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

// lifetimeIgnoringSpec is an http provider for a vendor that answers a
// token valid for expiresIn seconds whatever lifetime it is asked for.
func lifetimeIgnoringSpec(url string, maxLifetime time.Duration) v1alpha1.EmbedProviderSpec {
	spec := httpProviderSpec(url)
	spec.HTTP.ExpiresAtPath, spec.HTTP.ExpiresInPath = "", ".expiresIn"
	spec.MaxLifetime = &metav1.Duration{Duration: maxLifetime}
	return spec
}

// hourLongToken is the answer of a vendor that issues token for an hour.
func hourLongToken(token string) string {
	b, _ := json.Marshal(map[string]any{"token": token, "expiresIn": 3600})
	return string(b)
}

var _ = Describe("A token longer than the provider's maxLifetime", func() {
	It("is refused by default: the request stalls with LifetimeExceedsMax and keeps the token it holds", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		f.createCredentials(ctx)
		v := newScriptedVendor(http.StatusOK, hourLongToken("first-token"))
		f.createNamedProvider(ctx, "fixed-hour", lifetimeIgnoringSpec(v.srv.URL, 2*time.Hour))
		held := f.httpRequest("held", "fixed-hour", time.Hour)
		Expect(k8sClient.Create(ctx, held)).To(Succeed())
		Expect(waitForToken(ctx, held, "")).To(Equal("first-token"), "an hour is within a maxLifetime of 2h")

		By("lowering maxLifetime to 10m: the vendor still issues an hour")
		v.answer(http.StatusOK, hourLongToken("overlong-token"))
		patchObject(ctx, &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "fixed-hour"}},
			func(p *v1alpha1.EmbedProvider) { p.Spec.MaxLifetime = &metav1.Duration{Duration: 10 * time.Minute} })
		refused := "the vendor issued a token valid for 1h, longer than provider fixed-hour's maxLifetime of 10m; it was refused and not stored"
		Eventually(readyCondition(ctx, held)).Should(And(haveReason(metav1.ConditionTrue, v1alpha1.ReasonLifetimeExceedsMax),
			HaveField("Message", ContainSubstring("Refresh failed: "+refused))), "the held token is still valid")
		Expect(stalledCondition(ctx, held)(Default)).To(And(Not(BeNil()),
			HaveField("Reason", v1alpha1.ReasonLifetimeExceedsMax), HaveField("Status", metav1.ConditionTrue)))
		Expect(string(secretOf(ctx, held)(Default).Data[v1alpha1.SecretTokenKey])).To(Equal("first-token"), "the previous token is kept")
		cur := get(ctx, held).(*v1alpha1.EmbedTokenRequest)
		Expect(cur.Status.TokenDigest).To(Equal(provider.Digest("first-token")))
		status, err := json.Marshal(cur.Status)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(status)).NotTo(ContainSubstring("overlong-token"))

		By("a new request under the lowered maxLifetime gets no Secret")
		fresh := f.httpRequest("fresh", "fixed-hour", time.Hour)
		Expect(k8sClient.Create(ctx, fresh)).To(Succeed())
		Eventually(readyCondition(ctx, fresh)).Should(And(haveReason(metav1.ConditionFalse, v1alpha1.ReasonLifetimeExceedsMax),
			HaveField("Message", ContainSubstring("Issuing failed: "+refused))))
		Expect(stalledCondition(ctx, fresh)(Default)).To(HaveField("Reason", v1alpha1.ReasonLifetimeExceedsMax))
		err = k8sClient.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: fresh.Name}, &corev1.Secret{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "nothing is stored: %v", err)
	})

	It("is revoked when refused, where the vendor can revoke", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		f.createSecret(ctx, "qlik", map[string][]byte{"clientSecret": []byte(vendorsim.DefaultQlikClientSecret)})
		f.createNamedProvider(ctx, "qlik", v1alpha1.EmbedProviderSpec{
			VendorConfig: v1alpha1.VendorConfig{QlikCloud: &v1alpha1.QlikCloudProvider{
				TenantURL: f.sim.URL(), ClientID: vendorsim.DefaultQlikClientID, RevokeReplacedTokens: true,
				ClientSecretSecretRef: v1alpha1.SecretKeySelector{Name: "qlik", Key: "clientSecret"},
			}},
			AllowInsecureHTTP: true,
			MaxLifetime:       &metav1.Duration{Duration: 10 * time.Minute}, // Qlik issues an hour
		})
		etr := &v1alpha1.EmbedTokenRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "qlik-user"},
			Spec: v1alpha1.EmbedTokenRequestSpec{
				ProviderRef:  v1alpha1.ProviderRef{Name: "qlik"},
				VendorParams: v1alpha1.VendorParams{QlikCloud: &v1alpha1.QlikCloudParams{UserLookup: &v1alpha1.QlikUserLookup{Value: "alice"}}},
				Lifetime:     &metav1.Duration{Duration: 10 * time.Minute},
			},
		}
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		Eventually(readyCondition(ctx, etr)).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonLifetimeExceedsMax))

		// The refusal revokes before the status is written.
		var issued []string
		revoked := 0
		for _, c := range f.sim.Calls() {
			switch {
			case c.Path == vendorsim.QlikTokenPath && c.Token != "":
				issued = append(issued, c.Token)
			case c.Path == vendorsim.QlikRevokePath && c.Status == http.StatusOK:
				revoked++
			}
		}
		Expect(issued).NotTo(BeEmpty())
		Expect(f.sim.Validate(issued[0])).To(Equal(vendorsim.ValidityUnknown), "the refused token is revoked at the vendor")
		Expect(revoked).To(BeNumerically(">=", 1))
		err := k8sClient.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: etr.Name}, &corev1.Secret{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "nothing is stored: %v", err)
	})

	It("is stored under lifetimeExceedsMax: RenewAtMax, renewed within maxLifetime, and the Ready message says so", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		f.createCredentials(ctx)
		v := newScriptedVendor(http.StatusOK, hourLongToken("long-token"))
		spec := lifetimeIgnoringSpec(v.srv.URL, 10*time.Minute)
		spec.LifetimeExceedsMax = v1alpha1.LifetimeExceedsMaxRenewAtMax
		f.createNamedProvider(ctx, "renew-at-max", spec)
		etr := f.httpRequest("renews", "renew-at-max", 10*time.Minute)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		Expect(waitForToken(ctx, etr, "")).To(Equal("long-token"), "the pods get the vendor's token")

		cur := get(ctx, etr).(*v1alpha1.EmbedTokenRequest)
		issued := cur.Status.IssuedAt.Time
		Expect(cur.Status.ExpiresAt.Time).To(BeTemporally("==", issued.Add(10*time.Minute)), "recorded as expiring at maxLifetime")
		Expect(cur.Status.RenewAt.Time).To(BeTemporally("<", issued.Add(10*time.Minute)))
		s := secretOf(ctx, etr)(Default)
		Expect(s.Annotations).To(HaveKeyWithValue(v1alpha1.SecretVendorExpiresAtAnnotation, issued.Add(time.Hour).UTC().Format(time.RFC3339)))
		note := "(the vendor issued a token valid for 1h, longer than provider renew-at-max's maxLifetime of 10m; it is renewed as if it expired after 10m)"
		Eventually(readyCondition(ctx, etr)).Should(And(haveReason(metav1.ConditionTrue, v1alpha1.ReasonTokenIssued),
			HaveField("Message", ContainSubstring(note))))

		By("a reconcile that keeps the token still says so")
		patchObject(ctx, etr, func(e *v1alpha1.EmbedTokenRequest) { e.Spec.SecretAnnotations = map[string]string{"team": "a"} })
		gen := get(ctx, etr).(*v1alpha1.EmbedTokenRequest).Generation
		Eventually(func(g Gomega) {
			g.Expect(get(ctx, etr).(*v1alpha1.EmbedTokenRequest).Status.ObservedGeneration).To(Equal(gen))
			g.Expect(secretOf(ctx, etr)(g).Annotations).To(HaveKeyWithValue("team", "a"))
		}).Should(Succeed())
		Expect(readyCondition(ctx, etr)(Default)).To(HaveField("Message", ContainSubstring(note)))
		Expect(v.callCount()).To(Equal(1), "the kept token is not re-issued")
	})
})
