package controller_test

import (
	"context"
	"time"

	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

var _ = Describe("Credentials and providers", func() {
	ctx := context.Background()
	f := eachFixtureWithProvider()

	It("re-issues tokens when a credential Secret is rotated", func() {
		etr := f.request("rotate", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		token := waitForToken(ctx, etr, "")
		Eventually(func(g Gomega) {
			g.Expect(secretOf(ctx, etr)(g).Annotations).To(HaveKey(v1alpha1.CredentialsVersionAnnotation))
		}).Should(Succeed())
		settle(ctx, etr)
		Expect(f.callsFor("rotate")()).To(Equal(1))

		creds := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "qrvey-credentials"}, creds)).To(Succeed())
		creds.Data["apiKey"] = []byte(apiKey) // same key, new version: a rotation to an equal value
		creds.Labels = map[string]string{"rotated": "yes"}
		Expect(k8sClient.Update(ctx, creds)).To(Succeed())

		waitForToken(ctx, etr, provider.Digest(token))
		settle(ctx, etr)
		Expect(f.callsFor("rotate")()).To(Equal(2))
	})

	It("keeps tokens when the provider opts out of re-issuing on rotation", func() {
		patchObject(ctx, &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "qrvey"}},
			func(p *v1alpha1.EmbedProvider) { p.Spec.ReissueOnCredentialChange = ptr.To(false) })
		etr := f.request("keep", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		waitForToken(ctx, etr, "")
		p := &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "qrvey"}}
		credentialsVersion := func() string { return get(ctx, p).(*v1alpha1.EmbedProvider).Status.CredentialsVersion }
		Eventually(credentialsVersion).ShouldNot(BeEmpty())
		before := credentialsVersion()

		creds := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "qrvey-credentials"}, creds)).To(Succeed())
		creds.Labels = map[string]string{"rotated": "yes"}
		Expect(k8sClient.Update(ctx, creds)).To(Succeed())
		By("reconciling the request after the provider recorded the rotation")
		Eventually(credentialsVersion).ShouldNot(Equal(before))
		settle(ctx, etr)
		Expect(f.callsFor("keep")()).To(Equal(1))
	})

	It("never lets an EmbedProvider read a Secret in another namespace", func() {
		other := newFixture(ctx)
		other.createCredentials(ctx)
		spec := f.providerSpec()
		spec.Qrvey.APIKeySecretRef.Namespace = other.ns
		f.createNamedProvider(ctx, "sneaky", spec)
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
		f.createSecret(ctx, "signing", map[string][]byte{"key": key})
		f.createNamedProvider(ctx, "tableau", v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{JWT: &v1alpha1.JWTProvider{
			Algorithm: "HS256", SigningKeySecretRef: v1alpha1.SecretKeySelector{Name: "signing", Key: "key"},
			Issuer: "client-id", Audience: "tableau", KeyID: "secret-id",
			MaxLifetime: &metav1.Duration{Duration: 10 * time.Minute},
		}}})
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
