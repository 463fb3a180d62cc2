//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/servingcert"
)

// What a backend pod sees of the token endpoint: per-user tokens over TLS
// it verifies with the CA the operator publishes, a refusal without the
// Role, and an endpoint that keeps answering when a replica dies.

const (
	// endpointURL is where config/local binds the endpoint on every
	// replica; pods on the host network reach it on loopback, and the
	// serving certificate carries 127.0.0.1.
	endpointURL = "https://127.0.0.1:8443"
	// endpointMountPath holds the projected ServiceAccount token and the
	// CA, where pkg/tokenclient looks by default.
	endpointMountPath = "/var/run/secrets/embedtokens.io"
	// endpointReadInterval is how often the endpoint readers ask.
	endpointReadInterval = time.Second
	// endpointTokenLifetime is the template's lifetime.
	endpointTokenLifetime = 15 * time.Minute
	// operatorCertSecret is the operator's serving certificate and CA
	// (config/default's Service name plus "-tls").
	operatorCertSecret = "embed-token-operator-token-endpoint-tls"
	// secondReplicaLabel marks the pods of the second operator Deployment.
	secondReplicaLabel = "e2e.embedtokens.io/replica"
	// secondProbePort and secondMetricsPort are the second replica's
	// ports: on the host network the first replica holds 18081 and 18443.
	secondProbePort   = 18082
	secondMetricsPort = 18444
	// maxFailedReadings bounds the readings that may fail while a replica
	// dies: a call already on its way to the dying replica's listener or
	// connection is lost, and the next one reaches the other replica.
	maxFailedReadings = 3
	// readingsAfterKill is how many readings the spec waits for once the
	// killed replica is gone.
	readingsAfterKill = 15
)

// perUserTemplate is a Qrvey template whose parameter user fills the user
// ID, and must start with the caller's namespace.
func perUserTemplate(name string) *v1alpha1.EmbedTokenTemplate {
	return &v1alpha1.EmbedTokenTemplate{
		ObjectMeta: objectMeta(ns, name),
		Spec: v1alpha1.EmbedTokenTemplateSpec{
			ProviderRef:  v1alpha1.ProviderRef{Name: qrvey.Provider},
			VendorParams: v1alpha1.VendorParams{Qrvey: &v1alpha1.QrveyParams{UserID: "filled-per-call", AppID: "app-1"}},
			Lifetime:     &metav1.Duration{Duration: endpointTokenLifetime},
			Parameters: []v1alpha1.TemplateParameter{{
				Name: "user", Path: "qrvey.userID", MaxLength: 64,
				Validation: &v1alpha1.ParameterValidation{
					Expression: "value.startsWith(caller.namespace + '-') && value.matches('^[a-z0-9._-]+$')",
					Message:    "user must be a Qrvey user ID of the caller's namespace: <namespace>-<name>",
				},
			}},
		},
	}
}

// tokenCaller is a ServiceAccount and, when granted, a Role allowing
// create on the template's token subresource and its RoleBinding.
func tokenCaller(sa, template string, granted bool) []client.Object {
	objs := []client.Object{&corev1.ServiceAccount{ObjectMeta: objectMeta(ns, sa), AutomountServiceAccountToken: ptr.To(false)}}
	if !granted {
		return objs
	}
	role := &rbacv1.Role{ObjectMeta: objectMeta(ns, sa+"-tokens"), Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{v1alpha1.TokenSubresource},
		ResourceNames: []string{template}, Verbs: []string{"create"},
	}}}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: objectMeta(ns, sa+"-tokens"),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}},
	}
	return append(objs, role, binding)
}

// endpointReaderPod runs cmd/tokenreader as a backend of sa calling the
// endpoint for template with the given user. Its one projected volume holds
// the ServiceAccount token of audience embedtokens.io and the published CA,
// the only trust the client has. extra are more tokenreader flags.
func endpointReaderPod(podName, sa, template, user string, extra ...string) *corev1.Pod {
	args := append([]string{"-endpoint", endpointURL, "-template", ns + "/" + template, "-param", "user=" + user,
		"-validate-url", cfg.simURL + "/_sim/validate", "-interval", endpointReadInterval.String()}, extra...)
	c := readerContainer(args...)
	c.VolumeMounts = []corev1.VolumeMount{{Name: "embedtokens", MountPath: endpointMountPath, ReadOnly: true}}
	spec := podSpec(c)
	spec.ServiceAccountName = sa
	spec.AutomountServiceAccountToken = ptr.To(false)
	spec.Volumes = []corev1.Volume{{Name: "embedtokens", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience: v1alpha1.TokenEndpointAudience, ExpirationSeconds: ptr.To[int64](3600), Path: "token"}},
			{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: servingcert.ConfigMapName},
				Items:                []corev1.KeyToPath{{Key: servingcert.ConfigMapKey, Path: "ca.crt"}}}},
		},
	}}}}
	return &corev1.Pod{ObjectMeta: objectMeta(ns, podName), Spec: spec}
}

// startPod creates the pod and waits until it is running and has printed
// at least one line.
func startPod(ctx SpecContext, pod *corev1.Pod) {
	Expect(k8s.Create(ctx, pod)).To(Succeed())
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(pod), pod)).To(Succeed())
		g.Expect(pod.Status.Phase).To(Equal(corev1.PodRunning))
		lines, err := podLogLines(pod, "reader")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(lines).NotTo(BeEmpty())
	}).WithContext(ctx).WithTimeout(2 * time.Minute).Should(Succeed())
}

// readerLines waits until the pod has printed at least n lines and returns
// them.
func readerLines(ctx SpecContext, pod *corev1.Pod, n int) []logLine {
	var lines []logLine
	Eventually(func(g Gomega) {
		var err error
		lines, err = podLogLines(pod, "reader")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(len(lines)).To(BeNumerically(">=", n))
	}).WithContext(ctx).WithTimeout(time.Duration(n)*endpointReadInterval + time.Minute).Should(Succeed())
	return lines
}

// goodEndpointReading reports whether a line is a token the vendor accepts,
// unexpired, as the endpoint minted it (not from its shared cache).
func goodEndpointReading(l logLine) bool {
	remaining, err := time.ParseDuration(l.Fields["remaining"])
	return err == nil && remaining > 0 && l.Fields["digest"] != "" && l.Fields["verdict"] == "valid" && l.Fields["cached"] == "false"
}

// issuedBy returns the names of the live operator pods whose log has a
// "Token issued" line for the token digest.
func issuedBy(ctx SpecContext, digest string) []string {
	var by []string
	for _, p := range operatorPods(ctx) {
		lines, err := podLogLines(&p, "manager")
		Expect(err).NotTo(HaveOccurred())
		if slices.ContainsFunc(lines, func(l logLine) bool {
			return strings.Contains(l.Raw, "Token issued") && strings.Contains(l.Raw, digest)
		}) {
			by = append(by, p.Name)
		}
	}
	return by
}

// servesEndpoint reports whether the operator pod's log says it listens
// for the token endpoint.
func servesEndpoint(g Gomega, p *corev1.Pod) bool {
	lines, err := podLogLines(p, "manager")
	g.Expect(err).NotTo(HaveOccurred())
	return slices.ContainsFunc(lines, func(l logLine) bool { return strings.Contains(l.Raw, "Serving the token endpoint") })
}

// secondReplica is a copy of the operator's Deployment, a second replica on
// the same node: same image, ServiceAccount and leader-election Lease, and
// the same endpoint address, which --token-endpoint-reuse-port lets both
// bind. On the host network the probe and metrics ports are host ports, so
// it gets ports of its own, and it declares no token-endpoint port: that
// host port stays the first replica's claim with the scheduler.
func secondReplica(orig *appsv1.Deployment) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{
		Namespace: orig.Namespace, Name: orig.Name + "-second", Labels: orig.Labels}}
	d.Spec = *orig.Spec.DeepCopy()
	d.Spec.Replicas = ptr.To[int32](1)
	d.Spec.Selector.MatchLabels[secondReplicaLabel] = "second"
	d.Spec.Template.Labels[secondReplicaLabel] = "second"
	c := &d.Spec.Template.Spec.Containers[0]
	for i, a := range c.Args {
		switch {
		case strings.HasPrefix(a, "--health-probe-bind-address="):
			c.Args[i] = fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", secondProbePort)
		case strings.HasPrefix(a, "--metrics-bind-address="):
			c.Args[i] = fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", secondMetricsPort)
		}
	}
	c.Ports = []corev1.ContainerPort{
		{Name: "https", ContainerPort: secondMetricsPort, Protocol: corev1.ProtocolTCP},
		{Name: "health", ContainerPort: secondProbePort, Protocol: corev1.ProtocolTCP},
	}
	for _, probe := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		if probe != nil && probe.HTTPGet != nil {
			probe.HTTPGet.Port.IntVal = secondProbePort
		}
	}
	return d
}

var _ = Describe("The token endpoint on a real node", Ordered, func() {
	const (
		template = "per-user"
		backend  = "backend"
		stranger = "stranger"
	)

	BeforeAll(func(ctx SpecContext) {
		By("creating a per-user template, a ServiceAccount holding the Role for it and one without")
		tmpl := perUserTemplate(template)
		objs := append([]client.Object{tmpl}, tokenCaller(backend, template, true)...)
		objs = append(objs, tokenCaller(stranger, template, false)...)
		for _, o := range objs {
			Expect(k8s.Create(ctx, o)).To(Succeed(), "creating %T %s", o, o.GetName())
		}
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(tmpl), tmpl)).To(Succeed())
			ready := meta(tmpl.Status.Conditions, v1alpha1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), "Ready: %s %s", ready.Reason, ready.Message)
			g.Expect(tmpl.Status.ObservedGeneration).To(Equal(tmpl.Generation))
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())

		By("waiting for the operator to publish its CA in the namespace")
		Eventually(func(g Gomega) {
			cm := &corev1.ConfigMap{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: servingcert.ConfigMapName}, cm)).To(Succeed())
			secret := &corev1.Secret{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: operatorCertSecret}, secret)).To(Succeed())
			ca := strings.TrimSpace(string(secret.Data["ca.crt"]))
			g.Expect(ca).To(HavePrefix("-----BEGIN CERTIFICATE-----"))
			g.Expect(cm.Data[servingcert.ConfigMapKey]).To(ContainSubstring(ca), "the published bundle holds the serving CA")
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
	}, NodeTimeout(3*time.Minute))

	It("gives a pod holding the Role a token for the user it names, over TLS verified with the published CA", func(ctx SpecContext) {
		user := ns + "-alice"
		pod := endpointReaderPod("endpoint-reader", backend, template, user)
		startPod(ctx, pod)
		lines := readerLines(ctx, pod, 5)
		for _, l := range lines {
			Expect(goodEndpointReading(l)).To(BeTrue(), "reading: %s", l.Raw)
			Expect(l.Fields["digest"]).To(Equal(lines[0].Fields["digest"]), "the client serves its copy while it is fresh")
		}
		Expect(issuedBy(ctx, lines[0].Fields["digest"])).NotTo(BeEmpty(), "an operator replica logged the token it issued")

		By("checking the simulator issued exactly one token, for the user the parameter named")
		Expect(simIssued(ctx)[user]).To(Equal(1))
		GinkgoWriter.Printf("Endpoint reader: %d readings of token %s for %s\n", len(lines), lines[0].Fields["digest"], user)
	}, NodeTimeout(4*time.Minute))

	It("answers 403 Forbidden to a pod whose ServiceAccount lacks the Role, and calls no vendor", func(ctx SpecContext) {
		user := ns + "-mallory"
		pod := endpointReaderPod("endpoint-stranger", stranger, template, user)
		startPod(ctx, pod)
		for _, l := range readerLines(ctx, pod, 3) {
			Expect(l.Fields).To(HaveKeyWithValue("status", "403"), "reading: %s", l.Raw)
			Expect(l.Fields).To(HaveKeyWithValue("reason", "Forbidden"), "reading: %s", l.Raw)
			Expect(l.Fields).NotTo(HaveKey("digest"))
		}
		Expect(simIssued(ctx)).NotTo(HaveKey(user))
	}, NodeTimeout(4*time.Minute))

	It("keeps answering when the replica serving a pod is killed, and then the leader", func(ctx SpecContext) {
		orig := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: operatorSA}, orig)).To(Succeed())
		Expect(orig.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--token-endpoint-reuse-port"),
			"replicas on the host network share the endpoint's address only with SO_REUSEPORT")

		By("starting a second replica: a copy of the operator's Deployment with probe and metrics ports of its own")
		second := secondReplica(orig)
		Expect(k8s.Create(ctx, second)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) {
			if CurrentSpecReport().Failed() {
				// The suite's own dump runs after this cleanup, when the
				// second replica and its log are gone.
				AddReportEntry("operator log tail, both replicas", operatorLogTail(100))
			}
			Expect(client.IgnoreNotFound(k8s.Delete(ctx, second, client.PropagationPolicy(metav1.DeletePropagationForeground)))).To(Succeed())
			By("waiting for the operator to be back to its one replica")
			Eventually(func(g Gomega) {
				g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(second), &appsv1.Deployment{})).To(Satisfy(apierrors.IsNotFound))
				pods := operatorPods(ctx)
				g.Expect(pods).To(HaveLen(1))
				g.Expect(podReady(&pods[0])).To(BeTrue())
				g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(orig), orig)).To(Succeed())
				g.Expect(orig.Status.ReadyReplicas).To(BeEquivalentTo(1))
			}).WithContext(ctx).WithTimeout(3 * time.Minute).Should(Succeed())
		}, NodeTimeout(4*time.Minute))
		twoReplicasServing(ctx)

		By("starting a reader that asks for a new user at each reading, so the endpoint answers every one")
		user := ns + "-bob"
		reader := endpointReaderPod("endpoint-failover", backend, template, user, "-vary-param", "user")
		startPod(ctx, reader)
		lines := readerLines(ctx, reader, 5)
		last := lines[len(lines)-1]
		Expect(goodEndpointReading(last)).To(BeTrue(), "reading: %s", last.Raw)

		By("killing the replica that served the reader's last reading")
		var servedBy []string
		Eventually(func() []string {
			servedBy = issuedBy(ctx, last.Fields["digest"])
			return servedBy
		}).WithContext(ctx).WithTimeout(30 * time.Second).Should(HaveLen(1))
		replicas := operatorPods(ctx)
		serving := slices.IndexFunc(replicas, func(p corev1.Pod) bool { return p.Name == servedBy[0] })
		Expect(serving).To(BeNumerically(">=", 0))
		good := killReplica(ctx, reader, replicas[serving])

		By("killing the leader once a new replica serves beside the survivor")
		twoReplicasServing(ctx)
		var leader corev1.Pod
		Eventually(func(g Gomega) {
			var leaders []corev1.Pod
			for _, p := range operatorPods(ctx) {
				if isLeader(g, &p) {
					leaders = append(leaders, p)
				}
			}
			g.Expect(leaders).To(HaveLen(1), "one live replica holds the lease")
			leader = leaders[0]
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
		good += killReplica(ctx, reader, leader)

		By("checking each good reading was a vendor call for a user the parameter named")
		bobs := 0
		for u, n := range simIssued(ctx) {
			if strings.HasPrefix(u, user+"-") {
				bobs += n
			}
		}
		Expect(bobs).To(BeNumerically(">=", good))
	}, NodeTimeout(12*time.Minute))
})

// twoReplicasServing waits until two operator replicas are ready and serve
// the token endpoint.
func twoReplicasServing(ctx SpecContext) {
	Eventually(func(g Gomega) {
		pods := operatorPods(ctx)
		g.Expect(pods).To(HaveLen(2))
		for i := range pods {
			g.Expect(podReady(&pods[i])).To(BeTrue(), "pod %s ready", pods[i].Name)
			g.Expect(servesEndpoint(g, &pods[i])).To(BeTrue(), "pod %s serves the endpoint", pods[i].Name)
		}
	}).WithContext(ctx).WithTimeout(3 * time.Minute).Should(Succeed())
}

// isLeader reports whether the operator pod's log says it holds the
// leader-election Lease. Pods on the host network share the node's
// hostname, so the Lease's holder identity does not name the pod.
func isLeader(g Gomega, p *corev1.Pod) bool {
	lines, err := podLogLines(p, "manager")
	g.Expect(err).NotTo(HaveOccurred())
	return slices.ContainsFunc(lines, func(l logLine) bool { return strings.Contains(l.Raw, "Successfully acquired lease") })
}

// killReplica deletes the operator pod victim while the reader pod asks the
// endpoint every second, waits for readingsAfterKill readings once the pod
// is gone, and checks that at most maxFailedReadings failed and that a live
// replica issued every token read after it was gone. It returns the number
// of good readings since the delete.
func killReplica(ctx SpecContext, reader *corev1.Pod, victim corev1.Pod) int {
	leader := isLeader(Default, &victim)
	By(fmt.Sprintf("deleting replica %s (leader: %t)", victim.Name, leader))
	killedAt := time.Now()
	Expect(k8s.Delete(ctx, &victim)).To(Succeed())
	Eventually(func() error {
		return k8s.Get(ctx, client.ObjectKeyFromObject(&victim), &corev1.Pod{})
	}).WithContext(ctx).WithTimeout(time.Minute).Should(Satisfy(apierrors.IsNotFound))
	goneAt := time.Now()

	var after []logLine
	Eventually(func(g Gomega) int {
		lines, err := podLogLines(reader, "reader")
		g.Expect(err).NotTo(HaveOccurred())
		after = slices.DeleteFunc(lines, func(l logLine) bool { return l.Time.Before(killedAt) })
		return len(slices.DeleteFunc(slices.Clone(after), func(l logLine) bool { return l.Time.Before(goneAt) }))
	}).WithContext(ctx).WithTimeout(readingsAfterKill*endpointReadInterval + time.Minute).
		Should(BeNumerically(">=", readingsAfterKill))

	failed, digests := 0, map[string]bool{}
	for _, l := range after {
		if !goodEndpointReading(l) {
			failed++
			GinkgoWriter.Println("Failed reading while a replica died:", l.Raw)
			continue
		}
		Expect(digests).NotTo(HaveKey(l.Fields["digest"]), "each reading is a new user's token")
		digests[l.Fields["digest"]] = true
	}
	summary := fmt.Sprintf("killed replica %s (leader: %t), gone after %s; %d readings since the delete, %d failed (at most %d allowed)",
		victim.Name, leader, goneAt.Sub(killedAt).Round(time.Second), len(after), failed, maxFailedReadings)
	AddReportEntry("endpoint failover", summary)
	GinkgoWriter.Println("Endpoint failover:", summary)
	Expect(failed).To(BeNumerically("<=", maxFailedReadings))
	for _, l := range after {
		if goodEndpointReading(l) && !l.Time.Before(goneAt) {
			Expect(issuedBy(ctx, l.Fields["digest"])).To(HaveLen(1), "a live replica issued %s", l.Raw)
		}
	}
	return len(digests)
}

// simIssued counts the tokens the simulator issued per Qrvey user ID.
func simIssued(ctx context.Context) map[string]int {
	issued := map[string]int{}
	for _, c := range simCalls(ctx) {
		if user, ok := c.Body["userid"].(string); ok && c.Issued {
			issued[user]++
		}
	}
	return issued
}
