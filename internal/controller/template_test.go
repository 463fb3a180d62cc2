package controller_test

import (
	"context"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// qrveyTemplate is a template of the fixture's Qrvey provider whose
// parameter user fills qrvey.userID.
func qrveyTemplate(ns, name string) *v1alpha1.EmbedTokenTemplate {
	return &v1alpha1.EmbedTokenTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.EmbedTokenTemplateSpec{ProviderRef: v1alpha1.ProviderRef{Name: "qrvey"},
			VendorParams: v1alpha1.VendorParams{Qrvey: &v1alpha1.QrveyParams{UserID: "placeholder", AppID: "app-1"}},
			Parameters: []v1alpha1.TemplateParameter{{Name: "user", Path: "qrvey.userID",
				Validation: &v1alpha1.ParameterValidation{Expression: "value.startsWith(caller.namespace + '/')"}}}}}
}

// templateCondition reads a condition of the template as the API server
// holds it; a missing condition has status Unknown.
func templateCondition(ctx context.Context, ett *v1alpha1.EmbedTokenTemplate, condType string) func(g Gomega) metav1.Condition {
	return func(g Gomega) metav1.Condition {
		cur := &v1alpha1.EmbedTokenTemplate{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(ett), cur)).To(Succeed())
		g.Expect(cur.Status.ObservedGeneration).To(Equal(cur.Generation))
		if c := meta.FindStatusCondition(cur.Status.Conditions, condType); c != nil {
			return *c
		}
		return metav1.Condition{Type: condType, Status: metav1.ConditionUnknown}
	}
}

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
			ett := qrveyTemplate(ns, "bad")
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

var _ = Describe("EmbedTokenTemplate status", func() {
	ctx := context.Background()

	It("is Ready, and Current for kstatus, when the provider admits the template and every parameter compiles", func() {
		f := newFixtureWithProvider(ctx)
		ett := qrveyTemplate(f.ns, "dash")
		Expect(k8sClient.Create(ctx, ett)).To(Succeed())
		Eventually(templateCondition(ctx, ett, v1alpha1.ConditionReady)).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonValid))
		Eventually(kstatusOf(ctx, ett)).Should(Equal(status.CurrentStatus))
	})

	It("stalls on a missing provider and becomes Ready when it is created", func() {
		f := newFixture(ctx)
		f.createCredentials(ctx)
		ett := qrveyTemplate(f.ns, "early")
		Expect(k8sClient.Create(ctx, ett)).To(Succeed())
		Eventually(templateCondition(ctx, ett, v1alpha1.ConditionStalled)).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonProviderNotFound))
		Expect(templateCondition(ctx, ett, v1alpha1.ConditionReady)(Default)).To(haveReason(metav1.ConditionFalse, v1alpha1.ReasonProviderNotFound))
		Expect(kstatusOf(ctx, ett)(Default)).To(Equal(status.FailedStatus))

		f.createProvider(ctx)
		Eventually(templateCondition(ctx, ett, v1alpha1.ConditionReady)).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonValid))
		Expect(templateCondition(ctx, ett, v1alpha1.ConditionStalled)(Default).Status).To(Equal(metav1.ConditionUnknown), "Stalled is removed")
	})

	It("stalls on a vendor block another than the provider's", func() {
		f := newFixtureWithProvider(ctx)
		ett := qrveyTemplate(f.ns, "mismatch")
		ett.Spec.Qrvey, ett.Spec.JWT = nil, &v1alpha1.JWTParams{}
		ett.Spec.Parameters[0].Path = "jwt.subject"
		Expect(k8sClient.Create(ctx, ett)).To(Succeed())
		Eventually(templateCondition(ctx, ett, v1alpha1.ConditionReady)).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonVendorMismatch))
		Expect(templateCondition(ctx, ett, v1alpha1.ConditionStalled)(Default).Reason).To(Equal(v1alpha1.ReasonVendorMismatch))
	})

	It("stalls on a parameter whose path indexes an item the template does not hold, and on a validation that does not compile", func() {
		f := newFixtureWithProvider(ctx)
		ett := qrveyTemplate(f.ns, "badparams")
		ett.Spec.Parameters = append(ett.Spec.Parameters, v1alpha1.TemplateParameter{Name: "perm", Path: "qrvey.permissions[2].value"})
		ett.Spec.Parameters[0].Validation.Expression = "value"
		Expect(k8sClient.Create(ctx, ett)).To(Succeed())
		Eventually(templateCondition(ctx, ett, v1alpha1.ConditionReady)).Should(And(
			haveReason(metav1.ConditionFalse, v1alpha1.ReasonInvalidParameters),
			HaveField("Message", And(ContainSubstring("spec.parameters[0] (\"user\"): validation: must evaluate to bool"),
				ContainSubstring("spec.parameters[1] (\"perm\")")))))
		Expect(templateCondition(ctx, ett, v1alpha1.ConditionStalled)(Default).Reason).To(Equal(v1alpha1.ReasonInvalidParameters))

		patchObject(ctx, ett, func(t *v1alpha1.EmbedTokenTemplate) {
			t.Spec.Parameters = t.Spec.Parameters[:1]
			t.Spec.Parameters[0].Validation.Expression = "value != ''"
		})
		Eventually(templateCondition(ctx, ett, v1alpha1.ConditionReady)).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonValid))
	})

	It("stalls while the provider's requestValidations do not compile, and is not denied by them for its placeholders", func() {
		f := newFixture(ctx)
		f.createCredentials(ctx)
		spec := f.providerSpec()
		spec.RequestValidations = []v1alpha1.RequestValidation{{Expression: "object.spec.qrvey.userID"}}
		f.createNamedProvider(ctx, "qrvey", spec)
		ett := qrveyTemplate(f.ns, "rules")
		Expect(k8sClient.Create(ctx, ett)).To(Succeed())
		Eventually(templateCondition(ctx, ett, v1alpha1.ConditionReady)).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonProviderInvalid))

		By("fixing the rule into one the placeholder fails: each filled call is checked, not the template")
		patchObject(ctx, &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "qrvey"}}, func(p *v1alpha1.EmbedProvider) {
			p.Spec.RequestValidations[0].Expression = "object.spec.qrvey.userID.startsWith(object.metadata.namespace + '/')"
		})
		Eventually(templateCondition(ctx, ett, v1alpha1.ConditionReady)).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonValid))
	})

	It("stalls when a ClusterEmbedProvider's namespaceSelector does not admit the namespace", func() {
		f := newFixture(ctx)
		f.createCredentials(ctx)
		cp := createClusterProvider(ctx, "tpl-"+f.ns, f.clusterSpec(), &metav1.LabelSelector{MatchLabels: map[string]string{"tenant": f.ns}})
		ett := qrveyTemplate(f.ns, "cluster")
		ett.Spec.ProviderRef = v1alpha1.ProviderRef{Kind: "ClusterEmbedProvider", Name: cp.Name}
		Expect(k8sClient.Create(ctx, ett)).To(Succeed())
		Eventually(templateCondition(ctx, ett, v1alpha1.ConditionReady)).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonNamespaceNotAllowed))

		By("changing the provider's selector, which the template reconciler watches")
		f.labelNamespace(ctx, map[string]string{"team": f.ns})
		patchObject(ctx, cp, func(p *v1alpha1.ClusterEmbedProvider) {
			p.Spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": f.ns}}
		})
		Eventually(templateCondition(ctx, ett, v1alpha1.ConditionReady)).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonValid))
	})
})
