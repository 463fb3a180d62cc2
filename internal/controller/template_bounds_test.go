package controller_test

import (
	"context"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

var _ = Describe("Body template bounds", func() {
	It("refuses templates that would build gigabytes, on the provider when the text shows it, else on the request", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		f.createCredentials(ctx)

		By("a template whose printf pads to a megabyte, chained through variables")
		padded := httpProviderSpec(f.sim.URL())
		padded.HTTP.Body = `{{ $a := printf "%01000000d" 0 }}{{ $b := printf "%s%s%s%s%s%s%s%s%s%s" $a $a $a $a $a $a $a $a $a $a }}` +
			`{{ $c := printf "%s%s%s%s%s%s%s%s%s%s" $b $b $b $b $b $b $b $b $b $b }}{"k":"{{ $c }}"}`
		f.createNamedProvider(ctx, "padded", padded)
		Eventually(func(g Gomega) {
			p := &v1alpha1.EmbedProvider{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "padded"}, p)).To(Succeed())
			g.Expect(meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)).To(HaveValue(And(
				haveReason(metav1.ConditionFalse, v1alpha1.ReasonProviderInvalid),
				HaveField("Message", ContainSubstring("printf: a width or precision above 1024 is not supported")))))
		}).Should(Succeed())
		etr := f.httpRequest("padded", "padded", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		Eventually(readyCondition(ctx, etr)).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonProviderInvalid))

		By("a template that repeats a request's variable, with a large one")
		repeated := httpProviderSpec(f.sim.URL())
		ten := `"` + strings.Repeat("%s", 10) + `"`
		repeated.HTTP.Body = `{{ $a := printf ` + ten + strings.Repeat(" .Vars.v", 10) + ` }}{{ $b := printf ` + ten + strings.Repeat(" $a", 10) +
			` }}{{ $c := printf ` + ten + strings.Repeat(" $b", 10) + ` }}{"k":"{{ $c }}"}`
		f.createNamedProvider(ctx, "repeated", repeated)
		big := f.httpRequest("repeated", "repeated", time.Hour)
		big.Spec.HTTP.Variables = map[string]string{"v": strings.Repeat("x", 100_000)}
		Expect(k8sClient.Create(ctx, big)).To(Succeed())
		Eventually(readyCondition(ctx, big)).Should(And(
			haveReason(metav1.ConditionFalse, v1alpha1.ReasonInvalidRequest),
			HaveField("Message", ContainSubstring("would build more than 1048576 bytes"))))
		Expect(f.sim.CallCount()).To(BeZero())
	})
})
