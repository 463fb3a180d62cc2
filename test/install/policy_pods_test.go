package install

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/rollout"
)

// The admission policy's messages for pods.
const (
	msgPodVerb   = "may not create, delete, bind or evict pods"
	msgPodChange = "may change nothing in a pod but its embedtokens.io/tokenDigest annotation"
)

// guardPodName is the pod checkPodGuardrails creates in guardNamespace.
const guardPodName = "reader"

// checkPodGuardrails creates a pod that mounts a token Secret and checks, as
// the manager, that pushing a token into it (rollout.PropagatePatch) passes
// and that every other change the shipped RBAC allows (patch) is denied.
func checkPodGuardrails(ctx context.Context, t *testing.T, admin, op client.Client, denied func(string, string, error), allowed func(string, error)) {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: guardNamespace, Name: guardPodName,
		Labels: map[string]string{"app": "reader"}, Annotations: map[string]string{"team.example.com/owner": "a"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}},
			Volumes: []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{
				Secret: &corev1.SecretVolumeSource{SecretName: "sales-dashboard"}}}}}}
	if err := admin.Create(ctx, pod); err != nil {
		t.Fatalf("creating %s: %v", describe(pod), err)
	}
	target := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: guardNamespace, Name: guardPodName}}
	allowed("pushing a token into a pod as the rollout package does", op.Patch(ctx, target, rollout.PropagatePatch("0123456789ab")))
	allowed("pushing the next token into it", op.Patch(ctx, target, rollout.PropagatePatch("ba9876543210")))

	for _, c := range []struct {
		what   string
		mutate func(*corev1.Pod)
	}{
		{"changing a pod's image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "attacker.example/miner:1" }},
		{"changing a pod's labels", func(p *corev1.Pod) { p.Labels["app"] = "other" }},
		{"adding another pod annotation", func(p *corev1.Pod) { p.Annotations["team.example.com/extra"] = "x" }},
		{"changing another pod annotation", func(p *corev1.Pod) { p.Annotations["team.example.com/owner"] = "attacker" }},
		{"removing another pod annotation", func(p *corev1.Pod) { delete(p.Annotations, "team.example.com/owner") }},
		{"adding a finalizer to a pod", func(p *corev1.Pod) { p.Finalizers = append(p.Finalizers, "example.com/hold") }},
		{"changing the pod's token annotation along with its image", func(p *corev1.Pod) {
			p.Annotations[v1alpha1.TokenDigestAnnotation] = "ffffffffffff"
			p.Spec.Containers[0].Image = "attacker.example/miner:1"
		}},
	} {
		p := &corev1.Pod{}
		if err := op.Get(ctx, client.ObjectKeyFromObject(pod), p); err != nil {
			// The shipped RBAC has no get on pods; read as admin, write as the manager.
			if err := admin.Get(ctx, client.ObjectKeyFromObject(pod), p); err != nil {
				t.Fatal(err)
			}
		}
		before := p.DeepCopy()
		c.mutate(p)
		denied(c.what, msgPodChange, op.Patch(ctx, p, client.MergeFrom(before)))
	}
}

// checkPodGuardrailsBeyondRBAC runs with the extra Role of
// checkGuardrailsBeyondRBAC, which grants the manager every verb on pods and
// their subresources, and checks that the policy still denies creating,
// deleting and evicting pods and writing their status.
func checkPodGuardrailsBeyondRBAC(ctx context.Context, t *testing.T, admin, op client.Client, denied func(string, string, error)) {
	t.Helper()
	pod := &corev1.Pod{}
	if err := admin.Get(ctx, client.ObjectKey{Namespace: guardNamespace, Name: guardPodName}, pod); err != nil {
		t.Fatal(err)
	}
	intruder := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: guardNamespace, Name: "intruder"}, Spec: *pod.Spec.DeepCopy()}
	denied("creating a pod", msgPodVerb, op.Create(ctx, intruder))
	denied("deleting a pod", msgPodVerb, op.Delete(ctx, pod.DeepCopy()))
	eviction := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Namespace: guardNamespace, Name: pod.Name}}
	denied("evicting a pod", msgPodVerb, op.SubResource("eviction").Create(ctx, pod.DeepCopy(), eviction))
	status := pod.DeepCopy()
	status.Status.Message = "forged"
	denied("writing a pod's status", msgPodVerb, op.Status().Update(ctx, status))
}
