package eventwriter

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

var configMap = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "app", UID: "uid-1"}}

// start runs a Writer on cs until the test ends.
func start(t *testing.T, cs *fake.Clientset, opts Options) *Writer {
	t.Helper()
	w := New(cs.EventsV1(), clientgoscheme.Scheme, "embed-token-operator", opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// creates counts the create calls cs served, failed ones included.
func creates(cs *fake.Clientset) int {
	n := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "events" {
			n++
		}
	}
	return n
}

func written(t *testing.T, cs *fake.Clientset, want int) []eventsv1.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		list, err := cs.EventsV1().Events("").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) >= want || time.Now().After(deadline) {
			if len(list.Items) != want {
				t.Fatalf("%d events written, want %d", len(list.Items), want)
			}
			return list.Items
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAnEventIsWrittenAsClientGoWouldWriteIt(t *testing.T) {
	cs := fake.NewClientset()
	now := time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC)
	w := start(t, cs, Options{Clock: clocktesting.NewFakePassiveClock(now)})
	w.Eventf(configMap, nil, corev1.EventTypeNormal, "TokenIssued", "Issue", "Issued token %s", "sha256:ab")

	ev := written(t, cs, 1)[0]
	if ev.Namespace != "team-a" || !strings.HasPrefix(ev.Name, "app.") {
		t.Errorf("event %s/%s, want team-a/app.<time>", ev.Namespace, ev.Name)
	}
	if ev.Regarding.Kind != "ConfigMap" || ev.Regarding.Name != "app" || ev.Regarding.UID != "uid-1" {
		t.Errorf("configMap %+v", ev.Regarding)
	}
	if ev.Type != corev1.EventTypeNormal || ev.Reason != "TokenIssued" || ev.Action != "Issue" || ev.Note != "Issued token sha256:ab" {
		t.Errorf("type %q reason %q action %q note %q", ev.Type, ev.Reason, ev.Action, ev.Note)
	}
	if ev.ReportingController != "embed-token-operator" || !strings.HasPrefix(ev.ReportingInstance, "embed-token-operator-") {
		t.Errorf("reporting %q %q", ev.ReportingController, ev.ReportingInstance)
	}
	if !ev.EventTime.Time.Equal(now) || ev.Series != nil {
		t.Errorf("event time %v, series %v", ev.EventTime, ev.Series)
	}
}

func TestANoteLongerThanTheAPIAllowsIsCut(t *testing.T) {
	cs := fake.NewClientset()
	w := start(t, cs, Options{})
	w.Eventf(configMap, nil, corev1.EventTypeWarning, "VendorUnavailable", "Issue", "%s", strings.Repeat("x", 5000))
	if got := len(written(t, cs, 1)[0].Note); got != maxNoteLength {
		t.Errorf("note of %d bytes, want %d", got, maxNoteLength)
	}
}

func TestAFullQueueDropsAndCountsWithoutBlocking(t *testing.T) {
	cs := fake.NewClientset()
	dropped := prometheus.NewCounter(prometheus.CounterOpts{Name: "dropped"})
	w := New(cs.EventsV1(), clientgoscheme.Scheme, "embed-token-operator", Options{QueueLength: 2, Dropped: dropped})
	done := make(chan struct{})
	go func() {
		for i := range 5 {
			w.Eventf(configMap, nil, corev1.EventTypeNormal, "TokenRefreshed", "Refresh", "refreshed %d", i)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Eventf blocked on a full queue")
	}
	if got := testutil.ToFloat64(dropped); got != 3 {
		t.Errorf("%v events dropped, want 3", got)
	}
	if len(w.queue) != 2 {
		t.Errorf("%d events queued, want 2", len(w.queue))
	}
}

func TestAnUnreachableAPIServerIsRetriedAndAnAnswerIsFinal(t *testing.T) {
	cases := []struct {
		name        string
		failures    int
		err         error
		wantCreates int
		wantWritten int
		wantDropped float64
	}{
		{"a connection failure is retried until the API server answers", 2, errors.New("connection refused"), 3, 1, 0},
		{"an API server that stays unreachable drops the event after client-go's twelve tries", 100, errors.New("connection refused"), maxTries, 0, 1},
		{"a refusal by the API server is not retried", 100, apierrors.NewForbidden(schema.GroupResource{Group: "events.k8s.io", Resource: "events"}, "x", errors.New("no")), 1, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset()
			var calls atomic.Int32
			cs.PrependReactor("create", "events", func(a k8stesting.Action) (bool, runtime.Object, error) {
				ev := a.(k8stesting.CreateAction).GetObject().(*eventsv1.Event)
				if ev.Reason != "Sentinel" && int(calls.Add(1)) <= tc.failures {
					return true, nil, tc.err
				}
				return false, nil, nil
			})
			dropped := prometheus.NewCounter(prometheus.CounterOpts{Name: "dropped"})
			w := start(t, cs, Options{Writers: 1, RetryInterval: time.Millisecond, Dropped: dropped})
			w.Eventf(configMap, nil, corev1.EventTypeWarning, "VendorUnavailable", "Issue", "down")
			// One writer: the sentinel is written once the first event is done.
			w.Eventf(configMap, nil, corev1.EventTypeNormal, "Sentinel", "Issue", "after")

			written(t, cs, tc.wantWritten+1)
			if got := creates(cs) - 1; got != tc.wantCreates {
				t.Errorf("%d creates, want %d", got, tc.wantCreates)
			}
			if got := testutil.ToFloat64(dropped); got != tc.wantDropped {
				t.Errorf("%v dropped, want %v", got, tc.wantDropped)
			}
		})
	}
}

func TestAnUnsupportedEventTypeIsNotWritten(t *testing.T) {
	cs := fake.NewClientset()
	w := start(t, cs, Options{})
	w.Eventf(configMap, nil, "Fatal", "Bad", "Issue", "never")
	w.Eventf(configMap, nil, corev1.EventTypeNormal, "Good", "Issue", "written")
	if ev := written(t, cs, 1)[0]; ev.Reason != "Good" {
		t.Errorf("wrote %q", ev.Reason)
	}
}

// seriesOf waits until the one Event written has a series of want.
func seriesOf(t *testing.T, cs *fake.Clientset, want int32) eventsv1.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ev := written(t, cs, 1)[0]
		if ev.Series != nil && ev.Series.Count == want {
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatalf("series %+v, want a count of %d", ev.Series, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRepeatedEventsAreOneEventWithASeriesCount(t *testing.T) {
	cs := fake.NewClientset()
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC))
	w := start(t, cs, Options{Clock: clk})
	version := 0
	refresh := func() {
		// Each renewal writes the object's status: its resourceVersion changes.
		obj := configMap.DeepCopy()
		version++
		obj.ResourceVersion = strconv.Itoa(version)
		w.Eventf(obj, nil, corev1.EventTypeNormal, "TokenRefreshed", "Refresh", "Refreshed the token (%s)", "Expired")
		clk.Step(30 * time.Second)
	}
	refresh()
	written(t, cs, 1)
	refresh()
	first := seriesOf(t, cs, 2)
	for range 8 {
		refresh()
	}
	if got := creates(cs); got != 1 {
		t.Fatalf("%d creates for 10 identical events, want 1", got)
	}
	clk.Step(6 * time.Minute) // the series ends: its final count is written
	ev := seriesOf(t, cs, 10)
	if ev.Name != first.Name || !ev.Series.LastObservedTime.Time.Equal(clk.Now().Add(-6*time.Minute-30*time.Second)) {
		t.Errorf("event %s last observed %v", ev.Name, ev.Series.LastObservedTime)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.series) != 0 {
		t.Errorf("%d series still held after they ended", len(w.series))
	}
}

func TestEventsThatDifferOrComeLaterAreNotFolded(t *testing.T) {
	cases := []struct {
		name  string
		apart time.Duration
		notes [2]string
	}{
		{"a different note is an Event of its own", time.Second, [2]string{"Refreshed the token (Expired)", "Refreshed the token (RefreshRequested)"}},
		{"a repeat six minutes later starts a new Event", 6 * time.Minute, [2]string{"same", "same"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset()
			clk := clocktesting.NewFakePassiveClock(time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC))
			w := start(t, cs, Options{Clock: clk})
			w.Eventf(configMap, nil, corev1.EventTypeNormal, "TokenRefreshed", "Refresh", "%s", tc.notes[0])
			clk.SetTime(clk.Now().Add(tc.apart))
			w.Eventf(configMap, nil, corev1.EventTypeNormal, "TokenRefreshed", "Refresh", "%s", tc.notes[1])
			for _, ev := range written(t, cs, 2) {
				if ev.Series != nil {
					t.Errorf("event %s has a series %+v", ev.Name, ev.Series)
				}
			}
		})
	}
}

func TestTheSeriesMapIsBounded(t *testing.T) {
	cs := fake.NewClientset()
	w := start(t, cs, Options{MaxSeries: 3})
	for i := range 10 {
		w.Eventf(configMap, nil, corev1.EventTypeNormal, "TokenRefreshed", "Refresh", "refreshed %d", i)
	}
	written(t, cs, 10)
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.series) != 3 {
		t.Errorf("%d series held, want at most 3", len(w.series))
	}
}
