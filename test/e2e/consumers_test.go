//go:build e2e

package e2e

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

// What the token consumers read: the mounted reader and the Deployment that
// takes the token from an environment variable.

// checkReadings returns the distinct token digests the reader saw, the least
// remaining lifetime, and a description of the first bad reading: an error, a
// token the simulator does not call valid, a non-positive lifetime, or a gap
// longer than a few read intervals.
func checkReadings(lines []logLine) (digests map[string]bool, least time.Duration, problem string) {
	digests = map[string]bool{}
	least = time.Duration(1<<63 - 1)
	for i, l := range lines {
		f := l.Fields
		remaining, err := time.ParseDuration(f["remaining"])
		switch {
		case f["error"] != "" || err != nil:
			return digests, least, "bad reading: " + l.Raw
		case f["verdict"] != "valid":
			return digests, least, "token not valid at the vendor: " + l.Raw
		case remaining <= 0:
			return digests, least, "expired token: " + l.Raw
		case i > 0 && l.Time.Sub(lines[i-1].Time) > 3*readInterval:
			return digests, least, fmt.Sprintf("no reading for %s before %s", l.Time.Sub(lines[i-1].Time), l.Raw)
		}
		digests[f["digest"]] = true
		least = min(least, remaining)
	}
	return digests, least, ""
}

// recordWritten notes when the request's current token was stored, from the
// Secret's issued-at annotation (second precision).
func recordWritten(ctx SpecContext, name string, written map[string]time.Time) {
	s := &corev1.Secret{}
	if k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s) != nil {
		return
	}
	d := harness.TokenOf(s).Digest()
	if t, err := time.Parse(time.RFC3339, s.Annotations[v1alpha1.IssuedAtAnnotation]); err == nil && written[d].IsZero() {
		written[d] = t
	}
}

// propagation is, for each token that replaced another while the reader ran,
// the time from when written says it was stored in the Secret to the
// reader's first reading of it.
func propagation(lines []logLine, written map[string]time.Time) []time.Duration {
	var out []time.Duration
	seen := map[string]bool{}
	for i, l := range lines {
		d := l.Fields["digest"]
		if seen[d] {
			continue
		}
		seen[d] = true
		if at, ok := written[d]; ok && i > 0 { // the first token was there before the pod
			out = append(out, l.Time.Sub(at).Round(100*time.Millisecond))
		}
	}
	return out
}

// envConsumer is a Deployment whose container gets the token from an
// environment variable, fixed for the life of the container.
func envConsumer(name string) *appsv1.Deployment {
	c := readerContainer("-env", "TOKEN", "-interval", readInterval.String())
	c.Env = []corev1.EnvVar{{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: v1alpha1.SecretTokenKey}}}}
	sel := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: objectMeta(ns, name),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel}, Spec: podSpec(c)},
		},
	}
}

// consumerDigest is the env token digest printed by the Deployment's only
// running pod once the rollout is complete.
func consumerDigest(ctx SpecContext, g Gomega, d *appsv1.Deployment) string {
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
	g.Expect(d.Status.ObservedGeneration).To(Equal(d.Generation))
	g.Expect(d.Status.UpdatedReplicas).To(BeEquivalentTo(1))
	g.Expect(d.Status.Replicas).To(BeEquivalentTo(1), "old pods still running")
	pods := &corev1.PodList{}
	g.Expect(k8s.List(ctx, pods, client.InNamespace(d.Namespace), client.MatchingLabels(d.Spec.Selector.MatchLabels))).To(Succeed())
	var live []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	g.Expect(live).To(HaveLen(1))
	g.Expect(live[0].Annotations[v1alpha1.RestartedAtAnnotation]).To(Equal(d.Spec.Template.Annotations[v1alpha1.RestartedAtAnnotation]))
	lines, err := podLogLines(&live[0], "reader")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(lines).NotTo(BeEmpty())
	last := lines[len(lines)-1].Fields
	g.Expect(last).To(HaveKey("digest"), "reading: %v", last)
	return last["digest"]
}

func replicaSets(ctx SpecContext, d *appsv1.Deployment) []appsv1.ReplicaSet {
	list := &appsv1.ReplicaSetList{}
	Expect(k8s.List(ctx, list, client.InNamespace(d.Namespace), client.MatchingLabels(d.Spec.Selector.MatchLabels))).To(Succeed())
	return list.Items
}
