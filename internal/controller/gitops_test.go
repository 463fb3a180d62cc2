package controller_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// gitOpsManager is the field manager of the GitOps tool in these specs.
const gitOpsManager = "argocd-controller"

// applyAsGitOps server-side applies obj as a GitOps tool syncing it from Git.
func applyAsGitOps(ctx context.Context, obj map[string]any) {
	Expect(k8sClient.Apply(ctx, client.ApplyConfigurationFromUnstructured(&unstructured.Unstructured{Object: obj}),
		client.FieldOwner(gitOpsManager), client.ForceOwnership)).To(Succeed())
}

// expectOnlyStatusWrites checks that every field manager other than the
// GitOps tool wrote the status subresource only, so a sync never sees drift.
func expectOnlyStatusWrites(obj client.Object) {
	var others []metav1.ManagedFieldsEntry
	for _, m := range obj.GetManagedFields() {
		if m.Manager != gitOpsManager {
			others = append(others, m)
		}
	}
	Expect(others).NotTo(BeEmpty(), "the operator wrote a status")
	for _, m := range others {
		Expect(m.Subresource).To(Equal("status"), "%s manages %s of %s/%s", m.Manager, m.FieldsV1, obj.GetNamespace(), obj.GetName())
	}
}

var _ = Describe("GitOps", func() {
	It("never writes the spec, labels or annotations of requests and providers, even on a forced refresh", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		f.createCredentials(ctx)
		providerObj := map[string]any{
			"apiVersion": v1alpha1.GroupVersion.String(), "kind": "EmbedProvider",
			"metadata": map[string]any{"namespace": f.ns, "name": "qrvey", "labels": map[string]any{"team": "bi"}},
			"spec": map[string]any{"allowInsecureHTTP": true, "qrvey": map[string]any{
				"url": f.sim.URL(), "apiKeySecretRef": map[string]any{"name": "qrvey-credentials", "key": "apiKey"}}},
		}
		applyAsGitOps(ctx, providerObj)

		annotations := map[string]any{
			"argocd.argoproj.io/tracking-id": "app:embedtokens.io/EmbedTokenRequest:" + f.ns + "/dash",
			"example.com/note":               "  spaces and\nnewlines survive  ",
			v1alpha1.RefreshAnnotation:       "1",
		}
		requestObj := func() map[string]any {
			return map[string]any{
				"apiVersion": v1alpha1.GroupVersion.String(), "kind": "EmbedTokenRequest",
				"metadata": map[string]any{"namespace": f.ns, "name": "dash",
					"labels": map[string]any{"app.kubernetes.io/instance": "app"}, "annotations": annotations},
				"spec": map[string]any{"providerRef": map[string]any{"name": "qrvey"}, "lifetime": "1h",
					"qrvey": map[string]any{"userID": "user-dash", "appID": "app-1"}},
			}
		}
		applyAsGitOps(ctx, requestObj())
		etr := &v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "dash"}}
		token := waitForToken(ctx, etr, "")
		applied := get(ctx, etr.DeepCopy()).(*v1alpha1.EmbedTokenRequest)

		By("forcing a refresh from Git: the operator reads the annotation and records it in the status only")
		annotations[v1alpha1.RefreshAnnotation] = "2"
		applyAsGitOps(ctx, requestObj())
		waitForToken(ctx, etr, provider.Digest(token))
		Eventually(func() string {
			return get(ctx, etr.DeepCopy()).(*v1alpha1.EmbedTokenRequest).Status.LastHandledRefresh
		}).Should(Equal("2"))

		cur := get(ctx, etr.DeepCopy()).(*v1alpha1.EmbedTokenRequest)
		Expect(cur.Annotations).To(Equal(map[string]string{
			"argocd.argoproj.io/tracking-id": annotations["argocd.argoproj.io/tracking-id"].(string),
			"example.com/note":               annotations["example.com/note"].(string),
			v1alpha1.RefreshAnnotation:       "2",
		}), "annotations are byte-identical to Git")
		Expect(cur.Labels).To(Equal(applied.Labels))
		Expect(cur.Spec).To(Equal(applied.Spec))
		Expect(cur.Generation).To(Equal(applied.Generation))
		Expect(cur.Finalizers).To(BeEmpty())
		Expect(cur.OwnerReferences).To(BeEmpty())
		expectOnlyStatusWrites(cur)

		p := &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "qrvey"}}
		Eventually(func() []metav1.Condition { return get(ctx, p).(*v1alpha1.EmbedProvider).Status.Conditions }).ShouldNot(BeEmpty())
		Expect(p.Generation).To(Equal(int64(1)))
		Expect(p.Labels).To(Equal(map[string]string{"team": "bi"}))
		Expect(p.Annotations).To(BeEmpty())
		expectOnlyStatusWrites(p)

		By("re-applying the unchanged manifests, as every sync does, issues no token")
		calls := f.callsFor("dash")()
		applyAsGitOps(ctx, requestObj())
		applyAsGitOps(ctx, providerObj)
		settle(ctx, etr)
		Expect(f.callsFor("dash")()).To(Equal(calls))
	})
})
