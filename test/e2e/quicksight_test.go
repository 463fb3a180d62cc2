//go:build e2e

package e2e

import (
	"cmp"
	"context"
	"net"
	"net/http"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/servingcert"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/pkg/tokenclient"
)

// The token endpoint as config/local serves it: on the host's loopback,
// with a certificate for the Service's name.
const (
	localTokenEndpointAddr = "127.0.0.1:8443"
	tokenEndpointService   = "embed-token-operator-token-endpoint"
	tokenEndpointAudience  = "embedtokens.io"
)

// quickSightKeys are the access keys the simulator started by
// hack/local-cluster accepts: its defaults unless the environment
// overrides them, as it does for the simulator.
func quickSightKeys() (id, secret string) {
	return cmp.Or(os.Getenv("VENDORSIM_QUICKSIGHT_ACCESS_KEY_ID"), vendorsim.DefaultQuickSightAccessKeyID),
		cmp.Or(os.Getenv("VENDORSIM_QUICKSIGHT_SECRET_ACCESS_KEY"), vendorsim.DefaultQuickSightSecretAccessKey)
}

// endpointCaller is a ServiceAccount of ns allowed to call template, and a
// token endpoint client acting as it.
func endpointCaller(ctx context.Context, template string) *tokenclient.Client {
	sa := &corev1.ServiceAccount{ObjectMeta: objectMeta(ns, "qs-backend")}
	Expect(k8s.Create(ctx, sa)).To(Succeed())
	Expect(k8s.Create(ctx, &rbacv1.Role{ObjectMeta: objectMeta(ns, "qs-backend"), Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"embedtokentemplates/token"},
		ResourceNames: []string{template}, Verbs: []string{"create"}}}})).To(Succeed())
	Expect(k8s.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: objectMeta(ns, "qs-backend"),
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "qs-backend"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: ns}}})).To(Succeed())

	ca := &corev1.ConfigMap{}
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: servingcert.ConfigMapName}, ca)).To(Succeed())
		g.Expect(ca.Data[servingcert.ConfigMapKey]).NotTo(BeEmpty())
	}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed(), "the operator publishes its CA in namespaces with a template")

	dialer := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tokenclient.New(tokenclient.Options{
		Endpoint: "https://" + tokenEndpointService + "." + operatorNamespace + ".svc:8443",
		CAData:   []byte(ca.Data[servingcert.ConfigMapKey]),
		TokenSource: func(ctx context.Context) (string, error) {
			tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
				Audiences: []string{tokenEndpointAudience}, ExpirationSeconds: ptr.To[int64](600)}}
			if err := k8s.SubResource("token").Create(ctx, sa, tr); err != nil {
				return "", err
			}
			return tr.Status.Token, nil
		},
		HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, localTokenEndpointAddr)
			}}},
	})
	Expect(err).NotTo(HaveOccurred())
	return c
}

var _ = Describe("QuickSight through the token endpoint on a real node", func() {
	It("answers every call with a new embed URL, each of which opens once", func(ctx SpecContext) {
		id, secret := quickSightKeys()
		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: objectMeta(ns, "quicksight-credentials"),
			StringData: map[string]string{"accessKeyID": id, "secretAccessKey": secret}})).To(Succeed())
		ref := func(key string) v1alpha1.SecretKeySelector {
			return v1alpha1.SecretKeySelector{Name: "quicksight-credentials", Key: key}
		}
		Expect(k8s.Create(ctx, &v1alpha1.EmbedProvider{ObjectMeta: objectMeta(ns, "quicksight"),
			Spec: v1alpha1.EmbedProviderSpec{AllowInsecureHTTP: true, VendorConfig: v1alpha1.VendorConfig{QuickSight: &v1alpha1.QuickSightProvider{
				Region: vendorsim.DefaultQuickSightRegion, AWSAccountID: vendorsim.DefaultQuickSightAccountID, Endpoint: cfg.simURL,
				Credentials: v1alpha1.AWSCredentials{Secret: &v1alpha1.AWSSecretCredentials{
					AccessKeyIDSecretRef: ref("accessKeyID"), SecretAccessKeySecretRef: ref("secretAccessKey")}}}}},
		})).To(Succeed())
		tmpl := &v1alpha1.EmbedTokenTemplate{ObjectMeta: objectMeta(ns, "quicksight-per-user"),
			Spec: v1alpha1.EmbedTokenTemplateSpec{
				ProviderRef: v1alpha1.ProviderRef{Name: "quicksight"},
				VendorParams: v1alpha1.VendorParams{QuickSight: &v1alpha1.QuickSightParams{
					RegisteredUser: &v1alpha1.QuickSightRegisteredUser{UserName: "filled-per-call",
						Experience: v1alpha1.QuickSightRegisteredExperience{Dashboard: &v1alpha1.QuickSightDashboard{InitialDashboardID: "sales-7"}}},
					SessionLifetimeInMinutes: ptr.To[int64](15)}},
				Parameters: []v1alpha1.TemplateParameter{{Name: "user", Path: "quickSight.registeredUser.userName"}},
				Cache:      v1alpha1.TemplateCacheNone,
			}}
		Expect(k8s.Create(ctx, tmpl)).To(Succeed())
		Eventually(func(g Gomega) {
			cur := &v1alpha1.EmbedTokenTemplate{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(tmpl), cur)).To(Succeed())
			ready := meta(cur.Status.Conditions, v1alpha1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), "Ready: %s %s", ready.Reason, ready.Message)
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())

		c := endpointCaller(ctx, tmpl.Name)
		By("calling twice for one user: two vendor calls, two URLs")
		params := map[string]string{"user": "alice"}
		first, err := c.Fetch(ctx, ns, tmpl.Name, params)
		Expect(err).NotTo(HaveOccurred())
		second, err := c.Fetch(ctx, ns, tmpl.Name, params)
		Expect(err).NotTo(HaveOccurred())
		Expect(second.Value).NotTo(Equal(first.Value), "a single-use URL is never shared")
		Expect(first.ExpiresAt).To(BeTemporally("~", time.Now().Add(5*time.Minute), time.Minute),
			"expiresAt is the end of the URL's redemption window")
		Expect(simValidity(ctx, second.Value)).To(Equal(string(vendorsim.ValidityValid)))

		By("opening the first URL twice: QuickSight starts one session")
		for _, want := range []int{http.StatusOK, http.StatusUnauthorized} {
			resp, err := http.Get(first.Value)
			Expect(err).NotTo(HaveOccurred())
			Expect(resp.Body.Close()).To(Succeed())
			Expect(resp.StatusCode).To(Equal(want))
		}
	}, NodeTimeout(4*time.Minute))
})
