package controller

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// Label names of the per-request series.
var requestLabels = []string{"namespace", "name", "provider", "vendor"}

// IssueResultSuccess is the result label of a vendor call that returned a
// usable token; failed calls are labelled with their condition reason.
const IssueResultSuccess = "success"

// Metrics are the operator's Prometheus series: per-request validity, so an
// alert can fire before a token expires, and per-vendor call counts and
// latency. They are served by the manager's metrics endpoint.
type Metrics struct {
	expiry   *prometheus.GaugeVec
	renewal  *prometheus.GaugeVec
	ready    *prometheus.GaugeVec
	failures *prometheus.GaugeVec
	issues   *prometheus.CounterVec
	duration *prometheus.HistogramVec

	mu sync.Mutex
	// labels remembers each request's label values, so a request that moves
	// to another provider or is deleted leaves no stale series.
	labels map[types.NamespacedName]prometheus.Labels
}

// NewMetrics creates the collectors and registers them with reg. Registering
// twice (a manager restarted in one process) reuses the collectors already
// registered, so their series continue.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		expiry:   requestGauge("embedtoken_expiry_timestamp_seconds", "Unix time at which the token currently stored for the request expires."),
		renewal:  requestGauge("embedtoken_renewal_timestamp_seconds", "Unix time at which the operator next asks the vendor for a token for the request."),
		ready:    requestGauge("embedtoken_ready", "1 when the request's Ready condition is True, else 0."),
		failures: requestGauge("embedtoken_consecutive_failures", "Consecutive failed attempts to issue a token for the request."),
		issues: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "embedtoken_issue_total",
			Help: "Vendor calls to issue a token, by vendor and result (success or the failure's condition reason).",
		}, []string{"vendor", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "embedtoken_vendor_request_duration_seconds",
			Help:    "Duration of vendor calls to issue a token.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"vendor"}),
		labels: map[types.NamespacedName]prometheus.Labels{},
	}
	var err error
	register(reg, &m.expiry, &err)
	register(reg, &m.renewal, &err)
	register(reg, &m.ready, &err)
	register(reg, &m.failures, &err)
	register(reg, &m.issues, &err)
	register(reg, &m.duration, &err)
	if err != nil {
		return nil, err
	}
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

// requestGauge is a gauge with one series per EmbedTokenRequest.
func requestGauge(name, help string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, requestLabels)
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

// SetRequest publishes a request's status as gauges.
func (m *Metrics) SetRequest(etr *v1alpha1.EmbedTokenRequest) {
	if m == nil {
		return
	}
	l := prometheus.Labels{
		"namespace": etr.Namespace, "name": etr.Name,
		"provider": etr.Spec.ProviderRef.Name, "vendor": etr.Spec.Vendor(),
	}
	m.forget(types.NamespacedName{Namespace: etr.Namespace, Name: etr.Name}, l)

	st := etr.Status
	setTime(m.expiry, l, st.ExpiresAt != nil, func() time.Time { return st.ExpiresAt.Time })
	setTime(m.renewal, l, st.RenewAt != nil, func() time.Time { return st.RenewAt.Time })
	ready := 0.0
	if meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionReady) {
		ready = 1
	}
	m.ready.With(l).Set(ready)
	m.failures.With(l).Set(float64(st.FailedAttempts))
}

// DeleteRequest removes a deleted request's series.
func (m *Metrics) DeleteRequest(key types.NamespacedName) {
	if m == nil {
		return
	}
	m.forget(key, nil)
}

// forget drops the series of key's previous labels unless they equal next,
// and remembers next.
func (m *Metrics) forget(key types.NamespacedName, next prometheus.Labels) {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev, ok := m.labels[key]
	if ok && !sameLabels(prev, next) {
		for _, v := range []*prometheus.GaugeVec{m.expiry, m.renewal, m.ready, m.failures} {
			v.Delete(prev)
		}
	}
	if next == nil {
		delete(m.labels, key)
		return
	}
	m.labels[key] = next
}

func sameLabels(a, b prometheus.Labels) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// setTime sets a timestamp gauge, or removes the series when there is no time.
func setTime(v *prometheus.GaugeVec, l prometheus.Labels, ok bool, t func() time.Time) {
	if !ok {
		v.Delete(l)
		return
	}
	v.With(l).Set(float64(t().Unix()))
}
