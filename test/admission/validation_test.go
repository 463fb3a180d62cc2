package admission_test

import (
	"context"
	"fmt"
	"strings"
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

	// httpProvider is a valid generic HTTP provider block, changed by mutate.
	httpProvider := func(mutate func(*v1alpha1.HTTPProvider)) *v1alpha1.HTTPProvider {
		h := &v1alpha1.HTTPProvider{URL: "https://vendor.example.com/token", TokenPath: ".token", ExpiresInPath: ".expires_in"}
		mutate(h)
		return h
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
				ClientSecretSecretRef: &v1alpha1.SecretKeySelector{Name: "creds", Key: "secret"}}
		}, "exactly one vendor block must be set"),
		Entry("with an http:// URL without allowInsecureHTTP", func(s *v1alpha1.EmbedProviderSpec) { s.Qrvey.URL = "http://qrvey.example.com" },
			"vendor URLs must use https:// unless allowInsecureHTTP is true"),
		Entry("with a URL that is not a URL", func(s *v1alpha1.EmbedProviderSpec) { s.Qrvey.URL = "qrvey.example.com" },
			"url must be an absolute http(s) URL"),
		Entry("with an invalid Secret key name", func(s *v1alpha1.EmbedProviderSpec) { s.Qrvey.APIKeySecretRef.Key = "api key!" },
			"spec.qrvey.apiKeySecretRef.key"),
		Entry("with a zero timeout", func(s *v1alpha1.EmbedProviderSpec) { s.Timeout = &metav1.Duration{} },
			"spec.timeout"),
		Entry("with a negative timeout", func(s *v1alpha1.EmbedProviderSpec) { s.Timeout = &metav1.Duration{Duration: -time.Second} },
			"timeout must be greater than 0s and at most 5m"),
		Entry("with a timeout over 5m", func(s *v1alpha1.EmbedProviderSpec) { s.Timeout = &metav1.Duration{Duration: 6 * time.Minute} },
			"timeout must be greater than 0s and at most 5m"),
		Entry("with an invalid Secret name", func(s *v1alpha1.EmbedProviderSpec) { s.Qrvey.APIKeySecretRef.Name = "Bad_Name" },
			"spec.qrvey.apiKeySecretRef.name in body should match"),
		Entry("with an empty Secret key", func(s *v1alpha1.EmbedProviderSpec) { s.Qrvey.APIKeySecretRef.Key = "" },
			"spec.qrvey.apiKeySecretRef.key in body should be at least 1 chars long"),
		Entry("with an invalid Secret namespace", func(s *v1alpha1.EmbedProviderSpec) { s.Qrvey.APIKeySecretRef.Namespace = "Team_A" },
			"spec.qrvey.apiKeySecretRef.namespace in body should match"),
		Entry("with an invalid CA bundle Secret key", func(s *v1alpha1.EmbedProviderSpec) {
			s.CABundleSecretRef = &v1alpha1.SecretKeySelector{Name: "ca", Key: "ca/crt"}
		}, "spec.caBundleSecretRef.key in body should match"),
		Entry("with a zero rate limit", func(s *v1alpha1.EmbedProviderSpec) { s.RateLimit = &v1alpha1.RateLimit{RequestsPerSecond: 0} },
			"spec.rateLimit.requestsPerSecond in body should be greater than or equal to 1"),
		Entry("with an http:// Qlik tenant without allowInsecureHTTP", func(s *v1alpha1.EmbedProviderSpec) {
			s.Qrvey, s.QlikCloud = nil, &v1alpha1.QlikCloudProvider{TenantURL: "http://acme.eu.qlikcloud.com", ClientID: "c",
				ClientSecretSecretRef: v1alpha1.SecretKeySelector{Name: "creds", Key: "secret"}}
		}, "vendor URLs must use https:// unless allowInsecureHTTP is true"),
		Entry("with a Bold BI server URL that is not http(s)", func(s *v1alpha1.EmbedProviderSpec) {
			s.Qrvey, s.BoldBI = nil, &v1alpha1.BoldBIProvider{ServerURL: "ftp://bi.example.com", SiteIdentifier: "site/site1",
				EmbedSecretSecretRef: v1alpha1.SecretKeySelector{Name: "creds", Key: "secret"}}
		}, "serverURL must be an absolute http(s) URL"),
		Entry("with an OAuth2 token URL that is not a URL", func(s *v1alpha1.EmbedProviderSpec) {
			s.Qrvey, s.OAuth2 = nil, &v1alpha1.OAuth2Provider{TokenURL: "https://", ClientID: "c",
				ClientSecretSecretRef: &v1alpha1.SecretKeySelector{Name: "creds", Key: "secret"}}
		}, "tokenURL must be an absolute http(s) URL"),
		Entry("with an unknown OAuth2 client authentication method", func(s *v1alpha1.EmbedProviderSpec) {
			s.Qrvey, s.OAuth2 = nil, &v1alpha1.OAuth2Provider{TokenURL: "https://idp.example.com/token", ClientID: "c",
				ClientAuthMethod: "private_key_jwt", ClientSecretSecretRef: &v1alpha1.SecretKeySelector{Name: "creds", Key: "secret"}}
		}, `spec.oauth2.clientAuthMethod: Unsupported value: "private_key_jwt"`),
		Entry("with an unknown JWT algorithm", func(s *v1alpha1.EmbedProviderSpec) {
			s.Qrvey, s.JWT = nil, &v1alpha1.JWTProvider{Algorithm: "none", SigningKeySecretRef: v1alpha1.SecretKeySelector{Name: "k", Key: "key"}}
		}, `spec.jwt.algorithm: Unsupported value: "none": supported values: "HS256"`),
		Entry("with JWT headers that set alg", func(s *v1alpha1.EmbedProviderSpec) {
			s.Qrvey, s.JWT = nil, &v1alpha1.JWTProvider{Algorithm: "HS256", SigningKeySecretRef: v1alpha1.SecretKeySelector{Name: "k", Key: "key"},
				Headers: map[string]string{"alg": "none"}}
		}, "headers cannot set alg, typ or kid: use algorithm and keyID"),
		Entry("with a zero JWT maxLifetime", func(s *v1alpha1.EmbedProviderSpec) {
			s.Qrvey, s.JWT = nil, &v1alpha1.JWTProvider{Algorithm: "HS256", SigningKeySecretRef: v1alpha1.SecretKeySelector{Name: "k", Key: "key"},
				MaxLifetime: &metav1.Duration{}}
		}, "maxLifetime must be positive"),
		Entry("with a negative JWT maxLifetime", func(s *v1alpha1.EmbedProviderSpec) {
			s.Qrvey, s.JWT = nil, &v1alpha1.JWTProvider{Algorithm: "HS256", SigningKeySecretRef: v1alpha1.SecretKeySelector{Name: "k", Key: "key"},
				MaxLifetime: &metav1.Duration{Duration: -time.Minute}}
		}, "maxLifetime must be positive"),
		Entry("with an HTTP provider that sets both expiry paths", func(s *v1alpha1.EmbedProviderSpec) {
			s.Qrvey, s.HTTP = nil, httpProvider(func(h *v1alpha1.HTTPProvider) { h.ExpiresAtPath = ".exp" })
		}, "expiresInPath and expiresAtPath are mutually exclusive"),
		Entry("with an HTTP provider that cannot learn the expiry", func(s *v1alpha1.EmbedProviderSpec) {
			s.Qrvey, s.HTTP = nil, httpProvider(func(h *v1alpha1.HTTPProvider) { h.ExpiresInPath = "" })
		}, "set expiresInPath, expiresAtPath or expiry, so the token's expiry is known"),
		Entry("with an HTTP expiresAtFormat but no expiresAtPath", func(s *v1alpha1.EmbedProviderSpec) {
			s.Qrvey, s.HTTP = nil, httpProvider(func(h *v1alpha1.HTTPProvider) { h.ExpiresAtFormat = "RFC3339" })
		}, "expiresAtFormat needs expiresAtPath"),
		Entry("with an HTTP successValue but no successPath", func(s *v1alpha1.EmbedProviderSpec) {
			s.Qrvey, s.HTTP = nil, httpProvider(func(h *v1alpha1.HTTPProvider) { h.SuccessValue = "true" })
		}, "successValue needs successPath"),
		Entry("with an HTTP header that sets value and valueFrom", func(s *v1alpha1.EmbedProviderSpec) {
			s.Qrvey, s.HTTP = nil, httpProvider(func(h *v1alpha1.HTTPProvider) {
				h.Headers = []v1alpha1.HTTPHeader{{Name: "x-api-key", Value: ptr.To("v"),
					ValueFrom: &v1alpha1.HTTPHeaderSource{SecretKeyRef: v1alpha1.SecretKeySelector{Name: "creds", Key: "k"}}}}
			})
		}, "exactly one of value and valueFrom must be set"),
		Entry("with an HTTP expiry that sets fromJWT and duration", func(s *v1alpha1.EmbedProviderSpec) {
			s.Qrvey, s.HTTP = nil, httpProvider(func(h *v1alpha1.HTTPProvider) {
				h.Expiry = &v1alpha1.ExpiryFallback{FromJWT: ptr.To(true), Duration: &metav1.Duration{Duration: time.Hour}}
			})
		}, "exactly one of fromJWT and duration must be set"),
		Entry("with an unknown HTTP method", func(s *v1alpha1.EmbedProviderSpec) {
			s.Qrvey, s.HTTP = nil, httpProvider(func(h *v1alpha1.HTTPProvider) { h.Method = "DELETE" })
		}, `spec.http.method: Unsupported value: "DELETE"`),
		Entry("with an http:// HTTP provider URL without allowInsecureHTTP", func(s *v1alpha1.EmbedProviderSpec) {
			s.Qrvey, s.HTTP = nil, httpProvider(func(h *v1alpha1.HTTPProvider) { h.URL = "http://vendor.example.com/token" })
		}, "vendor URLs must use https:// unless allowInsecureHTTP is true"),
	)

	DescribeTable("rejects an invalid ClusterEmbedProvider",
		func(mutate func(*v1alpha1.ClusterEmbedProviderSpec), message string) {
			spec := v1alpha1.ClusterEmbedProviderSpec{EmbedProviderSpec: v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{Qrvey: qrvey()}}}
			spec.Qrvey.APIKeySecretRef.Namespace = "platform"
			mutate(&spec)
			err := k8sClient.Create(context.Background(), &v1alpha1.ClusterEmbedProvider{ObjectMeta: metav1.ObjectMeta{Name: "cp-" + ns}, Spec: spec})
			Expect(err).To(MatchError(ContainSubstring(message)))
		},
		Entry("with a credential reference without namespace", func(s *v1alpha1.ClusterEmbedProviderSpec) { s.Qrvey.APIKeySecretRef.Namespace = "" },
			"every Secret reference of a ClusterEmbedProvider must set namespace"),
		Entry("with a CA bundle reference without namespace", func(s *v1alpha1.ClusterEmbedProviderSpec) {
			s.CABundleSecretRef = &v1alpha1.SecretKeySelector{Name: "ca", Key: "ca.crt"}
		}, "every Secret reference of a ClusterEmbedProvider must set namespace"),
		Entry("with an HTTP header reference without namespace", func(s *v1alpha1.ClusterEmbedProviderSpec) {
			s.Qrvey, s.HTTP = nil, httpProvider(func(h *v1alpha1.HTTPProvider) {
				h.Headers = []v1alpha1.HTTPHeader{{Name: "x-api-key",
					ValueFrom: &v1alpha1.HTTPHeaderSource{SecretKeyRef: v1alpha1.SecretKeySelector{Name: "creds", Key: "k"}}}}
			})
		}, "every Secret reference of a ClusterEmbedProvider must set namespace"),
		Entry("with an invalid namespaceSelector operator", func(s *v1alpha1.ClusterEmbedProviderSpec) {
			s.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Near"}}}
		}, "namespaceSelector operators must be In, NotIn, Exists or DoesNotExist"),
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
			"lifetime must be at least 1m"),
		Entry("with a lifetime of a second, which would renew as often as the API allows", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.Lifetime = &metav1.Duration{Duration: time.Second}
		}, "lifetime must be at least 1m"),
		Entry("with a lifetime under a minute", func(s *v1alpha1.EmbedTokenRequestSpec) { s.Lifetime = &metav1.Duration{Duration: 59 * time.Second} },
			"lifetime must be at least 1m"),
		Entry("with an unknown provider kind", func(s *v1alpha1.EmbedTokenRequestSpec) { s.ProviderRef.Kind = "Issuer" },
			"spec.providerRef.kind"),
		Entry("with an empty user", func(s *v1alpha1.EmbedTokenRequestSpec) { s.Qrvey.UserID = "" },
			"spec.qrvey.userID"),
		Entry("with two parameter blocks", func(s *v1alpha1.EmbedTokenRequestSpec) { s.JWT = &v1alpha1.JWTParams{Subject: "alice"} },
			"exactly one vendor parameter block must be set"),
		Entry("with an empty provider name", func(s *v1alpha1.EmbedTokenRequestSpec) { s.ProviderRef.Name = "" },
			"spec.providerRef.name in body should be at least 1 chars long"),
		Entry("with a zero percentage", func(s *v1alpha1.EmbedTokenRequestSpec) { s.RenewBeforePercentage = ptr.To[int32](0) },
			"spec.renewBeforePercentage in body should be greater than or equal to 1"),
		Entry("with a negative percentage", func(s *v1alpha1.EmbedTokenRequestSpec) { s.RenewBeforePercentage = ptr.To[int32](-5) },
			"spec.renewBeforePercentage in body should be greater than or equal to 1"),
		Entry("with a percentage over 99", func(s *v1alpha1.EmbedTokenRequestSpec) { s.RenewBeforePercentage = ptr.To[int32](150) },
			"spec.renewBeforePercentage in body should be less than or equal to 99"),
		Entry("with renewBefore longer than lifetime", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.Lifetime, s.RenewBefore = &metav1.Duration{Duration: time.Hour}, &metav1.Duration{Duration: 2 * time.Hour}
		}, "renewBefore must be shorter than lifetime"),
		Entry("with renewBefore longer than the default lifetime", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.RenewBefore = &metav1.Duration{Duration: 90 * time.Minute}
		}, "renewBefore must be shorter than lifetime"),
		Entry("with a zero renewBefore", func(s *v1alpha1.EmbedTokenRequestSpec) { s.RenewBefore = &metav1.Duration{} },
			"renewBefore must be positive"),
		Entry("with a negative renewBefore", func(s *v1alpha1.EmbedTokenRequestSpec) { s.RenewBefore = &metav1.Duration{Duration: -time.Minute} },
			"renewBefore must be positive"),
		Entry("with a zero lifetime", func(s *v1alpha1.EmbedTokenRequestSpec) { s.Lifetime = &metav1.Duration{} },
			"lifetime must be at least 1m"),
		Entry("with a negative lifetime", func(s *v1alpha1.EmbedTokenRequestSpec) { s.Lifetime = &metav1.Duration{Duration: -time.Hour} },
			"lifetime must be at least 1m"),
		Entry("with an invalid Secret name", func(s *v1alpha1.EmbedTokenRequestSpec) { s.SecretName = "Embed_Token" },
			"spec.secretName in body should match"),
		Entry("with a Secret name over 253 characters", func(s *v1alpha1.EmbedTokenRequestSpec) { s.SecretName = strings.Repeat("a", 254) },
			"spec.secretName: Too long"),
		Entry("with an empty Qrvey app", func(s *v1alpha1.EmbedTokenRequestSpec) { s.Qrvey.AppID = "" },
			"spec.qrvey.appID in body should be at least 1 chars long"),
		Entry("with an empty userLookup.value", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.Qrvey, s.QlikCloud = nil, &v1alpha1.QlikCloudParams{UserLookup: &v1alpha1.QlikUserLookup{Field: "email"}}
		}, "spec.qlikCloud.userLookup.value in body should be at least 1 chars long"),
		Entry("with an unknown userLookup.field", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.Qrvey, s.QlikCloud = nil, &v1alpha1.QlikCloudParams{UserLookup: &v1alpha1.QlikUserLookup{Field: "name", Value: "alice"}}
		}, `spec.qlikCloud.userLookup.field: Unsupported value: "name"`),
		Entry("with an empty Bold BI email", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.Qrvey, s.BoldBI = nil, &v1alpha1.BoldBIParams{}
		}, "spec.boldBI.email in body should be at least 1 chars long"),
		Entry("with a rollout restart target of an unknown kind", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.RolloutRestartTargets = []v1alpha1.RolloutRestartTarget{{Kind: "Pod", Name: "web"}}
		}, `spec.rolloutRestartTargets[0].kind: Unsupported value: "Pod"`),
		Entry("with a Secret label value the API server would refuse", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.SecretLabels = map[string]v1alpha1.LabelValue{"team": "not a valid label value!"}
		}, "spec.secretLabels.team in body should match"),
		Entry("with a Secret label value over 63 characters", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.SecretLabels = map[string]v1alpha1.LabelValue{"team": v1alpha1.LabelValue(strings.Repeat("a", 64))}
		}, "spec.secretLabels.team: Too long"),
		Entry("with a Secret label key that is not a qualified name", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.SecretLabels = map[string]v1alpha1.LabelValue{"team name": "a"}
		}, "secretLabels keys must be qualified names"),
		Entry("with a Secret label key whose name is over 63 characters", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.SecretLabels = map[string]v1alpha1.LabelValue{"example.com/" + strings.Repeat("a", 64): "a"}
		}, "secretLabels keys must be qualified names"),
		Entry("with a Secret label under the operator's prefix", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.SecretLabels = map[string]v1alpha1.LabelValue{v1alpha1.ShardLabel: "a"}
		}, "secretLabels may not use the reserved prefixes"),
		Entry("with the managed-by Secret label the operator sets", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.SecretLabels = map[string]v1alpha1.LabelValue{v1alpha1.ManagedByLabel: "someone-else"}
		}, "secretLabels may not use the reserved prefixes"),
		Entry("with a Secret label under the kubernetes.io/ prefix", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.SecretLabels = map[string]v1alpha1.LabelValue{"kubernetes.io/metadata.name": "a"}
		}, "secretLabels may not use the reserved prefixes"),
		Entry("with more than 32 Secret labels", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.SecretLabels = map[string]v1alpha1.LabelValue{}
			for i := range 33 {
				s.SecretLabels[fmt.Sprintf("l%d", i)] = "a"
			}
		}, "spec.secretLabels: Too many"),
		Entry("with a Secret annotation key that is not a qualified name", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.SecretAnnotations = map[string]string{"a/b/c": "x"}
		}, "secretAnnotations keys must be qualified names"),
		Entry("with a Secret annotation under the operator's prefix", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.SecretAnnotations = map[string]string{v1alpha1.ExpiresAtAnnotation: "2099-01-01T00:00:00Z"}
		}, "secretAnnotations may not use the reserved prefixes"),
		Entry("with a Secret annotation under a subdomain of the operator's prefix", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.SecretAnnotations = map[string]string{"x.embedtokens.io/owner": "x"}
		}, "secretAnnotations may not use the reserved prefixes"),
		Entry("with a Secret annotation under the k8s.io/ prefix", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.SecretAnnotations = map[string]string{"k8s.io/x": "x"}
		}, "secretAnnotations may not use the reserved prefixes"),
		Entry("with Secret annotations over 64 KiB together", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.SecretAnnotations = map[string]string{"a": strings.Repeat("x", 40<<10), "b": strings.Repeat("x", 25<<10)}
		}, "secretAnnotations may hold at most 64 KiB of keys and values together"),
		Entry("with more than 32 Secret annotations", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.SecretAnnotations = map[string]string{}
			for i := range 33 {
				s.SecretAnnotations[fmt.Sprintf("a%d", i)] = "x"
			}
		}, "spec.secretAnnotations: Too many"),
	)

	It("accepts Secret labels and annotations the API server accepts on a Secret", func() {
		spec := validRequest()
		spec.Suspend = true
		spec.SecretLabels = map[string]v1alpha1.LabelValue{"team": "payments", "app.kubernetes.io/part-of": "shop", "example.com/tier": "", "l": "A.b-c_9"}
		spec.SecretAnnotations = map[string]string{"example.com/Owner": "Payments team <pay@example.com>", "note": strings.Repeat("x", 60<<10)}
		etr := &v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "r"}, Spec: spec}
		Expect(k8sClient.Create(context.Background(), etr)).To(Succeed())
		labels := map[string]string{}
		for k, v := range spec.SecretLabels {
			labels[k] = string(v)
		}
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "labels", Labels: labels, Annotations: spec.SecretAnnotations}}
		Expect(k8sClient.Create(context.Background(), secret)).To(Succeed(), "the API server takes them on a Secret too")
	})

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
