package controller

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// memoryCollector publishes, when Prometheus scrapes, the size of what the
// request reconciler keeps in memory between reconciles and tenants' objects
// could grow: held tokens, vendor HTTP clients and parsed CA bundles. Each
// is bounded; the series show how near the bounds a cluster runs and that
// what deleted objects left goes with them.
type memoryCollector struct {
	held                              atomic.Pointer[heldTokens]
	clients                           atomic.Pointer[httpClientCounter]
	heldBytes, httpClients, caBundles *prometheus.Desc
}

func newMemoryCollector() *memoryCollector {
	return &memoryCollector{
		heldBytes: prometheus.NewDesc("embedtoken_held_token_bytes",
			"Bytes of tokens kept in memory for a retry after a failed Secret write, by namespace.", []string{labelNamespace}, nil),
		httpClients: prometheus.NewDesc("embedtoken_vendor_http_clients",
			"HTTP clients kept for providers' vendor calls: one per provider used lately.", nil, nil),
		caBundles: prometheus.NewDesc("embedtoken_ca_bundles",
			"Parsed CA bundles kept for providers' HTTP clients: one per distinct bundle, shared by the providers that trust it.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *memoryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.heldBytes
	ch <- c.httpClients
	ch <- c.caBundles
}

// Collect implements prometheus.Collector.
func (c *memoryCollector) Collect(ch chan<- prometheus.Metric) {
	if held := c.held.Load(); held != nil {
		for ns, n := range held.usage() {
			ch <- prometheus.MustNewConstMetric(c.heldBytes, prometheus.GaugeValue, float64(n), ns)
		}
	}
	if clients := c.clients.Load(); clients != nil {
		n, _, pools := (*clients).HTTPClientCounts()
		ch <- prometheus.MustNewConstMetric(c.httpClients, prometheus.GaugeValue, float64(n))
		ch <- prometheus.MustNewConstMetric(c.caBundles, prometheus.GaugeValue, float64(pools))
	}
}

// httpClientCounter counts the vendor HTTP clients and parsed CA bundles
// kept: the Issuer does.
type httpClientCounter interface {
	HTTPClientCounts() (clients, limiters, pools int)
}

// observeMemory points the memory series at a reconciler's held tokens and
// its Issuer's HTTP clients (a manager restarted in one process replaces
// them).
func (m *Metrics) observeMemory(held *heldTokens, clients httpClientCounter) {
	if m == nil {
		return
	}
	m.memory.held.Store(held)
	m.memory.clients.Store(&clients)
}
