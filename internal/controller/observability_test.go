package controller_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// gauge returns the value of the series of family name whose labels include
// want, from the registry the manager serves on its metrics endpoint.
func gauge(name string, want map[string]string) func(g Gomega) float64 {
	return func(g Gomega) float64 {
		series := seriesWith(g, name, want)
		g.Expect(series).NotTo(BeEmpty(), "no series %s%v", name, want)
		return value(series[0])
	}
}

// seriesWith returns the series of family name whose labels include want,
// from the registry the manager serves on its metrics endpoint.
func seriesWith(g Gomega, name string, want map[string]string) []*dto.Metric {
	return seriesIn(g, ctrlmetrics.Registry, name, want)
}

// seriesIn returns the series of family name in reg whose labels include
// want.
func seriesIn(g Gomega, reg prometheus.Gatherer, name string, want map[string]string) []*dto.Metric {
	families, err := reg.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	var out []*dto.Metric
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, want) {
				out = append(out, m)
			}
		}
	}
	return out
}

func value(m *dto.Metric) float64 { return m.GetGauge().GetValue() + m.GetCounter().GetValue() }

func hasLabels(m *dto.Metric, want map[string]string) bool {
	found := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			found++
		}
	}
	return found == len(want)
}

var _ = Describe("Metrics", func() {
	It("publishes each request's validity and every vendor call on the manager's registry", func() {
		ctx := context.Background()
		f := newFixtureWithProvider(ctx)
		etr := f.request("observed", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		waitForToken(ctx, etr, "")
		get(ctx, etr)

		labels := map[string]string{"namespace": f.ns, "name": "observed", "provider": "qrvey", "vendor": v1alpha1.VendorQrvey}
		Eventually(gauge("embedtoken_ready", labels)).Should(Equal(1.0))
		Expect(gauge("embedtoken_expiry_timestamp_seconds", labels)(Default)).To(Equal(float64(etr.Status.ExpiresAt.Unix())))
		Expect(gauge("embedtoken_renewal_timestamp_seconds", labels)(Default)).To(Equal(float64(etr.Status.RenewAt.Unix())))
		Expect(gauge("embedtoken_consecutive_failures", labels)(Default)).To(BeZero())
		Expect(gauge("embedtoken_issue_total", map[string]string{"vendor": v1alpha1.VendorQrvey, "result": "success"})(Default)).To(BeNumerically(">=", 1))

		By("dropping the series when the request is deleted")
		Expect(k8sClient.Delete(ctx, etr)).To(Succeed())
		Eventually(func(g Gomega) {
			families, err := ctrlmetrics.Registry.Gather()
			g.Expect(err).NotTo(HaveOccurred())
			for _, f := range families {
				for _, m := range f.GetMetric() {
					g.Expect(hasLabels(m, labels)).To(BeFalse(), "stale series %s", f.GetName())
				}
			}
		}).Should(Succeed())
	})
})
