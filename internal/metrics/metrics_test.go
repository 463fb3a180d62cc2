package metrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// t0 is the time the requests' tokens were issued at.
var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

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

// fakeRequests stands in for the manager's cache: the per-request series
// are read from it at scrape time.
func fakeRequests(t *testing.T, objs ...client.Object) client.WithWatch {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithStatusSubresource(objs...).Build()
}

func newTestMetrics(t *testing.T, requests client.Reader) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg, requests)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func TestMetricsPublishRequestStatus(t *testing.T) {
	_, reg := newTestMetrics(t, fakeRequests(t, metricsRequest("qrvey", metav1.ConditionTrue)))

	want := fmt.Sprintf(`
# HELP embedtoken_consecutive_failures Consecutive failed attempts to issue a token for the request.
# TYPE embedtoken_consecutive_failures gauge
embedtoken_consecutive_failures{name="sales",namespace="shop",provider="qrvey",vendor="qrvey"} 2
# HELP embedtoken_expiry_timestamp_seconds Unix time at which the token currently stored for the request expires.
# TYPE embedtoken_expiry_timestamp_seconds gauge
embedtoken_expiry_timestamp_seconds{name="sales",namespace="shop",provider="qrvey",vendor="qrvey"} %d
# HELP embedtoken_ready 1 when the request's Ready condition is True, else 0.
# TYPE embedtoken_ready gauge
embedtoken_ready{name="sales",namespace="shop",provider="qrvey",vendor="qrvey"} 1
# HELP embedtoken_renewal_timestamp_seconds Unix time at which the operator next asks the vendor for a token for the request.
# TYPE embedtoken_renewal_timestamp_seconds gauge
embedtoken_renewal_timestamp_seconds{name="sales",namespace="shop",provider="qrvey",vendor="qrvey"} %d
`, t0.Add(time.Hour).Unix(), t0.Add(40*time.Minute).Unix())
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "embedtoken_ready", "embedtoken_consecutive_failures",
		"embedtoken_expiry_timestamp_seconds", "embedtoken_renewal_timestamp_seconds"); err != nil {
		t.Fatal(err)
	}
}

func TestMetricsFollowTheRequestsAndLeaveNoStaleSeries(t *testing.T) {
	ctx := context.Background()
	etr := metricsRequest("qrvey", metav1.ConditionTrue)
	requests := fakeRequests(t, etr)
	_, reg := newTestMetrics(t, requests)

	etr.Spec.ProviderRef.Name = "qrvey-eu"
	if err := requests.Update(ctx, etr); err != nil {
		t.Fatal(err)
	}
	etr.Status.Conditions[0].Status = metav1.ConditionFalse
	etr.Status.ExpiresAt, etr.Status.RenewAt = nil, nil
	if err := requests.Status().Update(ctx, etr); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP embedtoken_ready 1 when the request's Ready condition is True, else 0.
# TYPE embedtoken_ready gauge
embedtoken_ready{name="sales",namespace="shop",provider="qrvey-eu",vendor="qrvey"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "embedtoken_ready"); err != nil {
		t.Fatalf("a request that moved to another provider must have one ready series: %v", err)
	}
	if n, err := testutil.GatherAndCount(reg, "embedtoken_expiry_timestamp_seconds", "embedtoken_renewal_timestamp_seconds"); err != nil || n != 0 {
		t.Fatalf("a request without a token has no expiry or renewal series, got %d (%v)", n, err)
	}

	if err := requests.Delete(ctx, etr); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "embedtoken_expiry_timestamp_seconds", "embedtoken_renewal_timestamp_seconds",
		"embedtoken_ready", "embedtoken_consecutive_failures"); err != nil || n != 0 {
		t.Fatalf("a deleted request must leave no series, got %d (%v)", n, err)
	}
}

func TestMetricsReportAFailedCacheRead(t *testing.T) {
	broken := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
			return errors.New("cache not started")
		},
	}).Build()
	_, reg := newTestMetrics(t, broken)
	if _, err := reg.Gather(); err == nil || !strings.Contains(err.Error(), "cache not started") {
		t.Fatalf("a scrape must report that the requests could not be read, got %v", err)
	}
}

func TestMetricsCountVendorCallsByResult(t *testing.T) {
	m, _ := newTestMetrics(t, fakeRequests(t))
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
	first, err := NewMetrics(reg, fakeRequests(t))
	if err != nil {
		t.Fatal(err)
	}
	second, err := NewMetrics(reg, fakeRequests(t, metricsRequest("qrvey", metav1.ConditionTrue)))
	if err != nil {
		t.Fatalf("a manager restarted in the same process must reuse the collectors: %v", err)
	}
	first.ObserveIssue("jwt", time.Millisecond, nil)
	if got := testutil.ToFloat64(second.issues.WithLabelValues("jwt", IssueResultSuccess)); got != 1 {
		t.Fatalf("second registration sees %v calls, want 1", got)
	}
	if n, err := testutil.GatherAndCount(reg, "embedtoken_ready"); err != nil || n != 1 {
		t.Fatalf("the per-request series must come from the latest manager's cache, got %d (%v)", n, err)
	}
}

func TestNilMetricsAreANoOp(t *testing.T) {
	var m *Metrics
	m.ObserveIssue("qrvey", time.Second, nil)
}

// storeReader serves requests from an informer's store as the manager's
// cache does: List shares the stored objects (UnsafeDisableDeepCopy) but
// copies them into the typed list, and GetInformer exposes the store.
type storeReader struct {
	client.Reader
	cache.Informers
	store toolscache.Store
}

func (r storeReader) List(_ context.Context, list client.ObjectList, _ ...client.ListOption) error {
	items := r.store.List()
	objs := make([]runtime.Object, len(items))
	for i, item := range items {
		objs[i] = item.(runtime.Object)
	}
	return apimeta.SetList(list, objs)
}

func (r storeReader) GetInformer(context.Context, client.Object, ...cache.InformerGetOption) (cache.Informer, error) {
	return storeInformer{store: r.store}, nil
}

type storeInformer struct {
	cache.Informer
	store toolscache.Store
}

func (i storeInformer) GetStore() toolscache.Store { return i.store }

// BenchmarkScrapeRequestSeries is one scrape's cost at 10,000 requests: a
// scrape holds every series until it is encoded, so its bytes are the
// manager's peak memory while Prometheus scrapes.
func BenchmarkScrapeRequestSeries(b *testing.B) {
	store := toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
	for i := range 10000 {
		etr := metricsRequest("qrvey", metav1.ConditionTrue)
		etr.Name = fmt.Sprintf("request-%05d", i)
		if err := store.Add(etr); err != nil {
			b.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg, storeReader{store: store}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		families, err := reg.Gather()
		if err != nil || len(families) != 5 {
			b.Fatalf("%d families, %v", len(families), err)
		}
	}
}

func TestTheScrapeReadsTheInformersStoreAsTheListWould(t *testing.T) {
	store := toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
	for _, name := range []string{"a", "b"} {
		etr := metricsRequest("qrvey", metav1.ConditionTrue)
		etr.Name = name
		if err := store.Add(etr); err != nil {
			t.Fatal(err)
		}
	}
	gather := func(r client.Reader) []byte {
		reg := prometheus.NewRegistry()
		if _, err := NewMetrics(reg, r); err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() != "embedtoken_events_dropped_total" {
				out.WriteString(f.String())
			}
		}
		return []byte(out.String())
	}
	fromStore := gather(storeReader{store: store})
	fromList := gather(struct{ client.Reader }{storeReader{store: store}})
	if string(fromStore) != string(fromList) || !strings.Contains(string(fromStore), `value:"b"`) {
		t.Errorf("the store gave\n%s\nthe list gave\n%s", fromStore, fromList)
	}
}
