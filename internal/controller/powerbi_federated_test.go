package controller_test

import (
	"context"
	"encoding/json"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

// apiServerFederation is the federated credential Entra ID would hold for
// the ServiceAccount namespace/name of the suite's API server: its
// service-account issuer, read from its OIDC discovery document, and its
// signing keys, read from /openid/v1/jwks.
func apiServerFederation(ctx context.Context, namespace, name string) *vendorsim.Federation {
	clientset, err := kubernetes.NewForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())
	discovery, err := clientset.RESTClient().Get().AbsPath("/.well-known/openid-configuration").DoRaw(ctx)
	Expect(err).NotTo(HaveOccurred())
	var doc struct {
		Issuer string `json:"issuer"`
	}
	Expect(json.Unmarshal(discovery, &doc)).To(Succeed())
	Expect(doc.Issuer).NotTo(BeEmpty())
	jwks, err := clientset.RESTClient().Get().AbsPath("/openid/v1/jwks").DoRaw(ctx)
	Expect(err).NotTo(HaveOccurred())
	return &vendorsim.Federation{Issuer: doc.Issuer, Subject: "system:serviceaccount:" + namespace + ":" + name, JWKS: jwks}
}

var _ = Describe("Power BI with a federated credential", func() {
	It("signs in to Entra ID with a token of the provider's ServiceAccount from the TokenRequest API, storing no secret", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		const identity = "powerbi-identity"
		sim := vendorsim.New(vendorsim.Options{PowerBIFederation: apiServerFederation(ctx, f.ns, identity)})
		Expect(sim.Start()).To(Succeed())
		DeferCleanup(sim.Close)
		Expect(k8sClient.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: identity}})).To(Succeed())

		spec := f.powerBIProviderSpec()
		spec.PowerBI.AuthorityURL, spec.PowerBI.APIURL = sim.URL(), sim.URL()
		spec.PowerBI.ClientSecretSecretRef = nil
		spec.PowerBI.ClientAssertion = &v1alpha1.ClientAssertion{ServiceAccountRef: v1alpha1.ServiceAccountReference{Name: identity}}
		f.createNamedProvider(ctx, "powerbi", spec)
		first := f.powerBIRequest("first", "alice@acme.example", 10*time.Minute)
		second := f.powerBIRequest("second", "bob@acme.example", 10*time.Minute)
		Expect(k8sClient.Create(ctx, first)).To(Succeed())
		Expect(k8sClient.Create(ctx, second)).To(Succeed())
		for _, etr := range []*v1alpha1.EmbedTokenRequest{first, second} {
			Expect(sim.Validate(waitForToken(ctx, etr, ""))).To(Equal(vendorsim.ValidityValid))
		}
		Expect(sim.PowerBIEntraCalls()).To(Equal(1), "one assertion signs in for both embed tokens")
		for _, c := range sim.Calls() {
			if vendorsim.IsPowerBIEntraCall(c) {
				Expect(c.Status).To(Equal(200))
				Expect(c.Body).To(HaveKeyWithValue("client_assertion_type", vendorsim.ClientAssertionType))
				Expect(c.Body).NotTo(HaveKey("client_secret"))
			}
		}
	})

	It("reports a ServiceAccount the trusted subject does not name as refused by Entra ID", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		sim := vendorsim.New(vendorsim.Options{PowerBIFederation: apiServerFederation(ctx, f.ns, "trusted")})
		Expect(sim.Start()).To(Succeed())
		DeferCleanup(sim.Close)
		Expect(k8sClient.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "untrusted"}})).To(Succeed())
		spec := f.powerBIProviderSpec()
		spec.PowerBI.AuthorityURL, spec.PowerBI.APIURL = sim.URL(), sim.URL()
		spec.PowerBI.ClientSecretSecretRef = nil
		spec.PowerBI.ClientAssertion = &v1alpha1.ClientAssertion{ServiceAccountRef: v1alpha1.ServiceAccountReference{Name: "untrusted"}}
		f.createNamedProvider(ctx, "powerbi", spec)
		etr := f.powerBIRequest("refused", "alice@acme.example", 10*time.Minute)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		Eventually(func() string { return readyReasonOf(get(ctx, etr).(*v1alpha1.EmbedTokenRequest)) }).Should(Equal(v1alpha1.ReasonVendorUnauthorized))
	})

	It("admits exactly one credential kind, and a ClusterEmbedProvider's ServiceAccount only with its namespace", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		both := f.powerBIProviderSpec()
		both.PowerBI.ClientAssertion = &v1alpha1.ClientAssertion{ServiceAccountRef: v1alpha1.ServiceAccountReference{Name: "sa"}}
		Expect(k8sClient.Create(ctx, &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "both"}, Spec: both})).
			To(MatchError(ContainSubstring("set exactly one of clientSecretSecretRef, clientAssertion and clientCertificate")))
		neither := f.powerBIProviderSpec()
		neither.PowerBI.ClientSecretSecretRef = nil
		Expect(k8sClient.Create(ctx, &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "neither"}, Spec: neither})).
			To(MatchError(ContainSubstring("set exactly one of clientSecretSecretRef, clientAssertion and clientCertificate")))
		oauth := v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{OAuth2: &v1alpha1.OAuth2Provider{
			TokenURL: "https://idp.example.com/token", ClientID: "c",
			ClientSecretSecretRef: &v1alpha1.SecretKeySelector{Name: "creds", Key: "secret"},
			ClientAssertion:       &v1alpha1.ClientAssertion{ServiceAccountRef: v1alpha1.ServiceAccountReference{Name: "sa"}}}}}
		Expect(k8sClient.Create(ctx, &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "oauth-both"}, Spec: oauth})).
			To(MatchError(ContainSubstring("set exactly one of clientSecretSecretRef, clientAssertion and clientCertificate")))

		federated := f.powerBIProviderSpec()
		federated.PowerBI.ClientSecretSecretRef = nil
		federated.PowerBI.ClientAssertion = &v1alpha1.ClientAssertion{ServiceAccountRef: v1alpha1.ServiceAccountReference{Name: "sa"}}
		cluster := &v1alpha1.ClusterEmbedProvider{ObjectMeta: metav1.ObjectMeta{Name: "powerbi-fed-" + f.ns},
			Spec: v1alpha1.ClusterEmbedProviderSpec{EmbedProviderSpec: federated}}
		Expect(k8sClient.Create(ctx, cluster)).To(MatchError(ContainSubstring("must set namespace")))
		cluster.Spec.PowerBI.ClientAssertion.ServiceAccountRef.Namespace = f.ns
		Expect(k8sClient.Create(ctx, cluster)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, cluster)).To(Succeed()) })

		certified := f.powerBIProviderSpec()
		certified.PowerBI.ClientSecretSecretRef = nil
		certified.PowerBI.ClientCertificate = &v1alpha1.ClientCertificate{
			CertificateSecretRef: v1alpha1.SecretKeySelector{Name: "powerbi-cert", Key: "tls.crt", Namespace: f.ns},
			PrivateKeySecretRef:  &v1alpha1.SecretKeySelector{Name: "powerbi-cert", Key: "tls.key"}}
		certCluster := &v1alpha1.ClusterEmbedProvider{ObjectMeta: metav1.ObjectMeta{Name: "powerbi-cert-" + f.ns},
			Spec: v1alpha1.ClusterEmbedProviderSpec{EmbedProviderSpec: certified}}
		Expect(k8sClient.Create(ctx, certCluster)).To(MatchError(ContainSubstring("must set namespace")), "the private key's reference lacks one")
	})
})
