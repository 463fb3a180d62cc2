package admission_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// These specs apply Bold BI manifests that the vendor's own documentation
// uses to the real API server: admission must accept them.
var _ = Describe("Admission validation of Bold BI", func() {
	var ns string
	BeforeEach(func() {
		ns = "vb-" + rand.String(6)
		Expect(k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	})

	It("accepts Bold BI Cloud's empty siteIdentifier", func() {
		p := &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "boldbi-cloud"},
			Spec: v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{BoldBI: &v1alpha1.BoldBIProvider{
				ServerURL: "https://acme.boldbi.com/bi", SiteIdentifier: "",
				EmbedSecretSecretRef: v1alpha1.SecretKeySelector{Name: "creds", Key: "embedSecret"}}}}}
		Expect(k8sClient.Create(context.Background(), p)).To(Succeed())
		Expect(get(context.Background(), p).(*v1alpha1.EmbedProvider).Spec.BoldBI.SiteIdentifier).To(BeEmpty())
	})

	It("accepts numbers and booleans as values, and keeps them as written", func() {
		value := func(raw string) apiextensionsv1.JSON { return apiextensionsv1.JSON{Raw: []byte(raw)} }
		etr := &v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rls"},
			Spec: v1alpha1.EmbedTokenRequestSpec{ProviderRef: v1alpha1.ProviderRef{Name: "boldbi-cloud"}, Suspend: true,
				VendorParams: v1alpha1.VendorParams{BoldBI: &v1alpha1.BoldBIParams{Email: "alice@example.com",
					DashboardParameters: []v1alpha1.NameValue{{Name: "CustomerId", Value: value(`[1001,1002]`), Operator: "NOT IN"}},
					DatasourceFilters:   []v1alpha1.NameValue{{Name: "Active", Value: value(`true`)}}}}}}
		Expect(k8sClient.Create(context.Background(), etr)).To(Succeed())
		got := get(context.Background(), etr).(*v1alpha1.EmbedTokenRequest).Spec.BoldBI
		Expect(string(got.DashboardParameters[0].Value.Raw)).To(Equal(`[1001,1002]`))
		Expect(string(got.DatasourceFilters[0].Value.Raw)).To(Equal(`true`))
	})
})
