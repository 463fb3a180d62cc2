package provider_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/qrvey"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// TestClockSkew computes skews from Date headers against injected send and
// receive times.
func TestClockSkew(t *testing.T) {
	sent := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	date := func(d time.Duration) string { return sent.Add(d).Format(http.TimeFormat) }
	for _, tc := range []struct {
		name   string
		date   string
		took   time.Duration
		want   time.Duration
		wantOK bool
	}{
		{"a vendor 90s ahead", date(90 * time.Second), 0, 90 * time.Second, true},
		{"a vendor 30s behind", date(-30 * time.Second), 0, -30 * time.Second, true},
		{"a slow answer is compared with the middle of the exchange", date(2 * time.Second), 4 * time.Second, 0, true},
		{"a vendor in step", date(0), 0, 0, true},
		{"an RFC 850 date is read too", sent.Add(time.Minute).Format(time.RFC850), 0, time.Minute, true},
		{"no Date header", "", 0, 0, false},
		{"a Date that is not a date", "yesterday", 0, 0, false},
		{"a Date more than a day off is a broken server", date(25 * time.Hour), 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := provider.ClockSkew(tc.date, sent, sent.Add(tc.took))
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("ClockSkew = %s, %v; want %s, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

// TestDoRecordsClockSkew checks that the shared HTTP path sets the gauge
// for the vendor named on the context, and only then.
func TestDoRecordsClockSkew(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", time.Now().Add(2*time.Hour).UTC().Format(http.TimeFormat))
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(ts.Close)
	call := func(ctx context.Context) {
		req, _ := http.NewRequest(http.MethodGet, ts.URL, nil)
		if _, err := provider.Do(ctx, ts.Client(), req); err != nil {
			t.Fatal(err)
		}
	}
	before := testutil.CollectAndCount(provider.VendorClockSkew)
	call(context.Background())
	if n := testutil.CollectAndCount(provider.VendorClockSkew); n != before {
		t.Errorf("a call without a vendor added series: %d, was %d", n, before)
	}
	call(provider.WithVendor(context.Background(), "skew-test"))
	if got := testutil.ToFloat64(provider.VendorClockSkew.WithLabelValues("skew-test")); got < 7198 || got > 7201 {
		t.Errorf("skew = %vs, want about 7200s", got)
	}
}

// TestVendorClockSkewFromTheSimulator runs a vendor call against a
// simulator whose clock is 45s ahead: the vendor's own series reads it.
func TestVendorClockSkewFromTheSimulator(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Now().Add(45 * time.Second))
	sim := vendorsim.New(vendorsim.Options{Clock: clock, QrveyAPIKey: "k"})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	req := pt.Request(t, pt.Creds{"qrvey/key": "k"}, 0)
	req.Config.Qrvey = &v1alpha1.QrveyProvider{URL: sim.URL(), APIKeySecretRef: pt.Ref("qrvey/key")}
	req.Params.Qrvey = &v1alpha1.QrveyParams{UserID: "alice", AppID: "app-1"}
	req.Now, req.Lifetime = clock.Now(), 10*time.Minute
	_, err := qrvey.New().Issue(context.Background(), req)
	pt.CheckError(t, err, pt.Want{}, "k")
	if got := testutil.ToFloat64(provider.VendorClockSkew.WithLabelValues(v1alpha1.VendorQrvey)); got < 43 || got > 46 {
		t.Errorf("qrvey skew = %vs, want about 45s", got)
	}
}
