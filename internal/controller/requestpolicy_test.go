package controller_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

const (
	tenantRule    = "object.spec.qrvey.clientID == namespaceObject.metadata.labels['tenant']"
	tenantMessage = "spec.qrvey.clientID must equal the namespace's tenant label"
)

// sharedQrveyProvider creates a ClusterEmbedProvider with f's credentials
// and the given rules, removed when the spec ends.
func (f *fixture) sharedQrveyProvider(ctx context.Context, rules ...v1alpha1.RequestValidation) *v1alpha1.ClusterEmbedProvider {
	spec := f.clusterSpec()
	spec.RequestValidations = rules
	return createClusterProvider(ctx, "policy-"+f.ns, spec, nil)
}

// tenantRequest asks the shared provider for a token for clientID.
func (f *fixture) tenantRequest(name, provider, clientID string) *v1alpha1.EmbedTokenRequest {
	etr := f.request(name, time.Hour)
	etr.Spec.ProviderRef = v1alpha1.ProviderRef{Kind: "ClusterEmbedProvider", Name: provider}
	etr.Spec.Qrvey.ClientID = clientID
	return etr
}

// stalledCondition returns the request's Stalled condition, or nil.
func stalledCondition(ctx context.Context, etr *v1alpha1.EmbedTokenRequest) func(g Gomega) *metav1.Condition {
	return func(g Gomega) *metav1.Condition {
		cur := &v1alpha1.EmbedTokenRequest{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(etr), cur)).To(Succeed())
		return meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionStalled)
	}
}

var _ = Describe("Request policy (requestValidations)", func() {
	var ctx context.Context
	BeforeEach(func() { ctx = context.Background() })

	It("lets a tenant namespace ask a shared Qrvey provider only for its own clientID, denying others without a vendor call", func() {
		f := newFixture(ctx)
		f.createCredentials(ctx)
		f.labelNamespace(ctx, map[string]string{"tenant": "a"})
		cp := f.sharedQrveyProvider(ctx, v1alpha1.RequestValidation{Expression: tenantRule, Message: tenantMessage})

		own := f.tenantRequest("own", cp.Name, "a")
		Expect(k8sClient.Create(ctx, own)).To(Succeed())
		waitForToken(ctx, own, "")

		other := f.tenantRequest("other", cp.Name, "b")
		Expect(k8sClient.Create(ctx, other)).To(Succeed())
		Eventually(readyCondition(ctx, other)).Should(And(
			haveReason(metav1.ConditionFalse, v1alpha1.ReasonRequestDenied),
			HaveField("Message", ContainSubstring(tenantMessage))))
		Expect(stalledCondition(ctx, other)(Default)).To(And(
			HaveField("Status", metav1.ConditionTrue), HaveField("Reason", v1alpha1.ReasonRequestDenied)))
		settle(ctx, other)
		Expect(f.callsFor("other")()).To(BeZero())
		Expect(managedSecrets(ctx, Default, f.ns)).To(HaveLen(1), "only the admitted request has a Secret")

		By("asking for its own tenant heals the request")
		patchObject(ctx, other, func(etr *v1alpha1.EmbedTokenRequest) { etr.Spec.Qrvey.ClientID = "a" })
		waitForToken(ctx, other, "")
		Expect(stalledCondition(ctx, other)(Default)).To(BeNil())
	})

	It("denies a request whose namespace lacks the label a rule reads, saying which key is missing", func() {
		f := newFixture(ctx)
		f.createCredentials(ctx)
		cp := f.sharedQrveyProvider(ctx, v1alpha1.RequestValidation{Expression: tenantRule, Message: tenantMessage})

		etr := f.tenantRequest("unlabelled", cp.Name, "a")
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		Eventually(readyCondition(ctx, etr)).Should(And(
			haveReason(metav1.ConditionFalse, v1alpha1.ReasonRequestDenied),
			HaveField("Message", ContainSubstring(tenantMessage)),
			HaveField("Message", ContainSubstring("no such key: tenant"))))
		settle(ctx, etr)
		Expect(f.sim.CallCount()).To(BeZero())
	})

	It("reports a rule that does not compile on the provider, and its requests never call the vendor", func() {
		f := newFixture(ctx)
		f.createCredentials(ctx)
		f.labelNamespace(ctx, map[string]string{"tenant": "a"})
		cp := f.sharedQrveyProvider(ctx, v1alpha1.RequestValidation{Expression: "object.spec.qrvey.clientID == "})

		Eventually(func(g Gomega) {
			cur := &v1alpha1.ClusterEmbedProvider{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(cp), cur)).To(Succeed())
			c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(*c).To(And(haveReason(metav1.ConditionFalse, v1alpha1.ReasonProviderInvalid),
				HaveField("Message", ContainSubstring("spec.requestValidations[0].expression: compilation failed")),
				HaveField("Message", ContainSubstring("Syntax error"))))
		}).Should(Succeed())

		etr := f.tenantRequest("invalid", cp.Name, "a")
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		Eventually(readyCondition(ctx, etr)).Should(And(
			haveReason(metav1.ConditionFalse, v1alpha1.ReasonProviderInvalid),
			HaveField("Message", ContainSubstring("has invalid requestValidations"))))
		Expect(stalledCondition(ctx, etr)(Default)).To(HaveField("Reason", v1alpha1.ReasonProviderInvalid))
		settle(ctx, etr)
		Expect(f.sim.CallCount()).To(BeZero())

		By("fixing the rule heals the provider and its request")
		patchObject(ctx, cp, func(cp *v1alpha1.ClusterEmbedProvider) { cp.Spec.RequestValidations[0].Expression = tenantRule })
		waitForToken(ctx, etr, "")
	})

	It("applies a namespaced EmbedProvider's rules to the requests of its namespace", func() {
		f := newFixture(ctx)
		f.createCredentials(ctx)
		spec := f.providerSpec()
		spec.RequestValidations = []v1alpha1.RequestValidation{{Expression: "object.spec.qrvey.appID in ['app-1']"}}
		f.createNamedProvider(ctx, "qrvey", spec)

		allowed := f.request("allowed", time.Hour)
		Expect(k8sClient.Create(ctx, allowed)).To(Succeed())
		waitForToken(ctx, allowed, "")

		denied := f.request("denied", time.Hour)
		denied.Spec.Qrvey.AppID = "app-2"
		Expect(k8sClient.Create(ctx, denied)).To(Succeed())
		Eventually(readyCondition(ctx, denied)).Should(And(
			haveReason(metav1.ConditionFalse, v1alpha1.ReasonRequestDenied),
			HaveField("Message", ContainSubstring("failed rule: object.spec.qrvey.appID in ['app-1']"))))
		settle(ctx, denied)
		Expect(f.callsFor("denied")()).To(BeZero())
	})
})
