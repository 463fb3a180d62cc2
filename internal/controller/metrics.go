package controller

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// Label names of the per-request series.
var requestLabels = []string{"namespace", "name", "provider", "vendor"}

// IssueResultSuccess is the result label of a vendor call that returned a
// usable token; failed calls are labelled with their condition reason.
const IssueResultSuccess = "success"

// collectTimeout bounds the cache read of one scrape.
const collectTimeout = 5 * time.Second

// Metrics are the operator's Prometheus series: per-request validity, so an
// alert can fire before a token expires, and per-vendor call counts and
// latency. They are served by the manager's metrics endpoint.
type Metrics struct {
	issues   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	requests *requestCollector
}

// NewMetrics creates the collectors and registers them with reg; the
// per-request series are read from requests (the manager's cache) at scrape
// time. Registering twice (a manager restarted in one process) reuses the
// collectors already registered, so their series continue, and points the
// per-request collector at the new reader.
func NewMetrics(reg prometheus.Registerer, requests client.Reader) (*Metrics, error) {
	m := &Metrics{
		issues: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "embedtoken_issue_total",
			Help: "Vendor calls to issue a token, by vendor and result (success or the failure's condition reason).",
		}, []string{"vendor", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "embedtoken_vendor_request_duration_seconds",
			Help:    "Duration of vendor calls to issue a token.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"vendor"}),
		requests: newRequestCollector(),
	}
	var err error
	register(reg, &m.issues, &err)
	register(reg, &m.duration, &err)
	register(reg, &m.requests, &err)
	if err != nil {
		return nil, err
	}
	m.requests.reader.Store(&requests)
	return m, nil
}

// register registers *c with reg, or swaps in the equal collector that is
// already registered. It records the first failure in *errp.
func register[T prometheus.Collector](reg prometheus.Registerer, c *T, errp *error) {
	if *errp != nil {
		return
	}
	err := reg.Register(*c)
	var already prometheus.AlreadyRegisteredError
	switch {
	case errors.As(err, &already):
		existing, ok := already.ExistingCollector.(T)
		if !ok {
			*errp = fmt.Errorf("metric registered with another type: %w", err)
			return
		}
		*c = existing
	case err != nil:
		*errp = err
	}
}

// ObserveIssue records one vendor call: its latency and its result.
func (m *Metrics) ObserveIssue(vendor string, took time.Duration, err error) {
	if m == nil {
		return
	}
	result := IssueResultSuccess
	if err != nil {
		result = provider.Classify(err).Reason
	}
	m.issues.WithLabelValues(vendor, result).Inc()
	m.duration.WithLabelValues(vendor).Observe(took.Seconds())
}

// requestCollector publishes every EmbedTokenRequest's status as gauges
// when Prometheus scrapes, read from the manager's cache (as cert-manager
// and kube-state-metrics do). Nothing is held between scrapes, so tens of
// thousands of requests cost no memory for their series, and a deleted or
// moved request leaves no stale series behind.
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
	var list v1alpha1.EmbedTokenRequestList
	// Read-only use of cached objects: no deep copy of every request.
	if err := (*reader).List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		ch <- prometheus.NewInvalidMetric(c.ready, fmt.Errorf("listing EmbedTokenRequests: %w", err))
		return
	}
	for i := range list.Items {
		c.collectRequest(ch, &list.Items[i])
	}
}

func (c *requestCollector) collectRequest(ch chan<- prometheus.Metric, etr *v1alpha1.EmbedTokenRequest) {
	labels := []string{etr.Namespace, etr.Name, etr.Spec.ProviderRef.Name, etr.Spec.Vendor()}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
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
