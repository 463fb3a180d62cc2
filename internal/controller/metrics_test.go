package controller

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

func metricsRequest(providerName string, ready metav1.ConditionStatus) *v1alpha1.EmbedTokenRequest {
	expires, renew := metav1.NewTime(t0.Add(time.Hour)), metav1.NewTime(t0.Add(40*time.Minute))
	return &v1alpha1.EmbedTokenRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "sales"},
		Spec: v1alpha1.EmbedTokenRequestSpec{
			ProviderRef:  v1alpha1.ProviderRef{Name: providerName},
			VendorParams: v1alpha1.VendorParams{Qrvey: &v1alpha1.QrveyParams{UserID: "u"}},
		},
		Status: v1alpha1.EmbedTokenRequestStatus{
			ExpiresAt: &expires, RenewAt: &renew, FailedAttempts: 2,
			Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: ready, Reason: v1alpha1.ReasonTokenIssued}},
		},
	}
}

func newTestMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func TestMetricsPublishRequestStatus(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.SetRequest(metricsRequest("qrvey", metav1.ConditionTrue))

	want := `
# HELP embedtoken_consecutive_failures Consecutive failed attempts to issue a token for the request.
# TYPE embedtoken_consecutive_failures gauge
embedtoken_consecutive_failures{name="sales",namespace="shop",provider="qrvey",vendor="qrvey"} 2
# HELP embedtoken_ready 1 when the request's Ready condition is True, else 0.
# TYPE embedtoken_ready gauge
embedtoken_ready{name="sales",namespace="shop",provider="qrvey",vendor="qrvey"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "embedtoken_ready", "embedtoken_consecutive_failures"); err != nil {
		t.Fatal(err)
	}
	labels := []string{"shop", "sales", "qrvey", "qrvey"}
	for name, tc := range map[string]struct {
		gauge *prometheus.GaugeVec
		want  time.Time
	}{
		"expiry":  {m.expiry, t0.Add(time.Hour)},
		"renewal": {m.renewal, t0.Add(40 * time.Minute)},
	} {
		if got := testutil.ToFloat64(tc.gauge.WithLabelValues(labels...)); got != float64(tc.want.Unix()) {
			t.Errorf("%s timestamp = %v, want %v", name, got, tc.want.Unix())
		}
	}
}

func TestMetricsLeaveNoStaleSeries(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.SetRequest(metricsRequest("qrvey", metav1.ConditionTrue))
	m.SetRequest(metricsRequest("qrvey-eu", metav1.ConditionFalse))

	if n := testutil.CollectAndCount(m.ready); n != 1 {
		t.Fatalf("a request that moved to another provider must have one ready series, got %d", n)
	}
	if got := testutil.ToFloat64(m.ready.WithLabelValues("shop", "sales", "qrvey-eu", "qrvey")); got != 0 {
		t.Fatalf("ready = %v, want 0 for Ready=False", got)
	}

	m.DeleteRequest(types.NamespacedName{Namespace: "shop", Name: "sales"})
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Fatalf("a deleted request must leave no series, got %d (%v)", n, err)
	}
}

func TestMetricsCountVendorCallsByResult(t *testing.T) {
	m, _ := newTestMetrics(t)
	m.ObserveIssue("qrvey", 30*time.Millisecond, nil)
	m.ObserveIssue("qrvey", 2*time.Second, provider.Transient(v1alpha1.ReasonVendorUnavailable, "503"))
	m.ObserveIssue("qrvey", time.Second, errors.New("connection refused"))

	for result, want := range map[string]float64{IssueResultSuccess: 1, v1alpha1.ReasonVendorUnavailable: 2} {
		if got := testutil.ToFloat64(m.issues.WithLabelValues("qrvey", result)); got != want {
			t.Errorf("issue_total{result=%q} = %v, want %v", result, got, want)
		}
	}
	if n := testutil.CollectAndCount(m.duration); n != 1 {
		t.Fatalf("one duration histogram per vendor, got %d", n)
	}
}

func TestMetricsRegisteredTwiceShareTheirSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	second, err := NewMetrics(reg)
	if err != nil {
		t.Fatalf("a manager restarted in the same process must reuse the collectors: %v", err)
	}
	first.ObserveIssue("jwt", time.Millisecond, nil)
	if got := testutil.ToFloat64(second.issues.WithLabelValues("jwt", IssueResultSuccess)); got != 1 {
		t.Fatalf("second registration sees %v calls, want 1", got)
	}
}

func TestNilMetricsAreANoOp(t *testing.T) {
	var m *Metrics
	m.SetRequest(metricsRequest("qrvey", metav1.ConditionTrue))
	m.ObserveIssue("qrvey", time.Second, nil)
	m.DeleteRequest(types.NamespacedName{Name: "x"})
}
