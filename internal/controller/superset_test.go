package controller_test

import (
	"context"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

const supersetPassword = "superset-envtest-pass"

// supersetRequest asks for a guest token for guest i on dashboard-i, with
// one rule on every dataset and one on dataset i+1.
func supersetRequest(ns string, i int) *v1alpha1.EmbedTokenRequest {
	dataset := int64(i + 1)
	return &v1alpha1.EmbedTokenRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("guest-%d", i)},
		Spec: v1alpha1.EmbedTokenRequestSpec{
			ProviderRef: v1alpha1.ProviderRef{Name: "superset"},
			VendorParams: v1alpha1.VendorParams{Superset: &v1alpha1.SupersetParams{
				User:      v1alpha1.SupersetGuestUser{Username: fmt.Sprintf("guest-%d", i), FirstName: "Guest", LastName: fmt.Sprint(i)},
				Resources: []v1alpha1.SupersetResource{{ID: fmt.Sprintf("dashboard-%d", i)}},
				RLS: []v1alpha1.SupersetRLSRule{{Clause: fmt.Sprintf("tenant_id = 'tenant-%d'", i)},
					{Clause: "region = 'EU'", Dataset: &dataset}},
			}},
		},
	}
}

// wantGuestBody is the body Superset must receive for supersetRequest(i).
func wantGuestBody(i int) map[string]any {
	return map[string]any{
		"user":      map[string]any{"username": fmt.Sprintf("guest-%d", i), "first_name": "Guest", "last_name": fmt.Sprint(i)},
		"resources": []any{map[string]any{"type": "dashboard", "id": fmt.Sprintf("dashboard-%d", i)}},
		"rls": []any{map[string]any{"clause": fmt.Sprintf("tenant_id = 'tenant-%d'", i)},
			map[string]any{"clause": "region = 'EU'", "dataset": float64(i + 1)}},
	}
}

// guestBodies are the bodies of the simulator's successful guest token calls.
func guestBodies(sim *vendorsim.Server) []map[string]any {
	var out []map[string]any
	for _, c := range sim.Calls() {
		if c.Path == vendorsim.SupersetGuestTokenPath && c.Status == 200 {
			out = append(out, c.Body)
		}
	}
	return out
}

var _ = Describe("Superset", func() {
	var (
		ctx context.Context
		ns  string
		sim *vendorsim.Server
	)
	BeforeEach(func() {
		ctx = context.Background()
		ns = "superset-" + rand.String(6)
		sim = vendorsim.New(vendorsim.Options{Superset: vendorsim.SupersetOptions{Password: supersetPassword}})
		Expect(sim.Start()).To(Succeed())
		DeferCleanup(sim.Close)
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "superset-credentials"},
			StringData: map[string]string{"password": supersetPassword + "\n"}})).To(Succeed())
		Expect(k8sClient.Create(ctx, &v1alpha1.EmbedProvider{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "superset"},
			Spec: v1alpha1.EmbedProviderSpec{AllowInsecureHTTP: true, VendorConfig: v1alpha1.VendorConfig{Superset: &v1alpha1.SupersetProvider{
				URL: sim.URL(), Username: vendorsim.DefaultSupersetUsername,
				PasswordSecretRef: v1alpha1.SecretKeySelector{Name: "superset-credentials", Key: "password"}}}},
		})).To(Succeed())
	})

	It("issues ten guest tokens on one provider with a single login", func() {
		const n = 10
		start := time.Now()
		for i := range n {
			Expect(k8sClient.Create(ctx, supersetRequest(ns, i))).To(Succeed())
		}
		for i := range n {
			etr := supersetRequest(ns, i)
			token := waitForToken(ctx, etr, "")
			Expect(sim.Validate(token)).To(Equal(vendorsim.ValidityValid))

			claims := jwt.MapClaims{}
			_, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return []byte(vendorsim.SupersetGuestSigningKey), nil })
			Expect(err).NotTo(HaveOccurred())
			Expect(claims["user"]).To(HaveKeyWithValue("username", etr.Name))
			exp, _ := claims.GetExpirationTime()
			stored := harness.TokenOf(secretOf(ctx, etr)(Default))
			Expect(stored.ExpiresAt).To(BeTemporally("==", exp.Time), "the Secret's expiresAt is the guest token's exp")
			Expect(stored.ExpiresAt).To(BeTemporally("~", start.Add(vendorsim.DefaultSupersetGuestTokenLifetime), 30*time.Second))
		}

		Expect(sim.SupersetLogins()).To(Equal(1))
		logins := 0
		for _, c := range sim.Calls() {
			if c.Path == vendorsim.SupersetLoginPath {
				logins++
				Expect(c.Body).To(Equal(map[string]any{"username": vendorsim.DefaultSupersetUsername, "password": supersetPassword,
					"provider": "db", "refresh": true}))
			}
		}
		Expect(logins).To(Equal(1), "no login attempt failed or was repeated")

		bodies := guestBodies(sim)
		Expect(bodies).To(HaveLen(n), "one guest token per request")
		want := make([]any, n)
		for i := range n {
			want[i] = wantGuestBody(i)
		}
		Expect(bodies).To(ConsistOf(want...))
	})

	It("logs in again once when Superset forgets the cached login", func() {
		etr := supersetRequest(ns, 0)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		first := waitForToken(ctx, etr, "")
		Expect(sim.SupersetLogins()).To(Equal(1))

		sim.ExpireSupersetLogins() // as a Superset restart with a new secret key does
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(etr), etr)).To(Succeed())
		etr.Annotations = map[string]string{v1alpha1.RefreshAnnotation: "after-restart"}
		Expect(k8sClient.Update(ctx, etr)).To(Succeed())

		next := waitForToken(ctx, etr, harness.Token{Value: first}.Digest())
		Expect(sim.Validate(next)).To(Equal(vendorsim.ValidityValid))
		Expect(sim.SupersetLogins()).To(Equal(2))
		Eventually(readyCondition(ctx, etr)).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonTokenRefreshed))
	})
})

// Superset's admission rules, on the real API server.
var _ = Describe("Superset admission", func() {
	var ns string
	BeforeEach(func() {
		ns = "superset-v-" + rand.String(6)
		Expect(k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	})
	provider := func() v1alpha1.EmbedProviderSpec {
		return v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{Superset: &v1alpha1.SupersetProvider{
			URL: "https://superset.example.com", Username: "embed-service",
			PasswordSecretRef: v1alpha1.SecretKeySelector{Name: "creds", Key: "password"}}}}
	}

	It("defaults the auth provider and the resource type", func() {
		p := &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"}, Spec: provider()}
		Expect(k8sClient.Create(context.Background(), p)).To(Succeed())
		Expect(p.Spec.Superset.Provider).To(Equal("db"))
		etr := supersetRequest(ns, 0)
		etr.Spec.Superset.Resources[0].Type = ""
		Expect(k8sClient.Create(context.Background(), etr)).To(Succeed())
		Expect(etr.Spec.Superset.Resources[0].Type).To(Equal("dashboard"))
	})

	DescribeTable("rejects an invalid provider",
		func(cluster bool, mutate func(*v1alpha1.EmbedProviderSpec), message string) {
			spec := provider()
			mutate(&spec)
			var obj client.Object = &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"}, Spec: spec}
			if cluster {
				obj = &v1alpha1.ClusterEmbedProvider{ObjectMeta: metav1.ObjectMeta{Name: ns}, Spec: v1alpha1.ClusterEmbedProviderSpec{EmbedProviderSpec: spec}}
			}
			Expect(k8sClient.Create(context.Background(), obj)).To(MatchError(ContainSubstring(message)))
		},
		Entry("http:// without allowInsecureHTTP", false, func(s *v1alpha1.EmbedProviderSpec) { s.Superset.URL = "http://superset.example.com" },
			"vendor URLs must use https:// unless allowInsecureHTTP is true"),
		Entry("a URL that is not one", false, func(s *v1alpha1.EmbedProviderSpec) { s.Superset.URL = "superset.example.com" },
			"url must be an absolute http(s) URL"),
		Entry("an unknown auth provider", false, func(s *v1alpha1.EmbedProviderSpec) { s.Superset.Provider = "oauth" },
			`spec.superset.provider: Unsupported value: "oauth"`),
		Entry("no username", false, func(s *v1alpha1.EmbedProviderSpec) { s.Superset.Username = "" }, "spec.superset.username"),
		Entry("a second vendor block", false, func(s *v1alpha1.EmbedProviderSpec) {
			s.Qrvey = &v1alpha1.QrveyProvider{URL: "https://q.example.com", APIKeySecretRef: v1alpha1.SecretKeySelector{Name: "c", Key: "k"}}
		}, "exactly one vendor block must be set"),
		Entry("a ClusterEmbedProvider's password without namespace", true, func(*v1alpha1.EmbedProviderSpec) {},
			"every Secret reference of a ClusterEmbedProvider must set namespace"),
	)

	DescribeTable("rejects an invalid request",
		func(mutate func(*v1alpha1.EmbedTokenRequestSpec), message string) {
			etr := supersetRequest(ns, 0)
			mutate(&etr.Spec)
			Expect(k8sClient.Create(context.Background(), etr)).To(MatchError(ContainSubstring(message)))
		},
		Entry("no resources", func(s *v1alpha1.EmbedTokenRequestSpec) { s.Superset.Resources = nil }, "spec.superset.resources"),
		Entry("a chart", func(s *v1alpha1.EmbedTokenRequestSpec) { s.Superset.Resources[0].Type = "chart" }, `Unsupported value: "chart"`),
		Entry("33 resources", func(s *v1alpha1.EmbedTokenRequestSpec) {
			s.Superset.Resources = make([]v1alpha1.SupersetResource, 33)
			for i := range s.Superset.Resources {
				s.Superset.Resources[i].ID = fmt.Sprint(i)
			}
		}, "spec.superset.resources: Too many"),
		Entry("no guest username", func(s *v1alpha1.EmbedTokenRequestSpec) { s.Superset.User.Username = "" }, "spec.superset.user.username"),
		Entry("an empty clause", func(s *v1alpha1.EmbedTokenRequestSpec) { s.Superset.RLS[0].Clause = "" }, "spec.superset.rls[0].clause"),
		Entry("dataset 0", func(s *v1alpha1.EmbedTokenRequestSpec) { s.Superset.RLS[1].Dataset = new(int64) }, "spec.superset.rls[1].dataset"),
		Entry("a second parameter block", func(s *v1alpha1.EmbedTokenRequestSpec) { s.JWT = &v1alpha1.JWTParams{Subject: "alice"} },
			"exactly one vendor parameter block must be set"),
	)
})
