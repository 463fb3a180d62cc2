package provider

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// vendorKey is the context key of the vendor name WithVendor sets.
type vendorKey struct{}

// WithVendor names the vendor whose calls ctx carries, so the shared HTTP
// path (Do) can label what it measures. Each vendor's Issue sets it with its
// own v1alpha1.Vendor* name, a fixed set, so metric labels stay bounded.
func WithVendor(ctx context.Context, vendor string) context.Context {
	return context.WithValue(ctx, vendorKey{}, vendor)
}

// vendorOf is the vendor WithVendor set on ctx, "" when none was.
func vendorOf(ctx context.Context) string {
	v, _ := ctx.Value(vendorKey{}).(string)
	return v
}

// maxClockSkew bounds a skew that is recorded: a Date header further off is
// a broken or hostile server, not a clock, and would only distort the gauge.
const maxClockSkew = 24 * time.Hour

// VendorClockSkew is how far each vendor's clock is ahead of the operator's
// (negative: behind), from the Date header of its last answer, so an alert
// can catch the skew that makes vendors refuse tokens as not yet valid or
// already expired. Registered with controller-runtime's metrics registry,
// which the manager serves.
var VendorClockSkew = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "embedtoken_vendor_clock_skew_seconds",
	Help: "How far the vendor's clock is ahead of the operator's (negative: behind), from the Date header of its last answer; resolution about a second.",
}, []string{"vendor"})

func init() {
	// Registering fails only when an equal collector is registered already,
	// which serves the same series.
	_ = ctrlmetrics.Registry.Register(VendorClockSkew)
}

// ClockSkew is how far the clock of a server that answered with the Date
// header date is ahead of the local clock, for a request sent at sent and
// answered at received (local times). The server wrote Date while handling
// the request, so it is compared with the middle of the exchange; Date has
// whole seconds, so the result is good to about a second. ok is false
// without a parseable Date, or one more than a day off.
func ClockSkew(date string, sent, received time.Time) (skew time.Duration, ok bool) {
	if date == "" {
		return 0, false
	}
	at, err := http.ParseTime(date)
	if err != nil {
		return 0, false
	}
	mid := sent.Add(received.Sub(sent) / 2)
	skew = at.Sub(mid)
	if skew > maxClockSkew || skew < -maxClockSkew {
		return 0, false
	}
	return skew, true
}

// observeClockSkew records the skew of an answer to a call of ctx's vendor;
// calls without a vendor are not recorded.
func observeClockSkew(ctx context.Context, header http.Header, sent, received time.Time) {
	vendor := vendorOf(ctx)
	if vendor == "" {
		return
	}
	if skew, ok := ClockSkew(header.Get("Date"), sent, received); ok {
		VendorClockSkew.WithLabelValues(vendor).Set(skew.Seconds())
	}
}
