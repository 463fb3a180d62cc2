package controller_test

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/controller"
	"github.com/embedtokens/embed-token-operator/internal/provider/registry"
)

// The namespaced mode is for teams without cluster-wide rights, so this spec
// runs the operator as an identity that holds only a Role (the generated
// manager rules) in one namespace. The suite's cluster-wide manager is
// stopped meanwhile, so every reconcile seen here is the namespaced one's.
var _ = Describe("Namespaced mode (--watch-namespaces)", func() {
	It("serves only the watched namespace, with a Role there, and reports ClusterEmbedProviders as unusable", func() {
		ctx := context.Background()
		watched := newFixtureWithProvider(ctx)
		other := newFixtureWithProvider(ctx)
		cp := createClusterProvider(ctx, "ns-mode-"+watched.ns, watched.clusterSpec(), nil)

		stopMgr()
		DeferCleanup(func() { stopMgr = startManager() })
		DeferCleanup(startNamespacedManager(grantNamespacedRole(ctx, watched.ns), watched.ns))

		served := watched.request("served", time.Hour)
		viaCluster := watched.request("via-cluster", time.Hour)
		viaCluster.Spec.ProviderRef = v1alpha1.ProviderRef{Kind: "ClusterEmbedProvider", Name: cp.Name}
		ignored := other.request("ignored", time.Hour)
		for _, etr := range []*v1alpha1.EmbedTokenRequest{served, viaCluster, ignored} {
			Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		}

		waitForToken(ctx, served, "")
		Eventually(readyCondition(ctx, viaCluster)).Should(And(
			haveReason(metav1.ConditionFalse, v1alpha1.ReasonProviderNotFound),
			HaveField("Message", ContainSubstring("namespaced mode"))))
		Expect(watched.callsFor("via-cluster")()).To(BeZero())
		By("a namespace outside --watch-namespaces is not served, though a request in it changed before one that was")
		patchObject(ctx, ignored, func(etr *v1alpha1.EmbedTokenRequest) {
			etr.Annotations = map[string]string{barrierAnnotation: "ignored"}
		})
		settle(ctx, served)
		Expect(barriers.reconciled(client.ObjectKeyFromObject(ignored))).To(BeFalse(), "no manager reconciled the request")
		Expect(get(ctx, ignored.DeepCopy()).(*v1alpha1.EmbedTokenRequest).Status.Conditions).To(BeEmpty())
		Expect(other.sim.CallCount()).To(BeZero())
	})
})

// grantNamespacedRole creates an identity whose only rights are the
// generated manager rules (config/rbac/role.yaml) bound by a Role in ns, as
// the Helm chart renders them in namespaced mode, and returns its config.
func grantNamespacedRole(ctx context.Context, ns string) *rest.Config {
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "role.yaml"))
	Expect(err).NotTo(HaveOccurred())
	var clusterRole rbacv1.ClusterRole
	Expect(yaml.Unmarshal(raw, &clusterRole)).To(Succeed())

	name := "embed-token-operator-" + ns
	Expect(k8sClient.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Rules: clusterRole.Rules,
	})).To(Succeed())
	Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: name}},
	})).To(Succeed())
	user, err := testEnv.AddUser(envtest.User{Name: name}, cfg)
	Expect(err).NotTo(HaveOccurred())
	return user.Config()
}

// startNamespacedManager runs the manager as cmd/main.go does with
// --watch-namespaces, and returns a function that stops it.
func startNamespacedManager(restCfg *rest.Config, namespaces ...string) func() {
	return startManagerWith(restCfg, ctrl.Log, namespaces...)
}

// startManagerWith runs a manager wired as cmd/main.go wires it, with its
// own identity, logger and watched namespaces (all when none), and returns a
// function that stops it. The suite's manager must be stopped meanwhile.
func startManagerWith(restCfg *rest.Config, logger logr.Logger, namespaces ...string) func() {
	// Without namespace-scoped watches the identity's lists are forbidden:
	// the cache sync fails fast instead of waiting two minutes.
	return startOperator(restCfg, logger, 15*time.Second, controller.Options{
		Providers:         registry.All(),
		WatchNamespaces:   namespaces,
		MetricsRegisterer: prometheus.NewRegistry(),
		AllowVendorCIDRs:  allowVendorCIDRs,
		VendorResolver:    testDNS.Resolver(),
		Reconciled:        barriers.observe,
	})
}
