package load

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

const (
	// lifetime is what every request asks for; the flood's vendor grants
	// one second of it.
	lifetime = time.Hour
	// floodRequests are the requests on the one-second vendor.
	floodRequests = 1000
	// bigRequests are the requests on the vendor answering mebibyte tokens.
	bigRequests = 150
	// authProviders each have a mebibyte auth token and one request.
	authProviders = 200
	// stormRequests have their refresh annotation set stormRounds times.
	stormRequests, stormRounds = 200, 5
	// quietDeadline is how long the quiet namespace may wait for its first
	// token; the fairness spec holds the same bound.
	quietDeadline = 15 * time.Second
	// memoryLimit is the manager's limits.memory in config/manager.
	memoryLimit = 256 << 20
)

var _ = Describe("One namespace's load", func() {
	It("leaves another namespace its first token within 15 s and the manager under its 256 Mi memory limit", func(ctx SpecContext) {
		v := startVendor()
		DeferCleanup(v.srv.Close)
		// GOMEMLIMIT as the manager sets it from its container's limit.
		m := startManager("load", []string{fmt.Sprintf("GOMEMLIMIT=%d", memoryLimit*9/10)}, "--allow-vendor-cidrs="+v.hostPort())

		By("one namespace creating all that edit in it allows")
		const flood = "alice"
		objs := []client.Object{namespace(flood), credentials(flood),
			v.httpProvider(flood, "short", pathShort), v.httpProvider(flood, "big", pathBig)}
		for i := range authProviders {
			objs = append(objs, v.authProvider(flood, fmt.Sprintf("auth-%03d", i)))
		}
		for _, o := range objs {
			Expect(cp.Client.Create(ctx, o)).To(Succeed())
		}
		reportOnFailure(flood, "short-0000", "big-0000", "auth-0000")
		createRequests(ctx, flood, "short", floodRequests, func(int) string { return "short" })
		createRequests(ctx, flood, "big", bigRequests, func(int) string { return "big" })
		createRequests(ctx, flood, "auth", authProviders, func(i int) string { return fmt.Sprintf("auth-%03d", i) })
		Eventually(func(g Gomega) {
			expectVendorStarted(g, v, pathShort, floodRequests)
			expectVendorStarted(g, v, pathBig, bigRequests)
			expectVendorStarted(g, v, pathAuth, authProviders)
		}).WithContext(ctx).WithTimeout(4 * time.Minute).WithPolling(time.Second).Should(Succeed())
		shortCalls := v.count(pathShort)

		By("the same namespace forcing refreshes while another namespace asks for its first token")
		storm := make(chan error, 1)
		go func() { storm <- refreshStorm(ctx, flood) }()
		const quiet = "bob"
		for _, o := range []client.Object{namespace(quiet), v.httpProvider(quiet, "quiet", pathQuiet)} {
			Expect(cp.Client.Create(ctx, o)).To(Succeed())
		}
		first := request(quiet, "first", "quiet")
		start := time.Now()
		Expect(cp.Client.Create(ctx, first)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(cp.Client.Get(ctx, client.ObjectKeyFromObject(first), first)).To(Succeed())
			g.Expect(harness.IsReady(first)).To(BeTrue(), "the quiet namespace's request is Ready")
		}).WithContext(ctx).WithTimeout(quietDeadline).WithPolling(100 * time.Millisecond).Should(Succeed())
		AddReportEntry("quiet namespace's first token after", time.Since(start).Round(time.Millisecond).String())
		Expect(<-storm).To(Succeed())

		By("every flooding request renewing once more")
		Eventually(func(g Gomega) {
			expectVendorStarted(g, v, pathShort, shortCalls+floodRequests)
		}).WithContext(ctx).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Succeed())

		exited, err := m.Exited()
		Expect(exited).To(BeFalse(), "the manager exited: %v", err)
		st, err := harness.ReadProcStats(m.PID())
		Expect(err).NotTo(HaveOccurred())
		AddReportEntry("manager", fmt.Sprintf("peak RSS %d MiB, CPU %s, vendor calls: short %d, big %d, auth %d",
			st.PeakRSS>>20, st.CPU.Round(time.Second), v.count(pathShort), v.count(pathBig), v.count(pathAuth)))
		Expect(st.PeakRSS).To(BeNumerically("<", memoryLimit), "peak RSS of the manager")
	}, SpecTimeout(15*time.Minute))
})

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// createRequests creates n requests named prefix-NNNN in ns, the i-th on
// provider(i).
func createRequests(ctx context.Context, ns, prefix string, n int, provider func(int) string) {
	Expect(harness.CreateParallel(ctx, n, 16, func(ctx context.Context, i int) error {
		return cp.Client.Create(ctx, request(ns, fmt.Sprintf("%s-%04d", prefix, i), provider(i)))
	})).To(Succeed())
}

// refreshStorm sets a new refresh annotation on the first stormRequests
// flooding requests, stormRounds times, as `kubectl annotate --overwrite`
// would.
func refreshStorm(ctx context.Context, ns string) error {
	for round := range stormRounds {
		patch := client.RawPatch(types.MergePatchType,
			fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"storm-%d"}}}`, v1alpha1.RefreshAnnotation, round))
		err := harness.CreateParallel(ctx, stormRequests, 8, func(ctx context.Context, i int) error {
			etr := &v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("short-%04d", i)}}
			return cp.Client.Patch(ctx, etr, patch)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// reportOnFailure attaches the named requests' Ready conditions to a
// failed spec's report.
func reportOnFailure(ns string, names ...string) {
	DeferCleanup(func(ctx SpecContext) {
		if !CurrentSpecReport().Failed() {
			return
		}
		for _, name := range names {
			etr := &v1alpha1.EmbedTokenRequest{}
			if err := cp.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, etr); err != nil {
				AddReportEntry(name, err.Error())
				continue
			}
			AddReportEntry(name, fmt.Sprintf("%+v", etr.Status.Conditions))
		}
	})
}
