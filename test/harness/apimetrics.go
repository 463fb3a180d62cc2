package harness

import (
	"bufio"
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// RequestKey groups the API server's request counter: verb (create, update,
// patch, delete, get, list, watch, ...), resource and subresource.
type RequestKey struct {
	Verb, Resource, Subresource string
}

// String renders the key as "verb resource[/subresource]".
func (k RequestKey) String() string {
	if k.Subresource != "" {
		return k.Verb + " " + k.Resource + "/" + k.Subresource
	}
	return k.Verb + " " + k.Resource
}

// IsWrite reports whether the verb changes state.
func (k RequestKey) IsWrite() bool {
	switch k.Verb {
	case "POST", "PUT", "PATCH", "DELETE", "create", "update", "patch", "delete", "deletecollection", "apply":
		return true
	}
	return false
}

// RequestCounts are apiserver_request_total values summed over the labels
// RequestKey does not keep (code, scope, version, component).
type RequestCounts map[RequestKey]float64

// Sub returns c minus before, per key, keeping keys that moved.
func (c RequestCounts) Sub(before RequestCounts) RequestCounts {
	out := RequestCounts{}
	for k, v := range c {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// Writes sums the write verbs, optionally only for one resource ("" = all).
func (c RequestCounts) Writes(resource string) float64 {
	var n float64
	for k, v := range c {
		if k.IsWrite() && (resource == "" || k.Resource == resource) {
			n += v
		}
	}
	return n
}

// Keys returns the keys sorted, for stable reports.
func (c RequestCounts) Keys() []RequestKey {
	keys := make([]RequestKey, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	return keys
}

// ScrapeRequestCounts reads apiserver_request_total from the API server's
// /metrics with an admin configuration.
func ScrapeRequestCounts(ctx context.Context, cfg *rest.Config) (RequestCounts, error) {
	raw, err := scrapeMetrics(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return parseRequestCounts(raw)
}

// ScrapeRequestSeconds reads apiserver_request_duration_seconds_sum: the
// time the API server spent serving each verb and resource (long-running
// WATCHes excluded by the API server itself).
func ScrapeRequestSeconds(ctx context.Context, cfg *rest.Config) (RequestCounts, error) {
	raw, err := scrapeMetrics(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return parseSamples(raw, "apiserver_request_duration_seconds_sum{")
}

// scrapeMetrics returns the API server's /metrics text.
func scrapeMetrics(ctx context.Context, cfg *rest.Config) (string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", fmt.Errorf("creating a clientset: %w", err)
	}
	raw, err := cs.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("scraping the API server's /metrics: %w", err)
	}
	return string(raw), nil
}

var labelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// parseRequestCounts reads the apiserver_request_total samples of a
// Prometheus text exposition.
func parseRequestCounts(text string) (RequestCounts, error) {
	return parseSamples(text, "apiserver_request_total{")
}

// parseSamples sums the samples of one metric (name ends in "{") by verb,
// resource and subresource.
func parseSamples(text, name string) (RequestCounts, error) {
	out := RequestCounts{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		end := strings.LastIndexByte(line, '}')
		if end < 0 {
			return nil, fmt.Errorf("malformed sample %q", line)
		}
		v, err := strconv.ParseFloat(strings.Fields(line[end+1:])[0], 64)
		if err != nil {
			return nil, fmt.Errorf("malformed value in %q: %w", line, err)
		}
		labels := map[string]string{}
		for _, m := range labelRE.FindAllStringSubmatch(line[len(name):end], -1) {
			labels[m[1]] = m[2]
		}
		out[RequestKey{Verb: labels["verb"], Resource: labels["resource"], Subresource: labels["subresource"]}] += v
	}
	return out, sc.Err()
}
