package metrics

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/api/meta"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// collectTimeout bounds the cache read of one scrape.
const collectTimeout = 5 * time.Second

// The per-request series' label names, in the sorted order the exposition
// needs. One copy serves every series.
var (
	labelName, labelNamespace, labelProvider, labelVendor = "name", "namespace", "provider", "vendor"
	requestLabels                                         = []string{labelNamespace, labelName, labelProvider, labelVendor}
)

// requestCollector publishes every EmbedTokenRequest's status as gauges
// when Prometheus scrapes, read from the manager's cache (as cert-manager
// and kube-state-metrics do). Nothing is held between scrapes, so tens of
// thousands of requests cost no memory for their series, and a deleted or
// moved request leaves no stale series behind.
//
// A scrape holds all its series at once until they are encoded, so their
// size is the manager's peak memory: the requests are read from the
// informer's store by pointer (a typed list would copy each, 616 bytes), and
// the four gauges of a request share one allocation and one set of labels
// (prometheus.MustNewConstMetric would build and validate them four times).
type requestCollector struct {
	reader                           atomic.Pointer[client.Reader]
	expiry, renewal, ready, failures *prometheus.Desc
}

func newRequestCollector() *requestCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, requestLabels, nil)
	}
	return &requestCollector{
		expiry:   desc("embedtoken_expiry_timestamp_seconds", "Unix time at which the token currently stored for the request expires."),
		renewal:  desc("embedtoken_renewal_timestamp_seconds", "Unix time at which the operator next asks the vendor for a token for the request."),
		ready:    desc("embedtoken_ready", "1 when the request's Ready condition is True, else 0."),
		failures: desc("embedtoken_consecutive_failures", "Consecutive failed attempts to issue a token for the request."),
	}
}

// Describe implements prometheus.Collector.
func (c *requestCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.expiry
	ch <- c.renewal
	ch <- c.ready
	ch <- c.failures
}

// Collect implements prometheus.Collector.
func (c *requestCollector) Collect(ch chan<- prometheus.Metric) {
	reader := c.reader.Load()
	if reader == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	requests, err := cachedRequests(ctx, *reader)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.ready, fmt.Errorf("listing EmbedTokenRequests: %w", err))
		return
	}
	for _, etr := range requests {
		c.collectRequest(ch, etr)
	}
}

// cachedRequests returns the cached requests for read-only use. From a
// manager's cache they come straight from the informer's store; any other
// reader (or a cache over several namespaces) lists them.
func cachedRequests(ctx context.Context, r client.Reader) ([]*v1alpha1.EmbedTokenRequest, error) {
	if c, ok := r.(cache.Informers); ok {
		inf, err := c.GetInformer(ctx, &v1alpha1.EmbedTokenRequest{})
		if err != nil {
			return nil, err
		}
		if s, ok := inf.(interface{ GetStore() toolscache.Store }); ok {
			items := s.GetStore().List()
			requests := make([]*v1alpha1.EmbedTokenRequest, 0, len(items))
			for _, item := range items {
				if etr, ok := item.(*v1alpha1.EmbedTokenRequest); ok {
					requests = append(requests, etr)
				}
			}
			return requests, nil
		}
	}
	var list v1alpha1.EmbedTokenRequestList
	if err := r.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	requests := make([]*v1alpha1.EmbedTokenRequest, len(list.Items))
	for i := range list.Items {
		requests[i] = &list.Items[i]
	}
	return requests, nil
}

func (c *requestCollector) collectRequest(ch chan<- prometheus.Metric, etr *v1alpha1.EmbedTokenRequest) {
	s := &requestSeries{vendor: etr.Spec.Vendor()}
	s.pairs = [4]dto.LabelPair{
		{Name: &labelName, Value: &etr.Name},
		{Name: &labelNamespace, Value: &etr.Namespace},
		{Name: &labelProvider, Value: &etr.Spec.ProviderRef.Name},
		{Name: &labelVendor, Value: &s.vendor},
	}
	for i := range s.pairs {
		s.labels[i] = &s.pairs[i]
	}
	n := 0
	gauge := func(d *prometheus.Desc, v float64) {
		g := &s.gauges[n]
		n++
		g.desc, g.labels, g.value = d, s.labels[:], v
		g.gauge.Value = &g.value
		ch <- g
	}
	st := &etr.Status
	if st.ExpiresAt != nil {
		gauge(c.expiry, float64(st.ExpiresAt.Unix()))
	}
	if st.RenewAt != nil {
		gauge(c.renewal, float64(st.RenewAt.Unix()))
	}
	ready := 0.0
	if meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionReady) {
		ready = 1
	}
	gauge(c.ready, ready)
	gauge(c.failures, float64(st.FailedAttempts))
}

// requestSeries is one request's gauges in one allocation, sharing their
// label pairs. The label values point into the cached request, which the
// informer replaces rather than mutates.
type requestSeries struct {
	vendor string
	pairs  [4]dto.LabelPair
	labels [4]*dto.LabelPair
	gauges [4]requestGauge
}

// requestGauge is a prometheus.Metric written from fields set once.
type requestGauge struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
	value  float64
	gauge  dto.Gauge
}

// Desc implements prometheus.Metric.
func (g *requestGauge) Desc() *prometheus.Desc { return g.desc }

// Write implements prometheus.Metric; the registry treats the label pairs
// as immutable, so every gauge of a request may hand out the same ones.
func (g *requestGauge) Write(m *dto.Metric) error {
	m.Label = g.labels
	m.Gauge = &g.gauge
	return nil
}
