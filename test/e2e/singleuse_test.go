//go:build e2e

package e2e

import (
	"cmp"
	"context"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/servingcert"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/pkg/tokenclient"
)

// tokenEndpoint is the token endpoint as the test process reaches it: the
// operator runs with host networking in config/local, and its serving
// certificate names 127.0.0.1.
const tokenEndpoint = "https://127.0.0.1:8443"

// singleUseVendor is one vendor whose tokens are redeemed once: how to
// configure it against the simulator's default credentials and how a
// browser redeems a token there.
type singleUseVendor struct {
	name   string
	secret string
	// data holds the credential Secret's other keys, if any.
	data     map[string]string
	provider func(secretRef v1alpha1.SecretKeySelector) v1alpha1.VendorConfig
	template v1alpha1.VendorParams
	path     string
	redeem   func(token string) string
}

var singleUseVendors = []singleUseVendor{
	{
		name: "looker", secret: vendorsim.DefaultLookerEmbedSecret,
		provider: func(ref v1alpha1.SecretKeySelector) v1alpha1.VendorConfig {
			return v1alpha1.VendorConfig{Looker: &v1alpha1.LookerProvider{URL: cfg.simURL, EmbedSecretSecretRef: ref}}
		},
		template: v1alpha1.VendorParams{Looker: &v1alpha1.LookerParams{TargetPath: "/embed/dashboards/42", ExternalUserID: "placeholder",
			Permissions: []string{"access_data"}, Models: []string{"sales"}}},
		path:   "looker.externalUserID",
		redeem: func(token string) string { return token },
	},
	{
		name: "sigma", secret: vendorsim.DefaultSigmaSecret,
		provider: func(ref v1alpha1.SecretKeySelector) v1alpha1.VendorConfig {
			return v1alpha1.VendorConfig{Sigma: &v1alpha1.SigmaProvider{ClientID: vendorsim.DefaultSigmaClientID, SecretSecretRef: ref}}
		},
		template: v1alpha1.VendorParams{Sigma: &v1alpha1.SigmaParams{Email: "placeholder@example.com"}},
		path:     "sigma.email",
		redeem: func(token string) string {
			return cfg.simURL + vendorsim.SigmaEmbedPath + "Sales-1a2b?:jwt=" + url.QueryEscape(token) + "&:embed=true"
		},
	},
	{
		name: "tableau", secret: vendorsim.DefaultTableauSecretValue,
		provider: func(ref v1alpha1.SecretKeySelector) v1alpha1.VendorConfig {
			return v1alpha1.VendorConfig{JWT: &v1alpha1.JWTProvider{Algorithm: "HS256", SigningKeySecretRef: ref,
				KeyID: vendorsim.DefaultTableauSecretID, Issuer: vendorsim.DefaultTableauClientID, Audience: "tableau",
				MaxLifetime: &metav1.Duration{Duration: 9 * time.Minute}, SingleUse: true}}
		},
		template: v1alpha1.VendorParams{JWT: &v1alpha1.JWTParams{Subject: "placeholder",
			Claims: rawJSON(`{"scp":["tableau:views:embed"]}`)}},
		path: "jwt.subject",
		redeem: func(token string) string {
			return cfg.simURL + vendorsim.TableauSessionPath + "?token=" + url.QueryEscape(token)
		},
	},
	{
		name: "quicksight", secret: quickSightSecretKey(), data: map[string]string{"accessKeyID": quickSightKeyID()},
		provider: func(ref v1alpha1.SecretKeySelector) v1alpha1.VendorConfig {
			return v1alpha1.VendorConfig{QuickSight: &v1alpha1.QuickSightProvider{
				Region: vendorsim.DefaultQuickSightRegion, AWSAccountID: vendorsim.DefaultQuickSightAccountID, Endpoint: cfg.simURL,
				Credentials: v1alpha1.AWSCredentials{Secret: &v1alpha1.AWSSecretCredentials{
					AccessKeyIDSecretRef: v1alpha1.SecretKeySelector{Name: ref.Name, Key: "accessKeyID"}, SecretAccessKeySecretRef: ref}}}}
		},
		template: v1alpha1.VendorParams{QuickSight: &v1alpha1.QuickSightParams{
			RegisteredUser: &v1alpha1.QuickSightRegisteredUser{UserName: "placeholder",
				Experience: v1alpha1.QuickSightRegisteredExperience{Dashboard: &v1alpha1.QuickSightDashboard{InitialDashboardID: "sales-7"}}},
			SessionLifetimeInMinutes: ptr.To[int64](15)}},
		path:   "quickSight.registeredUser.userName",
		redeem: func(token string) string { return token },
	},
}

// quickSightKeyID and quickSightSecretKey are the access keys the
// simulator started by hack/local-cluster accepts: its defaults unless the
// environment overrides them, as it does for the simulator.
func quickSightKeyID() string {
	return cmp.Or(os.Getenv("VENDORSIM_QUICKSIGHT_ACCESS_KEY_ID"), vendorsim.DefaultQuickSightAccessKeyID)
}

func quickSightSecretKey() string {
	return cmp.Or(os.Getenv("VENDORSIM_QUICKSIGHT_SECRET_ACCESS_KEY"), vendorsim.DefaultQuickSightSecretAccessKey)
}

var _ = Describe("Single-use vendors through the token endpoint", Ordered, func() {
	const caller = "singleuse-backend"
	var endpoint *tokenclient.Client

	BeforeAll(func(ctx SpecContext) {
		By("letting a ServiceAccount call the token endpoint for the namespace's templates")
		Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: objectMeta(ns, caller)})).To(Succeed())
		Expect(k8s.Create(ctx, &rbacv1.Role{ObjectMeta: objectMeta(ns, caller), Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{v1alpha1.TokenSubresource}, Verbs: []string{"create"},
		}}})).To(Succeed())
		Expect(k8s.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: objectMeta(ns, caller),
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: caller},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: caller}},
		})).To(Succeed())
		for _, v := range singleUseVendors {
			createSingleUseVendor(ctx, v)
		}

		By("trusting the CA the operator publishes in the namespace")
		ca := &corev1.ConfigMap{}
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: servingcert.ConfigMapName}, ca)).To(Succeed())
			g.Expect(ca.Data[servingcert.ConfigMapKey]).NotTo(BeEmpty())
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
		var err error
		endpoint, err = tokenclient.New(tokenclient.Options{Endpoint: tokenEndpoint, CAData: []byte(ca.Data[servingcert.ConfigMapKey]),
			TokenSource: func(ctx context.Context) (string, error) { return mintCallerToken(ctx, caller) }})
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(3*time.Minute))

	for _, v := range singleUseVendors {
		It("serves "+v.name+" one new token per call, each redeemed once", func(ctx SpecContext) {
			Eventually(func(g Gomega) {
				tpl := &v1alpha1.EmbedTokenTemplate{}
				g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: v.name}, tpl)).To(Succeed())
				g.Expect(meta(tpl.Status.Conditions, "Ready")).NotTo(BeNil())
				g.Expect(meta(tpl.Status.Conditions, "Ready").Status).To(Equal(metav1.ConditionTrue))
			}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())

			params := map[string]string{"user": "alice@" + ns + ".example"}
			first, err := endpoint.Fetch(ctx, ns, v.name, params)
			Expect(err).NotTo(HaveOccurred())
			second, err := endpoint.Fetch(ctx, ns, v.name, params)
			Expect(err).NotTo(HaveOccurred())
			Expect(second.Digest).NotTo(Equal(first.Digest), "a single-use vendor's token was served twice")

			for _, tok := range []tokenclient.Token{first, second} {
				Expect(redeem(ctx, v.redeem(tok.Value))).To(Equal(http.StatusOK), "the first redemption opens a session")
				Expect(redeem(ctx, v.redeem(tok.Value))).To(Equal(http.StatusForbidden), "the vendor refuses a replay")
			}
		}, SpecTimeout(3*time.Minute))
	}
})

// createSingleUseVendor applies v's credential Secret, provider and a
// template whose one parameter, user, fills v.path; the template asks for
// a shared cache, which a single-use provider must override.
func createSingleUseVendor(ctx context.Context, v singleUseVendor) {
	By("creating the " + v.name + " provider and template")
	data := map[string]string{"secret": v.secret}
	maps.Copy(data, v.data)
	Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: objectMeta(ns, v.name+"-credentials"), StringData: data})).To(Succeed())
	ref := v1alpha1.SecretKeySelector{Name: v.name + "-credentials", Key: "secret"}
	Expect(k8s.Create(ctx, &v1alpha1.EmbedProvider{ObjectMeta: objectMeta(ns, v.name),
		Spec: v1alpha1.EmbedProviderSpec{VendorConfig: v.provider(ref), AllowInsecureHTTP: true}})).To(Succeed())
	Expect(k8s.Create(ctx, &v1alpha1.EmbedTokenTemplate{ObjectMeta: objectMeta(ns, v.name),
		Spec: v1alpha1.EmbedTokenTemplateSpec{
			ProviderRef:  v1alpha1.ProviderRef{Name: v.name},
			VendorParams: v.template,
			Lifetime:     &metav1.Duration{Duration: 5 * time.Minute},
			Cache:        v1alpha1.TemplateCacheShared,
			Parameters:   []v1alpha1.TemplateParameter{{Name: "user", Path: v.path, MaxLength: 256}},
		}})).To(Succeed())
}

// mintCallerToken asks the API server for a short-lived token of the
// ServiceAccount for the endpoint's audience, as a projected volume would.
func mintCallerToken(ctx context.Context, sa string) (string, error) {
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences: []string{v1alpha1.TokenEndpointAudience}, ExpirationSeconds: ptr.To[int64](600)}}
	if err := k8s.SubResource("token").Create(ctx, &corev1.ServiceAccount{ObjectMeta: objectMeta(ns, sa)}, tr); err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}

// redeem opens u as the browser would and returns the simulator's status.
func redeem(ctx context.Context, u string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	Expect(err).NotTo(HaveOccurred())
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }() // read-only
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func rawJSON(s string) *apiextensionsv1.JSON { return &apiextensionsv1.JSON{Raw: []byte(s)} }
