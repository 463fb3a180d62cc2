package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// IssueResultSuccess is the result label of a vendor call that returned a
// usable token; failed calls are labelled with their condition reason.
const IssueResultSuccess = "success"

// Metrics are the operator's Prometheus series: per-request validity, so an
// alert can fire before a token expires, and per-vendor call counts and
// latency. They are served by the manager's metrics endpoint.
type Metrics struct {
	issues   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	requests *requestCollector
	memory   *memoryCollector
	// EventsDropped counts Events the event writer could not queue or write.
	EventsDropped prometheus.Counter
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
		memory:   newMemoryCollector(),
		EventsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "embedtoken_events_dropped_total",
			Help: "Events not recorded because too many were waiting to be written or the API server stayed unreachable.",
		}),
	}
	var err error
	Register(reg, &m.issues, &err)
	Register(reg, &m.duration, &err)
	Register(reg, &m.requests, &err)
	Register(reg, &m.memory, &err)
	Register(reg, &m.EventsDropped, &err)
	if err != nil {
		return nil, err
	}
	m.requests.reader.Store(&requests)
	return m, nil
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
