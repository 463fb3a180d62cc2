package controller_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// podTemplate is a minimal valid pod template labelled app=name.
func podTemplate(name string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "local/app:1"}}},
	}
}

func selector(name string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}}
}

func newWorkload(ns, kind, name string) client.Object {
	meta := metav1.ObjectMeta{Namespace: ns, Name: name}
	switch kind {
	case "StatefulSet":
		return &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Selector: selector(name), Template: podTemplate(name)}}
	case "DaemonSet":
		return &appsv1.DaemonSet{ObjectMeta: meta, Spec: appsv1.DaemonSetSpec{Selector: selector(name), Template: podTemplate(name)}}
	}
	return &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Selector: selector(name), Template: podTemplate(name)}}
}

// restart is a workload's restart annotation and its generation, which the
// API server bumps on every pod template change.
type restart struct {
	At         string
	Generation int64
}

func restartedAt(ctx context.Context, obj client.Object) func(g Gomega) restart {
	return func(g Gomega) restart {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		var tmpl corev1.PodTemplateSpec
		switch w := obj.(type) {
		case *appsv1.Deployment:
			tmpl = w.Spec.Template
		case *appsv1.StatefulSet:
			tmpl = w.Spec.Template
		case *appsv1.DaemonSet:
			tmpl = w.Spec.Template
		}
		return restart{tmpl.Annotations[v1alpha1.RestartedAtAnnotation], obj.GetGeneration()}
	}
}

func restartedFor(ctx context.Context, etr *v1alpha1.EmbedTokenRequest) func() string {
	return func() string {
		return get(ctx, etr.DeepCopy()).(*v1alpha1.EmbedTokenRequest).Status.RestartedForDigest
	}
}

var _ = Describe("rolloutRestartTargets", func() {
	ctx := context.Background()
	f := eachFixtureWithProvider()

	DescribeTable("restarts the workload once for each new token",
		func(kind string) {
			w := newWorkload(f.ns, kind, "app")
			Expect(k8sClient.Create(ctx, w)).To(Succeed())
			etr := f.request("dash", time.Hour)
			etr.Spec.RolloutRestartTargets = []v1alpha1.RolloutRestartTarget{{Kind: kind, Name: "app"}}
			Expect(k8sClient.Create(ctx, etr)).To(Succeed())

			token := waitForToken(ctx, etr, "")
			Eventually(restartedFor(ctx, etr)).Should(Equal(provider.Digest(token)))
			first := restartedAt(ctx, w)(Default)
			stamp, err := time.Parse(time.RFC3339Nano, first.At)
			Expect(err).NotTo(HaveOccurred(), "restartedAt is RFC 3339 with sub-second precision")
			Expect(stamp.Nanosecond()).NotTo(BeZero())
			settle(ctx, etr)
			Expect(restartedAt(ctx, w)(Default)).To(Equal(first), "no second restart for the same token")
			Expect(first.Generation).To(Equal(int64(2)))

			By("restarting again after a refresh")
			get(ctx, etr)
			etr.Annotations = map[string]string{v1alpha1.RefreshAnnotation: "again"}
			Expect(k8sClient.Update(ctx, etr)).To(Succeed())
			token = waitForToken(ctx, etr, provider.Digest(token))
			Eventually(restartedFor(ctx, etr)).Should(Equal(provider.Digest(token)))
			Eventually(restartedAt(ctx, w)).Should(HaveField("Generation", int64(3)))
			settle(ctx, etr)
			Expect(restartedAt(ctx, w)(Default)).To(HaveField("Generation", int64(3)))
		},
		Entry("Deployment", "Deployment"),
		Entry("StatefulSet", "StatefulSet"),
		Entry("DaemonSet", "DaemonSet"),
	)

	It("coalesces the restarts of requests that share a workload and get tokens together", func() {
		w := newWorkload(f.ns, "Deployment", "shared")
		Expect(k8sClient.Create(ctx, w)).To(Succeed())
		var etrs []*v1alpha1.EmbedTokenRequest
		for _, name := range []string{"a", "b", "c", "d"} {
			etr := f.request(name, time.Hour)
			etr.Spec.RolloutRestartTargets = []v1alpha1.RolloutRestartTarget{{Kind: "Deployment", Name: "shared"}}
			Expect(k8sClient.Create(ctx, etr)).To(Succeed())
			etrs = append(etrs, etr)
		}
		for _, etr := range etrs {
			token := waitForToken(ctx, etr, "")
			Eventually(restartedFor(ctx, etr)).Should(Equal(provider.Digest(token)))
		}
		gen := restartedAt(ctx, w)(Default).Generation
		// One restart at once, then at most one more when the coalescing
		// window ends: fewer rollouts than tokens.
		Expect(gen - 1).To(BeNumerically(">=", 1))
		Expect(gen-1).To(BeNumerically("<=", 2), "four tokens issued together must not cause four rollouts")
		// Every request recorded its restart: none is waiting out the
		// window, so a reconcile of each shows whether one would restart.
		for _, etr := range etrs {
			settle(ctx, etr)
		}
		Expect(restartedAt(ctx, w)(Default)).To(HaveField("Generation", gen))
	})

	It("keeps the request Ready when a target does not exist", func() {
		etr := f.request("dash", time.Hour)
		etr.Spec.RolloutRestartTargets = []v1alpha1.RolloutRestartTarget{{Kind: "Deployment", Name: "missing"}}
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		token := waitForToken(ctx, etr, "")
		Eventually(restartedFor(ctx, etr)).Should(Equal(provider.Digest(token)))
		Expect(readyCondition(ctx, etr)(Default)).To(haveReason(metav1.ConditionTrue, v1alpha1.ReasonTokenIssued))
	})
})

var _ = Describe("rolloutRestartTargets on the manager's clock", func() {
	It("restarts again for a token stored in the same second as the workload's last restart, once the coalescing window ends", func() {
		ctx := context.Background()
		clk := replaceWithClockedManager()
		// A tenth of a second into a second: the Secret records the issue
		// time to the second, before the last restart.
		clk.SetTime(time.Now().Truncate(time.Second).Add(time.Minute + 100*time.Millisecond))
		f := newFixtureWithProvider(ctx)
		w := newWorkload(f.ns, "Deployment", "app")
		Expect(k8sClient.Create(ctx, w)).To(Succeed())
		etr := f.request("dash", time.Hour)
		etr.Spec.RolloutRestartTargets = []v1alpha1.RolloutRestartTarget{{Kind: "Deployment", Name: "app"}}
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		token := waitForToken(ctx, etr, "")
		Eventually(restartedFor(ctx, etr)).Should(Equal(provider.Digest(token)))
		Expect(restartedAt(ctx, w)(Default)).To(HaveField("Generation", int64(2)))

		// A new token 0.2 s after that restart waits for the window...
		clk.Step(200 * time.Millisecond)
		patchObject(ctx, etr, func(etr *v1alpha1.EmbedTokenRequest) { etr.Spec.Lifetime = &metav1.Duration{Duration: 2 * time.Hour} })
		token = waitForToken(ctx, etr, provider.Digest(token))
		Expect(restartedAt(ctx, w)(Default)).To(HaveField("Generation", int64(2)))
		// ...and when it has ended, the restart before the token does not
		// pass as serving it.
		clk.Step(6 * time.Second)
		settle(ctx, etr)
		Expect(restartedAt(ctx, w)(Default)).To(HaveField("Generation", int64(3)))
		Expect(restartedFor(ctx, etr)()).To(Equal(provider.Digest(token)))
	})
})
