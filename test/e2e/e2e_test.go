//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/controller"
	"github.com/embedtokens/embed-token-operator/test/harness"
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
		} {
			Expect(canI(ctx, allowed...)).To(BeTrue(), "can-i %v", allowed)
		}
		for _, denied := range [][]string{
			{"delete", "secrets", "-n", ns}, {"deletecollection", "secrets", "-n", ns}, {"patch", "secrets", "-n", ns},
			{"update", "embedtokenrequests.embedtokens.io", "--subresource", "status", "-n", ns},
			{"get", "pods", "-n", ns}, {"create", "pods", "-n", ns}, {"delete", "pods", "-n", ns},
			{"update", "deployments.apps", "-n", ns}, {"delete", "deployments.apps", "-n", ns},
			{"update", "embedtokenrequests.embedtokens.io", "-n", ns}, {"create", "embedproviders.embedtokens.io", "-n", ns},
			{"get", "configmaps", "-n", ns}, {"create", "clusterrolebindings"}, {"impersonate", "serviceaccounts"},
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
		Expect(controller.DefaultRenewMargin(mountedLifetime)).To(BeNumerically(">=", kubeletPropagation+30*time.Second))
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
		for _, e := range events {
			u, err := url.Parse(e.RequestURI)
			Expect(err).NotTo(HaveOccurred())
			sel, err := labels.Parse(u.Query().Get("labelSelector"))
			Expect(err).NotTo(HaveOccurred(), "%s %s", e.Verb, e.RequestURI)
			Expect(requiresManagedBy(sel)).To(BeTrue(), "unselected Secret %s: %s", e.Verb, e.RequestURI)
		}
		GinkgoWriter.Printf("Audit: %d list/watch requests on Secrets by the operator, all label-selected\n", len(events))
	})
})

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

// propagation is, for each refreshed token, the time from its storage in the
// Secret to the first reading of it in the pod: the kubelet's delay.
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
			out = append(out, l.Time.Sub(at).Round(time.Second))
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

func operatorPods(ctx SpecContext) []corev1.Pod {
	pods := &corev1.PodList{}
	Expect(k8s.List(ctx, pods, client.InNamespace(operatorNamespace), client.MatchingLabels{operatorPodLabel: operatorPodLabelV})).To(Succeed())
	var live []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	return live
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func leaseHolder(ctx SpecContext) string {
	l := &coordinationv1.Lease{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: operatorLeaseName}, l); err != nil {
		return ""
	}
	return ptr.Deref(l.Spec.HolderIdentity, "")
}

// ---------------------------------------------------------------- RBAC

// rbacList holds every (Cluster)RoleBinding in the cluster.
type rbacList struct {
	crbs rbacv1.ClusterRoleBindingList
	rbs  rbacv1.RoleBindingList
}

func (l *rbacList) load(ctx SpecContext) error {
	if err := k8s.List(ctx, &l.crbs); err != nil {
		return err
	}
	return k8s.List(ctx, &l.rbs)
}

// boundTo names the bindings with the service account as a subject.
func (l *rbacList) boundTo(namespace, sa string) []string {
	is := func(subjects []rbacv1.Subject) bool {
		for _, s := range subjects {
			if s.Kind == rbacv1.ServiceAccountKind && s.Namespace == namespace && s.Name == sa {
				return true
			}
		}
		return false
	}
	var out []string
	for _, b := range l.crbs.Items {
		if is(b.Subjects) {
			out = append(out, "ClusterRoleBinding/"+b.Name)
		}
	}
	for _, b := range l.rbs.Items {
		if is(b.Subjects) {
			out = append(out, "RoleBinding/"+b.Namespace+"/"+b.Name)
		}
	}
	return out
}

// ---------------------------------------------------------------- audit

// auditEvent is the part of an audit.k8s.io/v1 Event the suite reads.
type auditEvent struct {
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource string `json:"resource"`
	} `json:"objectRef"`
}

// operatorSecretReads returns the list and watch requests on Secrets made by
// the operator's service account, from the local API server's audit log.
func operatorSecretReads() []auditEvent {
	f, err := os.Open(cfg.auditLog)
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	user := "system:serviceaccount:" + operatorNamespace + ":" + operatorSA
	var out []auditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		var e auditEvent
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		if e.User.Username == user && e.ObjectRef != nil && e.ObjectRef.Resource == "secrets" && (e.Verb == "list" || e.Verb == "watch") {
			out = append(out, e)
		}
	}
	Expect(sc.Err()).NotTo(HaveOccurred())
	return out
}

// requiresManagedBy says whether a selector only admits Secrets labelled as
// managed by the operator.
func requiresManagedBy(sel labels.Selector) bool {
	reqs, _ := sel.Requirements()
	for _, r := range reqs {
		if r.Key() == v1alpha1.ManagedByLabel && (r.Operator() == selection.Equals || r.Operator() == selection.DoubleEquals) &&
			r.Values().Has(v1alpha1.ManagedByValue) {
			return true
		}
	}
	return false
}
