/*
Copyright 2026 The embed-token-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package tokenendpoint

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	opmetrics "github.com/embedtokens/embed-token-operator/internal/metrics"
)

// Values of the result label of embedtoken_endpoint_request_duration_seconds.
const (
	resultCached = "cached"
	resultIssued = "issued"
	resultError  = "error"
)

// reasonOK is the reason label of a call answered with a token.
const reasonOK = "OK"

// metrics are the endpoint's Prometheus series. Calls are labelled with
// their template only once the template was found, so callers cannot add
// series by naming templates that do not exist, and a deleted template's
// series are dropped.
type metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	cacheHits   prometheus.Counter
	vendorCalls prometheus.Counter
	entries     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "embedtoken_endpoint_requests_total",
			Help: "Calls to the token endpoint, by template (empty until the template was found), HTTP status code and reason.",
		}, []string{"namespace", "template", "code", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "embedtoken_endpoint_request_duration_seconds",
			Help:    "Duration of calls to the token endpoint, by result: cached, issued (a vendor call) or error.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"result"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "embedtoken_endpoint_cache_hits_total",
			Help: "Calls to the token endpoint answered with a cached token.",
		}),
		vendorCalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "embedtoken_endpoint_vendor_calls_total",
			Help: "Vendor calls the token endpoint made, one for any number of identical concurrent calls.",
		}),
		entries: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "embedtoken_endpoint_cache_entries",
			Help: "Tokens the token endpoint holds in memory for calls that share them.",
		}),
	}
	var err error
	opmetrics.Register(reg, &m.requests, &err)
	opmetrics.Register(reg, &m.duration, &err)
	opmetrics.Register(reg, &m.cacheHits, &err)
	opmetrics.Register(reg, &m.vendorCalls, &err)
	opmetrics.Register(reg, &m.entries, &err)
	if err != nil {
		return nil, fmt.Errorf("registering the token endpoint's metrics: %w", err)
	}
	return m, nil
}

// observe records one answered call.
func (m *metrics) observe(namespace, template string, code int, reason, result string, took time.Duration) {
	m.requests.WithLabelValues(namespace, template, strconv.Itoa(code), reason).Inc()
	m.duration.WithLabelValues(result).Observe(took.Seconds())
}

// dropTemplate deletes a deleted template's series.
func (m *metrics) dropTemplate(namespace, template string) {
	m.requests.DeletePartialMatch(prometheus.Labels{"namespace": namespace, "template": template})
}
