package controller_test

import (
	"context"
	"time"

	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/qrvey"
)

// jwtExpiry verifies a token signed with key and returns its exp.
func jwtExpiry(token string, key []byte) time.Time {
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{"HS256"}))
	Expect(err).NotTo(HaveOccurred())
	exp, err := claims.GetExpirationTime()
	Expect(err).NotTo(HaveOccurred())
	return exp.Time
}

// secretExpiresAt is the expiry the request's Secret records.
func secretExpiresAt(ctx context.Context, etr *v1alpha1.EmbedTokenRequest) time.Time {
	at, err := time.Parse(time.RFC3339, string(secretOf(ctx, etr)(Default).Data[v1alpha1.SecretExpiresAtKey]))
	Expect(err).NotTo(HaveOccurred())
	return at
}

var _ = Describe("Provider maxLifetime", func() {
	It("caps a shared jwt provider's tokens at 24h by default, says so, and re-issues when the cap is lowered", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		key := []byte("0123456789abcdef0123456789abcdef")
		f.createSecret(ctx, "signing", map[string][]byte{"key": key})
		cp := createClusterProvider(ctx, "jwt-"+f.ns, v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{JWT: &v1alpha1.JWTProvider{
			Algorithm: "HS256", SigningKeySecretRef: v1alpha1.SecretKeySelector{Namespace: f.ns, Name: "signing", Key: "key"},
		}}}, nil)
		Expect(get(ctx, cp).(*v1alpha1.ClusterEmbedProvider).Spec.MaxLifetime).To(
			Equal(&metav1.Duration{Duration: 24 * time.Hour}), "the API server defaults maxLifetime")

		etr := &v1alpha1.EmbedTokenRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "forever"},
			Spec: v1alpha1.EmbedTokenRequestSpec{
				ProviderRef:  v1alpha1.ProviderRef{Kind: "ClusterEmbedProvider", Name: cp.Name},
				VendorParams: v1alpha1.VendorParams{JWT: &v1alpha1.JWTParams{Subject: "alice"}},
				Lifetime:     &metav1.Duration{Duration: 87600 * time.Hour},
			},
		}
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		token := waitForToken(ctx, etr, "")
		exp := jwtExpiry(token, key)
		Expect(exp).NotTo(BeTemporally(">", time.Now().Add(24*time.Hour)), "exp is within the provider's maxLifetime")
		Expect(exp).To(BeTemporally("~", time.Now().Add(24*time.Hour), 10*time.Second))
		Expect(secretExpiresAt(ctx, etr)).To(BeTemporally("==", exp))
		Eventually(readyCondition(ctx, etr)).Should(And(haveReason(metav1.ConditionTrue, v1alpha1.ReasonTokenIssued),
			HaveField("Message", ContainSubstring(
				"(asked the vendor for 24h: provider "+cp.Name+"'s maxLifetime caps the 87600h the request asks for)"))))

		By("lowering maxLifetime re-issues the token with the new cap")
		patchObject(ctx, cp, func(cp *v1alpha1.ClusterEmbedProvider) { cp.Spec.MaxLifetime = &metav1.Duration{Duration: time.Hour} })
		second := waitForToken(ctx, etr, provider.Digest(token))
		Expect(jwtExpiry(second, key)).To(BeTemporally("~", time.Now().Add(time.Hour), 10*time.Second))
		Eventually(readyCondition(ctx, etr)).Should(HaveField("Message",
			ContainSubstring("asked the vendor for 1h: provider "+cp.Name+"'s maxLifetime caps the 87600h the request asks for")))
	})

	It("passes a qrvey provider's maxLifetime to the vendor instead of the longer lifetime requested", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		f.createCredentials(ctx)
		spec := f.providerSpec()
		spec.MaxLifetime = &metav1.Duration{Duration: time.Hour}
		f.createNamedProvider(ctx, "qrvey", spec)
		etr := f.request("long", 10*time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		waitForToken(ctx, etr, "")

		calls := f.sim.Calls()
		Expect(calls).To(HaveLen(1))
		Expect(calls[0].Body).To(HaveKeyWithValue("expiresIn", qrvey.FormatExpiresIn(time.Hour)))
		Expect(secretExpiresAt(ctx, etr)).To(BeTemporally("~", time.Now().Add(time.Hour), 10*time.Second))
		Expect(get(ctx, etr).(*v1alpha1.EmbedTokenRequest).Status.ExpiresAt.Time).To(BeTemporally("~", time.Now().Add(time.Hour), 10*time.Second))
		Eventually(readyCondition(ctx, etr)).Should(HaveField("Message",
			ContainSubstring("asked the vendor for 1h: provider qrvey's maxLifetime caps the 10h the request asks for")))
	})
})
