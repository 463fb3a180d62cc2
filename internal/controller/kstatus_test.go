package controller_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

// kstatusOf computes the kstatus of obj (a request, a template) as the API
// server holds it, exactly as Argo CD's and Flux's generic health checks and
// `kubectl wait` tooling built on cli-utils do.
func kstatusOf(ctx context.Context, obj client.Object) func(g Gomega) status.Status {
	return func(g Gomega) status.Status {
		cur := obj.DeepCopyObject().(client.Object)
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), cur)).To(Succeed())
		gvk, err := apiutil.GVKForObject(cur, scheme)
		g.Expect(err).NotTo(HaveOccurred())
		raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cur)
		g.Expect(err).NotTo(HaveOccurred())
		u := &unstructured.Unstructured{Object: raw}
		u.SetGroupVersionKind(gvk)
		res, err := status.Compute(u)
		g.Expect(err).NotTo(HaveOccurred())
		return res.Status
	}
}

var _ = Describe("kstatus", func() {
	var ctx context.Context
	BeforeEach(func() { ctx = context.Background() })

	It("reports a request with a fresh token as Current", func() {
		f := newFixtureWithProvider(ctx)
		etr := f.request("current", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		waitForToken(ctx, etr, "")
		Eventually(kstatusOf(ctx, etr)).Should(Equal(status.CurrentStatus))
		settle(ctx, etr)
		Expect(kstatusOf(ctx, etr)(Default)).To(Equal(status.CurrentStatus))
	})

	It("reports a request still waiting for its first token as InProgress", func() {
		f := newFixtureWithProvider(ctx)
		f.sim.SetFault(vendorsim.Fault{Status: 503, RetryAfter: time.Second})
		etr := f.request("issuing", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		Eventually(readyCondition(ctx, etr)).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonVendorUnavailable))
		Expect(kstatusOf(ctx, etr)(Default)).To(Equal(status.InProgressStatus))

		f.sim.ClearFault()
		waitForToken(ctx, etr, "")
		Eventually(kstatusOf(ctx, etr)).Should(Equal(status.CurrentStatus))
	})

	It("reports a request whose vendor rejects the credentials as Failed", func() {
		f := newFixture(ctx)
		f.createSecret(ctx, "qrvey-credentials", map[string][]byte{"apiKey": []byte("rejected-key")})
		f.createProvider(ctx)
		etr := f.request("failed", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		Eventually(readyCondition(ctx, etr)).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonVendorUnauthorized))
		Expect(kstatusOf(ctx, etr)(Default)).To(Equal(status.FailedStatus))
	})
})
