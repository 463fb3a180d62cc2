package controller_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

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

var _ = Describe("EmbedTokenTemplate status", func() {
	ctx := context.Background()

	It("is Ready, and Current for kstatus, when the provider admits the template and every parameter compiles", func() {
		f := newFixtureWithProvider(ctx)
		ett := harness.QrveyTemplate(f.ns, "dash")
		Expect(k8sClient.Create(ctx, ett)).To(Succeed())
		Eventually(templateCondition(ctx, ett, v1alpha1.ConditionReady)).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonValid))
		Eventually(kstatusOf(ctx, ett)).Should(Equal(status.CurrentStatus))
	})

	It("stalls on a missing provider and becomes Ready when it is created", func() {
		f := newFixture(ctx)
		f.createCredentials(ctx)
		ett := harness.QrveyTemplate(f.ns, "early")
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
		ett := harness.QrveyTemplate(f.ns, "mismatch")
		ett.Spec.Qrvey, ett.Spec.JWT = nil, &v1alpha1.JWTParams{}
		ett.Spec.Parameters[0].Path = "jwt.subject"
		Expect(k8sClient.Create(ctx, ett)).To(Succeed())
		Eventually(templateCondition(ctx, ett, v1alpha1.ConditionReady)).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonVendorMismatch))
		Expect(templateCondition(ctx, ett, v1alpha1.ConditionStalled)(Default).Reason).To(Equal(v1alpha1.ReasonVendorMismatch))
	})

	It("stalls on a parameter whose path indexes an item the template does not hold, and on a validation that does not compile", func() {
		f := newFixtureWithProvider(ctx)
		ett := harness.QrveyTemplate(f.ns, "badparams")
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
		ett := harness.QrveyTemplate(f.ns, "rules")
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
		ett := harness.QrveyTemplate(f.ns, "cluster")
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
