//go:build e2e

package e2e

import (
	"fmt"
	"net/url"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/refresh"
)

// The specs share one cluster and run in order: the long mounted-Secret
// reader starts early and is checked last, so the rollout spec runs while it
// goes through its refresh cycles.
var _ = Describe("The operator on a real node", Ordered, func() {
	It("is bound only to the roles in config/rbac, which grant nothing beyond its needs", func(ctx SpecContext) {
		By("listing every binding whose subject is the operator's service account")
		bindings := &rbacList{}
		Expect(bindings.load(ctx)).To(Succeed())
		Expect(bindings.boundTo(operatorNamespace, operatorSA)).To(ConsistOf(
			"ClusterRoleBinding/embed-token-operator-manager-rolebinding",
			"ClusterRoleBinding/embed-token-operator-metrics-auth-rolebinding",
			"RoleBinding/embed-token-operator-system/embed-token-operator-leader-election-rolebinding",
		))

		By("asking the API server what the service account may do (kubectl auth can-i --as)")
		for _, allowed := range [][]string{
			{"list", "secrets", "-A"}, {"watch", "secrets", "-A"}, {"create", "secrets", "-n", ns},
			{"update", "secrets", "-n", ns}, {"patch", "deployments.apps", "-n", ns},
			{"patch", "embedtokenrequests.embedtokens.io", "--subresource", "status", "-n", ns},
			// The token endpoint: its callers' reviews, and the CA bundle it
			// publishes in each namespace with a template.
			{"create", "tokenreviews.authentication.k8s.io"}, {"create", "subjectaccessreviews.authorization.k8s.io"},
			{"get", "configmaps", "-n", ns}, {"create", "configmaps", "-n", ns},
		} {
			Expect(canI(ctx, allowed...)).To(BeTrue(), "can-i %v", allowed)
		}
		for _, denied := range [][]string{
			{"delete", "secrets", "-n", ns}, {"deletecollection", "secrets", "-n", ns}, {"patch", "secrets", "-n", ns},
			{"update", "embedtokenrequests.embedtokens.io", "--subresource", "status", "-n", ns},
			{"get", "pods", "-n", ns}, {"create", "pods", "-n", ns}, {"delete", "pods", "-n", ns},
			{"update", "deployments.apps", "-n", ns}, {"delete", "deployments.apps", "-n", ns},
			{"update", "embedtokenrequests.embedtokens.io", "-n", ns}, {"create", "embedproviders.embedtokens.io", "-n", ns},
			{"patch", "configmaps", "-n", ns}, {"update", "embedtokentemplates.embedtokens.io", "-n", ns},
			{"create", "embedtokentemplates.embedtokens.io", "--subresource", "token", "-n", ns},
			{"create", "clusterrolebindings"}, {"impersonate", "serviceaccounts"},
			{"*", "*"},
		} {
			Expect(canI(ctx, denied...)).To(BeFalse(), "can-i %v", denied)
		}
	})

	It("issues no extra token when its pod is deleted mid-cycle", func(ctx SpecContext) {
		etr := newRequest("restart", 3*time.Minute)
		Expect(k8s.Create(ctx, etr)).To(Succeed())
		waitReady(ctx, etr)
		before := secretDigest(ctx, etr.Name)
		Expect(issuedFor(ctx, etr.Name)).To(Equal(1))

		oldPods, oldHolder := operatorPods(ctx), leaseHolder(ctx)
		Expect(oldPods).To(HaveLen(1))
		By("deleting the operator pod " + oldPods[0].Name + " (leader " + oldHolder + ")")
		Expect(k8s.Delete(ctx, &oldPods[0])).To(Succeed())

		By("waiting for a new pod to become ready and take the leader lease")
		Eventually(func(g Gomega) {
			pods := operatorPods(ctx)
			g.Expect(pods).To(HaveLen(1))
			g.Expect(pods[0].UID).NotTo(Equal(oldPods[0].UID))
			g.Expect(podReady(&pods[0])).To(BeTrue())
			// Pods on the host network share the node's hostname, so the
			// holder identity (hostname_uuid) tells replicas apart only by its uuid.
			g.Expect(leaseHolder(ctx)).NotTo(BeElementOf(oldHolder, ""))
		}).WithContext(ctx).WithTimeout(3 * time.Minute).Should(Succeed())

		By("checking the new leader re-reads the stored token instead of minting one")
		Consistently(func(g Gomega) {
			g.Expect(issuedFor(ctx, etr.Name)).To(Equal(1))
			g.Expect(secretDigest(ctx, etr.Name)).To(Equal(before))
		}).WithContext(ctx).WithTimeout(20 * time.Second).WithPolling(2 * time.Second).Should(Succeed())

		By("checking the new leader is live: a refresh request issues exactly one token")
		patch := client.MergeFrom(etr.DeepCopy())
		etr.Annotations = map[string]string{v1alpha1.RefreshAnnotation: "e2e-1"}
		Expect(k8s.Patch(ctx, etr, patch)).To(Succeed())
		Eventually(func() int { return issuedFor(ctx, etr.Name) }).WithContext(ctx).WithTimeout(time.Minute).Should(Equal(2))
		Consistently(func() int { return issuedFor(ctx, etr.Name) }).WithContext(ctx).WithTimeout(10 * time.Second).Should(Equal(2))
	}, NodeTimeout(6*time.Minute))

	It("deletes the Secret when its EmbedTokenRequest is deleted (garbage collector)", func(ctx SpecContext) {
		etr := newRequest("gc", 3*time.Minute)
		Expect(k8s.Create(ctx, etr)).To(Succeed())
		secret := waitReady(ctx, etr)
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(etr), etr)).To(Succeed())
		Expect(secret.OwnerReferences).To(ContainElement(SatisfyAll(
			HaveField("UID", etr.UID), HaveField("Controller", ptr.To(true)))))

		Expect(k8s.Delete(ctx, etr)).To(Succeed())
		Eventually(func() error {
			return k8s.Get(ctx, client.ObjectKeyFromObject(secret), &corev1.Secret{})
		}).WithContext(ctx).WithTimeout(2 * time.Minute).Should(Satisfy(apierrors.IsNotFound))
	}, NodeTimeout(4*time.Minute))

	// The mounted reader: started here, checked after the rollout spec.
	const mounted = "mounted"
	var reader *corev1.Pod

	It("starts a pod that reads the mounted Secret every 2 s", func(ctx SpecContext) {
		// Four-minute tokens with the default renewal margin (no
		// renewBefore): the spec proves the default outruns the kubelet's
		// propagation delay of mounted Secrets, which is left at its default.
		Expect(refresh.DefaultRenewMargin(mountedLifetime)).To(BeNumerically(">=", kubeletPropagation+30*time.Second))
		etr := newRequest(mounted, mountedLifetime)
		Expect(k8s.Create(ctx, etr)).To(Succeed())
		waitReady(ctx, etr)

		c := readerContainer("-dir", tokenMountPath, "-interval", readInterval.String(), "-validate-url", cfg.simURL+"/_sim/validate")
		c.VolumeMounts = []corev1.VolumeMount{{Name: "token", MountPath: tokenMountPath, ReadOnly: true}}
		spec := podSpec(c)
		spec.Volumes = []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: mounted}}}}
		reader = &corev1.Pod{ObjectMeta: objectMeta(ns, "mounted-reader"), Spec: spec}
		Expect(k8s.Create(ctx, reader)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(reader), reader)).To(Succeed())
			g.Expect(reader.Status.Phase).To(Equal(corev1.PodRunning))
			lines, err := podLogLines(reader, "reader")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(lines).NotTo(BeEmpty())
		}).WithContext(ctx).WithTimeout(2 * time.Minute).Should(Succeed())
	}, NodeTimeout(4*time.Minute))

	It("restarts a Deployment that reads the token from an env var, once per new token", func(ctx SpecContext) {
		const name = "env-consumer"
		etr := newRequest(name, 2*time.Minute)
		etr.Spec.RolloutRestartTargets = []v1alpha1.RolloutRestartTarget{{Kind: "Deployment", Name: name}}
		Expect(k8s.Create(ctx, etr)).To(Succeed())
		waitReady(ctx, etr)
		first := secretDigest(ctx, name)

		By("deploying a consumer that reads the token from an environment variable")
		deploy := envConsumer(name)
		Expect(k8s.Create(ctx, deploy)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(consumerDigest(ctx, g, deploy)).To(Equal(first))
		}).WithContext(ctx).WithTimeout(2 * time.Minute).Should(Succeed())
		Expect(replicaSets(ctx, deploy)).To(HaveLen(1))

		By("waiting for the token to be refreshed")
		var second string
		Eventually(func() string {
			second = secretDigest(ctx, name)
			return second
		}).WithContext(ctx).WithTimeout(2 * time.Minute).ShouldNot(Equal(first))

		By("waiting for the rollout: the new pod's env token is the Secret's token")
		var restartedAt string
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(deploy), deploy)).To(Succeed())
			restartedAt = deploy.Spec.Template.Annotations[v1alpha1.RestartedAtAnnotation]
			g.Expect(restartedAt).NotTo(BeEmpty())
			g.Expect(consumerDigest(ctx, g, deploy)).To(Equal(second))
		}).WithContext(ctx).WithTimeout(2 * time.Minute).Should(Succeed())
		at, err := time.Parse(time.RFC3339Nano, restartedAt)
		Expect(err).NotTo(HaveOccurred())
		Expect(restartedAt).To(ContainSubstring("."), "sub-second precision")
		Expect(at).To(BeTemporally("~", time.Now(), 2*time.Minute))

		By("checking it was restarted once for the new token, and not again")
		Consistently(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(deploy), deploy)).To(Succeed())
			g.Expect(deploy.Spec.Template.Annotations[v1alpha1.RestartedAtAnnotation]).To(Equal(restartedAt))
			g.Expect(replicaSets(ctx, deploy)).To(HaveLen(2))
			g.Expect(secretDigest(ctx, name)).To(Equal(second))
		}).WithContext(ctx).WithTimeout(15 * time.Second).WithPolling(time.Second).Should(Succeed())
	}, NodeTimeout(8*time.Minute))

	It("keeps the mounted reader on a valid token through three refreshes with the default margin", func(ctx SpecContext) {
		Expect(reader).NotTo(BeNil())
		var minRemaining time.Duration
		written := map[string]time.Time{} // token digest: when the operator stored it
		Eventually(func(g Gomega) int {
			recordWritten(ctx, mounted, written)
			lines, err := podLogLines(reader, "reader")
			g.Expect(err).NotTo(HaveOccurred())
			digests, least, problem := checkReadings(lines)
			if problem != "" {
				StopTrying("the reader saw a token the vendor no longer accepts").
					Wrap(fmt.Errorf("%s", problem)).Now()
			}
			minRemaining = least
			return len(digests)
		}).WithContext(ctx).WithTimeout(10*time.Minute).WithPolling(5*time.Second).
			Should(BeNumerically(">=", 4), "the first token and three refreshed ones")
		lines, err := podLogLines(reader, "reader")
		Expect(err).NotTo(HaveOccurred())
		summary := fmt.Sprintf("%d readings, least remaining lifetime seen %s, Secret-to-pod propagation %v",
			len(lines), minRemaining, propagation(lines, written))
		AddReportEntry("mounted reader", summary)
		GinkgoWriter.Println("Mounted reader:", summary)
		Expect(minRemaining).To(BeNumerically(">", 0))
	}, NodeTimeout(12*time.Minute))

	It("lists and watches only the Secrets it manages (API server audit log)", func() {
		events := operatorSecretReads()
		Expect(events).NotTo(BeEmpty(), "the operator must list/watch its Secrets")
		certReads := 0
		for _, e := range events {
			u, err := url.Parse(e.RequestURI)
			Expect(err).NotTo(HaveOccurred())
			if readsOnlyCertSecret(u) {
				certReads++
				continue
			}
			sel, err := labels.Parse(u.Query().Get("labelSelector"))
			Expect(err).NotTo(HaveOccurred(), "%s %s", e.Verb, e.RequestURI)
			Expect(requiresManagedBy(sel)).To(BeTrue(), "unselected Secret %s: %s", e.Verb, e.RequestURI)
		}
		GinkgoWriter.Printf("Audit: %d list/watch requests on Secrets by the operator, all label-selected "+
			"or of its own serving certificate by name (%d)\n", len(events), certReads)
	})
})
