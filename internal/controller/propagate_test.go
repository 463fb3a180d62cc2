package controller_test

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/rollout"
)

// consumerPod is a pod labelled app=app that mounts secretName through the
// given kind of volume ("secret" or "projected").
func consumerPod(ns, name, app, volume, secretName string) *corev1.Pod {
	src := corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secretName}}
	if volume == "projected" {
		src = corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{
			Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: secretName}}}}}}
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "local/app:1"}},
			Volumes: []corev1.Volume{{Name: "token", VolumeSource: src}}}}
}

// pushedDigest reads a pod's embedtokens.io/tokenDigest annotation and its
// resourceVersion.
func pushedDigest(ctx context.Context, pod *corev1.Pod) func(g Gomega) [2]string {
	return func(g Gomega) [2]string {
		cur := &corev1.Pod{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), cur)).To(Succeed())
		return [2]string{cur.Annotations[v1alpha1.TokenDigestAnnotation], cur.ResourceVersion}
	}
}

func propagatedFor(ctx context.Context, etr *v1alpha1.EmbedTokenRequest) func() string {
	return func() string {
		return get(ctx, etr.DeepCopy()).(*v1alpha1.EmbedTokenRequest).Status.PropagatedForDigest
	}
}

func withPropagation(etr *v1alpha1.EmbedTokenRequest, app string) *v1alpha1.EmbedTokenRequest {
	etr.Spec.Propagation = &v1alpha1.Propagation{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}}
	return etr
}

var _ = Describe("propagation", func() {
	ctx := context.Background()
	f := eachFixtureWithProvider()

	It("pushes each new token once into the live selected pods that mount the Secret, and into no other", func() {
		consumers := []*corev1.Pod{consumerPod(f.ns, "secret-volume", "dash", "secret", "dash"),
			consumerPod(f.ns, "projected-volume", "dash", "projected", "dash")}
		others := []*corev1.Pod{consumerPod(f.ns, "other-secret", "dash", "secret", "not-the-token"),
			consumerPod(f.ns, "not-selected", "other", "secret", "dash")}
		finished := consumerPod(f.ns, "finished", "dash", "secret", "dash")
		for _, p := range append(append([]*corev1.Pod{finished}, consumers...), others...) {
			Expect(k8sClient.Create(ctx, p)).To(Succeed())
		}
		finished.Status.Phase = corev1.PodSucceeded
		Expect(k8sClient.Status().Update(ctx, finished)).To(Succeed())
		others = append(others, finished)

		etr := withPropagation(f.request("dash", time.Hour), "dash")
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		digest := provider.Digest(waitForToken(ctx, etr, ""))
		Eventually(propagatedFor(ctx, etr)).Should(Equal(digest))
		pushed := map[string][2]string{}
		for _, p := range consumers {
			pushed[p.Name] = pushedDigest(ctx, p)(Default)
			Expect(pushed[p.Name][0]).To(Equal(digest), p.Name)
		}
		for _, p := range others {
			Expect(pushedDigest(ctx, p)(Default)[0]).To(BeEmpty(), p.Name)
		}
		Expect(readyCondition(ctx, etr)(Default)).To(haveReason(metav1.ConditionTrue, v1alpha1.ReasonTokenIssued))
		settle(ctx, etr)
		Expect(pushedDigest(ctx, consumers[0])(Default)).To(Equal(pushed[consumers[0].Name]), "pushed once per token")

		By("pushing the next token after a refresh")
		patchObject(ctx, etr.DeepCopy(), func(e *v1alpha1.EmbedTokenRequest) {
			e.Annotations = map[string]string{v1alpha1.RefreshAnnotation: "again"}
		})
		next := provider.Digest(waitForToken(ctx, etr, digest))
		Eventually(propagatedFor(ctx, etr)).Should(Equal(next))
		for _, p := range consumers {
			Expect(pushedDigest(ctx, p)(Default)[0]).To(Equal(next), p.Name)
		}
	})

	It("pushes one token into at most MaxPropagatedPods pods", func() {
		for i := range rollout.MaxPropagatedPods + 5 {
			Expect(k8sClient.Create(ctx, consumerPod(f.ns, fmt.Sprintf("replica-%02d", i), "many", "secret", "many"))).To(Succeed())
		}
		etr := withPropagation(f.request("many", time.Hour), "many")
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		digest := provider.Digest(waitForToken(ctx, etr, ""))
		Eventually(propagatedFor(ctx, etr)).Should(Equal(digest))
		pods := &corev1.PodList{}
		Expect(k8sClient.List(ctx, pods, client.InNamespace(f.ns))).To(Succeed())
		annotated := 0
		for _, p := range pods.Items {
			if p.Annotations[v1alpha1.TokenDigestAnnotation] == digest {
				annotated++
			}
		}
		Expect(annotated).To(Equal(rollout.MaxPropagatedPods))
	})

	It("keeps the token and reports PropagationFailed until the pods can be reached", func() {
		Expect(k8sClient.Create(ctx, consumerPod(f.ns, "reader", "dash", "secret", "dash"))).To(Succeed())
		etr := f.request("dash", time.Hour)
		etr.Spec.Propagation = &v1alpha1.Propagation{PodSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "app", Operator: metav1.LabelSelectorOpIn}}}} // In without values selects nothing: invalid
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		digest := provider.Digest(waitForToken(ctx, etr, ""))
		Eventually(readyCondition(ctx, etr)).Should(And(haveReason(metav1.ConditionTrue, v1alpha1.ReasonPropagationFailed),
			HaveField("Message", ContainSubstring("spec.propagation.podSelector"))))
		Eventually(func() []string { return eventReasons(ctx, etr) }).Should(ContainElement(v1alpha1.ReasonPropagationFailed))
		Expect(propagatedFor(ctx, etr)()).To(BeEmpty())

		By("pushing the same token once the selector is fixed, without a new vendor call")
		calls := f.callsFor("dash")()
		patchObject(ctx, etr.DeepCopy(), func(e *v1alpha1.EmbedTokenRequest) {
			withPropagation(e, "dash")
		})
		Eventually(propagatedFor(ctx, etr)).Should(Equal(digest))
		Eventually(readyCondition(ctx, etr)).Should(haveReason(metav1.ConditionTrue, v1alpha1.ReasonTokenIssued))
		Expect(pushedDigest(ctx, consumerPod(f.ns, "reader", "", "", ""))(Default)[0]).To(Equal(digest))
		Expect(f.callsFor("dash")()).To(Equal(calls))
	})
})
