//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/refresh"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

const (
	// pushedLifetime is a token far too short for the kubelet's own
	// propagation (up to 90 s and more): its default renewal margin is
	// half its lifetime, 45 s.
	pushedLifetime = 90 * time.Second
	// pushedReadInterval is how often the readers look at the token.
	pushedReadInterval = time.Second
	// pushedRenewals is how many renewals the spec watches.
	pushedRenewals = 5
	// pushedP95 is the target: a new token reaches a pod within 5 s at the
	// 95th percentile.
	pushedP95 = 5 * time.Second
)

// secretWatcher watches a token Secret and records when each token first
// appeared in it, as seen from this host's clock, the one the kubelet stamps
// pod log lines with. A watch event arrives milliseconds after the write,
// well within what the propagation it measures needs.
type secretWatcher struct {
	mu    sync.Mutex
	first map[string]time.Time
}

func watchSecret(ctx context.Context, name string) *secretWatcher {
	w := &secretWatcher{first: map[string]time.Time{}}
	go func() {
		for ctx.Err() == nil {
			events, err := k8s.Watch(ctx, &corev1.SecretList{}, client.InNamespace(ns), client.MatchingFields{"metadata.name": name})
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			for ev := range events.ResultChan() {
				if s, ok := ev.Object.(*corev1.Secret); ok {
					w.saw(harness.TokenOf(s))
				}
			}
			events.Stop() // the server ended the watch: start another
		}
	}()
	return w
}

func (w *secretWatcher) saw(tok harness.Token) {
	if tok.Value == "" {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.first[tok.Digest()]; !ok {
		w.first[tok.Digest()] = now
	}
}

func (w *secretWatcher) written() map[string]time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.first)
}

// tokenReaderPod reads the Secret name mounted as a volume every interval,
// validating each token at the simulator.
func tokenReaderPod(podName, app, secretName string, interval time.Duration) *corev1.Pod {
	c := readerContainer("-dir", tokenMountPath, "-interval", interval.String(), "-validate-url", cfg.simURL+"/_sim/validate")
	c.VolumeMounts = []corev1.VolumeMount{{Name: "token", MountPath: tokenMountPath, ReadOnly: true}}
	spec := podSpec(c)
	spec.Volumes = []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secretName}}}}
	meta := objectMeta(ns, podName)
	meta.Labels = map[string]string{"app": app}
	return &corev1.Pod{ObjectMeta: meta, Spec: spec}
}

// percentile is the nearest-rank p-th percentile of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := (p*len(s) + 99) / 100
	return s[max(rank, 1)-1]
}

var _ = Describe("Propagation on a real node", func() {
	It("puts each new 90-second token into the selected pod within 5 s (p95), which never reads an expired token", func(ctx SpecContext) {
		const name = "pushed"
		Expect(refresh.DefaultRenewMargin(pushedLifetime)).To(BeNumerically("<", kubeletPropagation),
			"a margin the kubelet alone cannot meet")
		etr := newRequest(name, pushedLifetime)
		etr.Spec.Propagation = &v1alpha1.Propagation{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "pushed-reader"}}}
		Expect(k8s.Create(ctx, etr)).To(Succeed())
		waitReady(ctx, etr)
		watcher := watchSecret(ctx, name)

		By("starting a reader the request selects, and one it does not, on the same Secret")
		pushed := tokenReaderPod("pushed-reader", "pushed-reader", name, pushedReadInterval)
		plain := tokenReaderPod("plain-reader", "plain-reader", name, pushedReadInterval)
		for _, p := range []*corev1.Pod{pushed, plain} {
			Expect(k8s.Create(ctx, p)).To(Succeed())
		}
		for _, p := range []*corev1.Pod{pushed, plain} {
			Eventually(func(g Gomega) {
				g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
				g.Expect(p.Status.Phase).To(Equal(corev1.PodRunning))
			}).WithContext(ctx).WithTimeout(2 * time.Minute).Should(Succeed())
		}

		By(fmt.Sprintf("reading through %d renewals", pushedRenewals))
		var lines []logLine
		var least time.Duration
		Eventually(func(g Gomega) int {
			var err error
			lines, err = podLogLines(pushed, "reader")
			g.Expect(err).NotTo(HaveOccurred())
			digests, l, problem := checkReadings(lines)
			if problem != "" {
				StopTrying("the pushed reader saw a token the vendor does not accept").Wrap(fmt.Errorf("%s", problem)).Now()
			}
			least = l
			return len(digests)
		}).WithContext(ctx).WithTimeout(pushedRenewals*pushedLifetime/2+3*time.Minute).WithPolling(5*time.Second).
			Should(BeNumerically(">", pushedRenewals), "the first token and %d renewals", pushedRenewals)

		delays := propagation(lines, watcher.written())
		Expect(len(delays)).To(BeNumerically(">=", pushedRenewals-1), "renewals the reader saw arrive")
		p95 := percentile(delays, 95)
		plainLines, err := podLogLines(plain, "reader")
		Expect(err).NotTo(HaveOccurred())
		summary := fmt.Sprintf("pushed reader: %d readings, least remaining %s, Secret-to-pod %v (p95 %s); "+
			"unselected reader on the same Secret: Secret-to-pod %v, %d of %d readings expired or refused",
			len(lines), least, delays, p95, propagation(plainLines, watcher.written()), badReadings(plainLines), len(plainLines))
		AddReportEntry("propagation", summary)
		GinkgoWriter.Println("Propagation:", summary)
		Expect(p95).To(BeNumerically("<=", pushedP95))
		Expect(least).To(BeNumerically(">", 0))

		By("leaving the pod the request does not select alone")
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(plain), plain)).To(Succeed())
		Expect(plain.Annotations).NotTo(HaveKey(v1alpha1.TokenDigestAnnotation))
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(pushed), pushed)).To(Succeed())
		Expect(pushed.Annotations).To(HaveKeyWithValue(v1alpha1.TokenDigestAnnotation, secretDigest(ctx, name)))
	}, NodeTimeout(12*time.Minute))
})

// badReadings counts the readings of an expired token or one the simulator
// refused.
func badReadings(lines []logLine) int {
	n := 0
	for _, l := range lines {
		if remaining, err := time.ParseDuration(l.Fields["remaining"]); err != nil || remaining <= 0 || l.Fields["verdict"] != "valid" {
			n++
		}
	}
	return n
}
