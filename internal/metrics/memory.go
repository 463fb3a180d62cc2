package metrics

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
	held                              atomic.Pointer[HeldUsage]
	clients                           atomic.Pointer[HTTPClientCounter]
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
		for ns, n := range (*held).Usage() {
			ch <- prometheus.MustNewConstMetric(c.heldBytes, prometheus.GaugeValue, float64(n), ns)
		}
	}
	if clients := c.clients.Load(); clients != nil {
		n, _, pools := (*clients).HTTPClientCounts()
		ch <- prometheus.MustNewConstMetric(c.httpClients, prometheus.GaugeValue, float64(n))
		ch <- prometheus.MustNewConstMetric(c.caBundles, prometheus.GaugeValue, float64(pools))
	}
}

// HeldUsage reports the bytes of tokens held for a retry, per namespace:
// the token store's Held does.
type HeldUsage interface {
	Usage() map[string]int64
}

// HTTPClientCounter counts the vendor HTTP clients and parsed CA bundles
// kept: the Issuer does.
type HTTPClientCounter interface {
	HTTPClientCounts() (clients, limiters, pools int)
}

// ObserveMemory points the memory series at a reconciler's held tokens and
// its Issuer's HTTP clients (a manager restarted in one process replaces
// them).
func (m *Metrics) ObserveMemory(held HeldUsage, clients HTTPClientCounter) {
	if m == nil {
		return
	}
	m.memory.held.Store(&held)
	m.memory.clients.Store(&clients)
}
