package admission_test

import (
	"context"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/yaml"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

var _ = Describe("EmbedTokenTemplate admission", func() {
	var ns string
	ctx := context.Background()
	BeforeEach(func() {
		ns = "ta-" + rand.String(6)
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	})

	It("accepts a path of every kind the vendor blocks hold", func() {
		for name, spec := range map[string]v1alpha1.EmbedTokenTemplateSpec{
			"qlik": {VendorParams: v1alpha1.VendorParams{QlikCloud: &v1alpha1.QlikCloudParams{UserLookup: &v1alpha1.QlikUserLookup{Value: "x"}}},
				Parameters: []v1alpha1.TemplateParameter{{Name: "user", Path: "qlikCloud.userLookup.value"}}},
			"powerbi": {VendorParams: v1alpha1.VendorParams{PowerBI: &v1alpha1.PowerBIParams{
				Datasets: []v1alpha1.PowerBIDataset{{ID: "cfafbeb1-8037-4d0c-896e-a46fb27ff229"}},
				Identities: []v1alpha1.PowerBIIdentity{{Username: "x", Roles: []string{"r"},
					Datasets: []string{"cfafbeb1-8037-4d0c-896e-a46fb27ff229"}}}}},
				Parameters: []v1alpha1.TemplateParameter{{Name: "user", Path: "powerBI.identities[0].username"},
					{Name: "role", Path: "powerBI.identities[0].roles[0]"}}},
			"jwt": {VendorParams: v1alpha1.VendorParams{JWT: &v1alpha1.JWTParams{}},
				Parameters: []v1alpha1.TemplateParameter{{Name: "user", Path: "jwt.subject"}, {Name: "tenant", Path: "jwt.claims.tenant"}}},
		} {
			spec.ProviderRef = v1alpha1.ProviderRef{Name: "p"}
			Expect(k8sClient.Create(ctx, &v1alpha1.EmbedTokenTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec})).
				To(Succeed(), name)
		}
	})

	It("accepts the sample", func() {
		raw, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", "embedtokens_v1alpha1_embedtokentemplate_qrvey.yaml"))
		Expect(err).NotTo(HaveOccurred())
		ett := &v1alpha1.EmbedTokenTemplate{}
		Expect(yaml.UnmarshalStrict(raw, ett)).To(Succeed())
		ett.Namespace = ns
		Expect(k8sClient.Create(ctx, ett)).To(Succeed())
	})

	DescribeTable("refuses a malformed template with a message that says why",
		func(edit func(*v1alpha1.EmbedTokenTemplate), message string) {
			ett := harness.QrveyTemplate(ns, "bad")
			edit(ett)
			err := k8sClient.Create(ctx, ett)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry("an unknown field", func(t *v1alpha1.EmbedTokenTemplate) { t.Spec.Parameters[0].Path = "qrvey.userName" },
			v1alpha1.TemplatePathRuleMessage),
		Entry("a path into another vendor's block", func(t *v1alpha1.EmbedTokenTemplate) { t.Spec.Parameters[0].Path = "boldBI.email" },
			v1alpha1.TemplatePathRuleMessage),
		Entry("a list without an index", func(t *v1alpha1.EmbedTokenTemplate) {
			t.Spec.Qrvey, t.Spec.Superset = nil, &v1alpha1.SupersetParams{User: v1alpha1.SupersetGuestUser{Username: "x"},
				Resources: []v1alpha1.SupersetResource{{ID: "d"}}}
			t.Spec.Parameters[0].Path = "superset.resources.id"
		}, v1alpha1.TemplatePathRuleMessage),
		Entry("an index with a leading zero, which would name an item twice", func(t *v1alpha1.EmbedTokenTemplate) {
			t.Spec.Qrvey.Permissions = &apiextensionsv1.JSON{Raw: []byte(`[{"a":"b"}]`)}
			t.Spec.Parameters[0].Path = "qrvey.permissions[00].a"
		}, "should match"),
		Entry("two parameters of one name", func(t *v1alpha1.EmbedTokenTemplate) {
			t.Spec.Parameters = append(t.Spec.Parameters, v1alpha1.TemplateParameter{Name: "user", Path: "qrvey.clientID"})
		}, "Duplicate value"),
		Entry("two parameters on one path", func(t *v1alpha1.EmbedTokenTemplate) {
			t.Spec.Parameters = append(t.Spec.Parameters, v1alpha1.TemplateParameter{Name: "other", Path: "qrvey.userID"})
		}, "each path may be filled by one parameter only"),
		Entry("two vendor blocks", func(t *v1alpha1.EmbedTokenTemplate) { t.Spec.JWT = &v1alpha1.JWTParams{} },
			"exactly one vendor parameter block must be set"),
		Entry("no vendor block", func(t *v1alpha1.EmbedTokenTemplate) { t.Spec.Qrvey, t.Spec.Parameters = nil, nil },
			"exactly one vendor parameter block must be set"),
	)
})
