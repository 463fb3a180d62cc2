package controller_test

import (
	"context"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/issuance"
	"github.com/embedtokens/embed-token-operator/internal/provider/quicksight"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

// QuickSight's embed URLs are issued on demand, through the Issuer the
// token endpoint shares with the reconciler: the provider's credentials are
// read from its namespace, the call is signed with SigV4 and sent through
// the provider's HTTP client, and the simulator checks the signature.
var _ = Describe("QuickSight through the Issuer", func() {
	// quickSightProvider creates, in f's namespace, a QuickSight provider
	// signing with the simulator's keys from a Secret.
	quickSightProvider := func(ctx context.Context, f *fixture) *v1alpha1.EmbedProvider {
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "aws"},
			StringData: map[string]string{"id": vendorsim.DefaultQuickSightAccessKeyID, "secret": vendorsim.DefaultQuickSightSecretAccessKey + "\n"}})).To(Succeed())
		prov := &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "quicksight"},
			Spec: v1alpha1.EmbedProviderSpec{AllowInsecureHTTP: true, VendorConfig: v1alpha1.VendorConfig{QuickSight: &v1alpha1.QuickSightProvider{
				Region: vendorsim.DefaultQuickSightRegion, AWSAccountID: vendorsim.DefaultQuickSightAccountID, Endpoint: f.sim.URL(),
				Credentials: v1alpha1.AWSCredentials{Secret: &v1alpha1.AWSSecretCredentials{
					AccessKeyIDSecretRef:     v1alpha1.SecretKeySelector{Name: "aws", Key: "id"},
					SecretAccessKeySecretRef: v1alpha1.SecretKeySelector{Name: "aws", Key: "secret"}}}}}}}
		Expect(k8sClient.Create(ctx, prov)).To(Succeed())
		return prov
	}
	alice := func() *v1alpha1.QuickSightParams {
		return &v1alpha1.QuickSightParams{
			RegisteredUser: &v1alpha1.QuickSightRegisteredUser{UserName: "alice",
				Experience: v1alpha1.QuickSightRegisteredExperience{Dashboard: &v1alpha1.QuickSightDashboard{InitialDashboardID: "sales-7"}}},
			SessionLifetimeInMinutes: ptr.To[int64](15)}
	}

	It("refuses an EmbedTokenRequest: an embed URL stored in a Secret could be opened once", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		DeferCleanup(func() { deleteFixtures(ctx, f) })
		prov := quickSightProvider(ctx, f)
		etr := &v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "stored"},
			Spec: v1alpha1.EmbedTokenRequestSpec{ProviderRef: v1alpha1.ProviderRef{Name: prov.Name},
				VendorParams: v1alpha1.VendorParams{QuickSight: alice()}}}
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		Eventually(func(g Gomega) {
			cur := &v1alpha1.EmbedTokenRequest{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(etr), cur)).To(Succeed())
			stalled := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionStalled)
			g.Expect(stalled).NotTo(BeNil())
			g.Expect(stalled.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(stalled.Reason).To(Equal(v1alpha1.ReasonInvalidRequest))
			g.Expect(stalled.Message).To(ContainSubstring("single-use"))
		}).Should(Succeed())
		Expect(f.sim.CallCount()).To(BeZero(), "QuickSight is never called for a stored request")
	})

	It("issues a new signed embed URL per call, each opening once", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		prov := quickSightProvider(ctx, f)

		stopMgr()
		DeferCleanup(func() { stopMgr = startManager() })
		opts := defaultOptions()
		opts.Providers[v1alpha1.VendorQuickSight] = quicksight.New()
		stop, issuer := startOperatorWithIssuer(cfg, logr.Logger{}, 0, opts)
		DeferCleanup(stop)
		DeferCleanup(func() { deleteFixtures(ctx, f) })
		Eventually(func(g Gomega) {
			p := &v1alpha1.EmbedProvider{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(prov), p)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue(), "%+v", p.Status.Conditions)
		}).Should(Succeed(), "the provider's keys are read and checked")

		params := &v1alpha1.VendorParams{QuickSight: alice()}
		// A template's call, filled in, as the token endpoint makes it.
		filled := &v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "per-user"},
			Spec: v1alpha1.EmbedTokenRequestSpec{ProviderRef: v1alpha1.ProviderRef{Kind: issuance.KindEmbedProvider, Name: prov.Name},
				VendorParams: *params}}
		var urls []string
		for range 2 {
			p, err := issuer.Resolve(ctx, f.ns, filled.Spec.ProviderRef)
			Expect(err).NotTo(HaveOccurred())
			Expect(issuer.Check(ctx, p, filled)).To(Succeed())
			called := time.Now()
			tok, err := issuer.Call(ctx, p, issuance.Call{Namespace: f.ns, Key: "template/" + f.ns + "/per-user",
				LogKey: "embedTokenTemplate", Params: &filled.Spec.VendorParams, Lifetime: time.Hour})
			Expect(err).NotTo(HaveOccurred())
			Expect(tok.ExpiresAt).To(BeTemporally("~", called.Add(quicksight.URLRedemptionWindow), 5*time.Second),
				"the URL's redemption window, not the session's or the hour asked for")
			Expect(f.sim.Validate(tok.Value)).To(Equal(vendorsim.ValidityValid))
			urls = append(urls, tok.Value)
		}
		Expect(urls[1]).NotTo(Equal(urls[0]))
		calls := f.sim.Calls()
		Expect(calls).To(HaveLen(2))
		for _, c := range calls {
			Expect(c.Path).To(Equal(vendorsim.QuickSightRegisteredUserPath(vendorsim.DefaultQuickSightAccountID)))
			Expect(c.Status).To(Equal(http.StatusOK), "the simulator accepted the SigV4 signature")
			Expect(c.Body).To(HaveKeyWithValue("UserArn", "arn:aws:quicksight:us-east-1:111122223333:user/default/alice"))
		}

		By("opening the first URL twice: one session")
		for _, want := range []int{http.StatusOK, http.StatusForbidden} {
			resp, err := http.Get(urls[0])
			Expect(err).NotTo(HaveOccurred())
			Expect(resp.Body.Close()).To(Succeed())
			Expect(resp.StatusCode).To(Equal(want))
		}
	})
})
