package controller_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// These specs apply manifests to the real API server: the CRDs' OpenAPI and
// CEL rules must reject bad input before the controller ever sees it.
var _ = Describe("Admission validation", func() {
	var ns string
	BeforeEach(func() {
		ns = "v-" + rand.String(6)
		Expect(k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	})

	qrvey := func() *v1alpha1.QrveyProvider {
		return &v1alpha1.QrveyProvider{URL: "https://qrvey.example.com", APIKeySecretRef: v1alpha1.SecretKeySelector{Name: "creds", Key: "apiKey"}}
	}
	validRequest := func() v1alpha1.EmbedTokenRequestSpec {
		return v1alpha1.EmbedTokenRequestSpec{
			ProviderRef:  v1alpha1.ProviderRef{Name: "qrvey"},
			VendorParams: v1alpha1.VendorParams{Qrvey: &v1alpha1.QrveyParams{UserID: "u", AppID: "a"}},
		}
	}

	DescribeTable("rejects an invalid EmbedProvider",
		func(mutate func(*v1alpha1.EmbedProviderSpec), message string) {
			spec := v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{Qrvey: qrvey()}}
			mutate(&spec)
			err := k8sClient.Create(context.Background(), &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"}, Spec: spec})
			Expect(err).To(MatchError(ContainSubstring(message)))
		},
		Entry("with no vendor block", func(s *v1alpha1.EmbedProviderSpec) { s.Qrvey = nil },
			"exactly one vendor block must be set"),
		Entry("with two vendor blocks", func(s *v1alpha1.EmbedProviderSpec) {
			s.OAuth2 = &v1alpha1.OAuth2Provider{TokenURL: "https://idp.example.com/token", ClientID: "c",
				ClientSecretSecretRef: v1alpha1.SecretKeySelector{Name: "creds", Key: "secret"}}
		}, "exactly one vendor block must be set"),
		Entry("with an http:// URL without allowInsecureHTTP", func(s *v1alpha1.EmbedProviderSpec) { s.Qrvey.URL = "http://qrvey.example.com" },
			"vendor URLs must use https:// unless allowInsecureHTTP is true"),
		Entry("with a URL that is not a URL", func(s *v1alpha1.EmbedProviderSpec) { s.Qrvey.URL = "qrvey.example.com" },
			"url must be an absolute http(s) URL"),
		Entry("with an invalid Secret key name", func(s *v1alpha1.EmbedProviderSpec) { s.Qrvey.APIKeySecretRef.Key = "api key!" },
			"spec.qrvey.apiKeySecretRef.key"),
		Entry("with a zero timeout", func(s *v1alpha1.EmbedProviderSpec) { s.Timeout = &metav1.Duration{} },
			"spec.timeout"),
	)

	It("accepts an http:// URL when allowInsecureHTTP is set", func() {
		spec := v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{Qrvey: qrvey()}, AllowInsecureHTTP: true}
		spec.Qrvey.URL = "http://127.0.0.1:8089"
		Expect(k8sClient.Create(context.Background(), &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"}, Spec: spec})).To(Succeed())
	})

	DescribeTable("rejects an invalid EmbedTokenRequest",
		func(mutate func(*v1alpha1.EmbedTokenRequestSpec), message string) {
			spec := validRequest()
			mutate(&spec)
			err := k8sClient.Create(context.Background(), &v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "r"}, Spec: spec})
			Expect(err).To(MatchError(ContainSubstring(message)))
		},
		Entry("with no parameter block", func(s *v1alpha1.EmbedTokenRequestSpec) { s.Qrvey = nil },
			"exactly one vendor parameter block must be set"),
		Entry("with renewBefore and renewBeforePercentage", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.RenewBefore, s.RenewBeforePercentage = &metav1.Duration{Duration: time.Minute}, ptr.To[int32](10)
		}, "renewBefore and renewBeforePercentage are mutually exclusive"),
		Entry("with a percentage out of range", func(s *v1alpha1.EmbedTokenRequestSpec) { s.RenewBeforePercentage = ptr.To[int32](100) },
			"spec.renewBeforePercentage"),
		Entry("with renewBefore not shorter than lifetime", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.Lifetime, s.RenewBefore = &metav1.Duration{Duration: time.Hour}, &metav1.Duration{Duration: time.Hour}
		}, "renewBefore must be shorter than lifetime"),
		Entry("with a lifetime under a second", func(s *v1alpha1.EmbedTokenRequestSpec) { s.Lifetime = &metav1.Duration{Duration: time.Millisecond} },
			"lifetime must be at least 1s"),
		Entry("with an unknown provider kind", func(s *v1alpha1.EmbedTokenRequestSpec) { s.ProviderRef.Kind = "Issuer" },
			"spec.providerRef.kind"),
		Entry("with an empty user", func(s *v1alpha1.EmbedTokenRequestSpec) { s.Qrvey.UserID = "" },
			"spec.qrvey.userID"),
	)

	It("defaults the lifetime and the provider kind", func() {
		etr := &v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "r"}, Spec: validRequest()}
		etr.Spec.Suspend = true
		Expect(k8sClient.Create(context.Background(), etr)).To(Succeed())
		Expect(etr.Spec.Lifetime.Duration).To(Equal(time.Hour))
		Expect(etr.Spec.ProviderRef.Kind).To(Equal("EmbedProvider"))
	})

	It("keeps secretName immutable", func() {
		ctx := context.Background()
		etr := &v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "r"}, Spec: validRequest()}
		etr.Spec.Suspend, etr.Spec.SecretName = true, "first"
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		patch := client.MergeFrom(etr.DeepCopy())
		etr.Spec.SecretName = "second"
		Expect(k8sClient.Patch(ctx, etr, patch)).To(MatchError(ContainSubstring("secretName is immutable")))
	})
})
