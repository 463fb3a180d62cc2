// Package eventwriter records Kubernetes Events (events.k8s.io/v1) with a
// fixed number of writers and a bounded queue, and folds repeated Events into
// series as client-go's events broadcaster does.
//
// client-go's broadcaster keeps every Event it recorded in a map for six to
// twelve minutes, so that an identical Event can become a series, and writes
// each Event from a goroutine of its own: a renewal wave of N requests holds
// N Events and up to N goroutines blocked on a busy API server. Here memory
// is bounded by the queue and by a bounded map of series, whatever N is.
package eventwriter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	eventsv1client "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	recordutil "k8s.io/client-go/tools/record/util"
	"k8s.io/client-go/tools/reference"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

const (
	// DefaultQueueLength is how many Events may wait to be written, the
	// length of client-go's broadcaster queue. Beyond it Events are dropped
	// and counted, as client-go drops them.
	DefaultQueueLength = 1000
	// DefaultWriters is how many Events are written at once. It is the
	// manager's default number of reconcilers, so Events keep pace with the
	// reconcilers that emit at most one each.
	DefaultWriters = 8
	// maxNoteLength is the API's limit on an Event's note.
	maxNoteLength = 1024
	// maxTries and retryInterval are client-go's: an Event that fails for
	// lack of a connection is tried again for about two minutes.
	maxTries      = 12
	retryInterval = 10 * time.Second
	// DefaultMaxSeries is how many series are tracked at once; beyond it
	// a new Event is written on its own, as before series existed.
	DefaultMaxSeries = 4096
	// seriesWindow is client-go's: an Event isomorphic to one observed
	// less than this long ago adds to its series; a series not observed
	// for this long ends, its final count written.
	seriesWindow = 6 * time.Minute
)

// Options tune a Writer; the zero value gives the defaults.
type Options struct {
	QueueLength, Writers int
	// RetryInterval is the pause after a failure to reach the API server.
	RetryInterval time.Duration
	// Dropped counts Events dropped because the queue was full or the
	// API server stayed unreachable; nil counts nothing.
	Dropped prometheus.Counter
	// MaxSeries bounds the series tracked; DefaultMaxSeries when zero.
	MaxSeries int
	// Clock stamps Events and times series; it ticks the writing of
	// series counts when it is a clock.WithTicker.
	Clock clock.PassiveClock
	Log   logr.Logger
}

// Writer is an events.EventRecorder that writes from a fixed pool. It must be
// started (it is a manager Runnable); Events emitted before it starts wait in
// the queue.
type Writer struct {
	client              eventsv1client.EventsGetter
	scheme              *runtime.Scheme
	reportingController string
	reportingInstance   string
	opts                Options
	// queue holds Events to write: created, or patched with their series
	// when Series is set.
	queue chan *eventsv1.Event

	mu     sync.Mutex
	series map[seriesKey]*series
}

// seriesKey is what makes two Events isomorphic: client-go's key (type,
// action, reason, reporter, regarding and related objects, here whatever
// their resourceVersion) and the note, so a series never hides a note that
// differs.
type seriesKey struct {
	eventType, action, reason, note string
	regarding, related              corev1.ObjectReference
}

// series is an Event written once and observed count times, last at last;
// written is the count the API server holds.
type series struct {
	event          *eventsv1.Event
	count, written int32
	last           time.Time
}

var _ events.EventRecorder = (*Writer)(nil)

// New returns a Writer that reports Events as controller, from this host.
func New(c eventsv1client.EventsGetter, scheme *runtime.Scheme, controller string, opts Options) *Writer {
	if opts.QueueLength <= 0 {
		opts.QueueLength = DefaultQueueLength
	}
	if opts.Writers <= 0 {
		opts.Writers = DefaultWriters
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = retryInterval
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Log.GetSink() == nil {
		opts.Log = logr.Discard()
	}
	if opts.MaxSeries <= 0 {
		opts.MaxSeries = DefaultMaxSeries
	}
	hostname, _ := os.Hostname()
	return &Writer{
		client:              c,
		scheme:              scheme,
		reportingController: controller,
		reportingInstance:   controller + "-" + hostname,
		opts:                opts,
		queue:               make(chan *eventsv1.Event, opts.QueueLength),
		series:              map[seriesKey]*series{},
	}
}

// NewForConfig returns a Writer with a client of its own, so Events have
// their own client-side rate limit and never spend the reconcilers'.
// httpClient is shared with the manager's clients, for their connections.
func NewForConfig(cfg *rest.Config, httpClient *http.Client, scheme *runtime.Scheme, controller string, opts Options) (*Writer, error) {
	c, err := eventsv1client.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("creating the events client: %w", err)
	}
	return New(c, scheme, controller, opts), nil
}

// Eventf queues an Event about regarding. It never blocks: when the queue is
// full the Event is dropped and counted. An Event isomorphic to one observed
// in the last six minutes adds to that Event's series instead: the first
// repeat patches the count in, later ones are counted in memory and written
// when the series ends or every six minutes.
func (w *Writer) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	if !recordutil.ValidateEventType(eventtype) {
		w.opts.Log.Error(nil, "Unsupported event type", "eventType", eventtype, "reason", reason)
		return
	}
	ref, err := reference.GetReference(w.scheme, regarding)
	if err != nil {
		w.opts.Log.Error(err, "Could not reference the object of an event", "reason", reason)
		return
	}
	var relatedRef *corev1.ObjectReference
	if related != nil {
		relatedRef, _ = reference.GetReference(w.scheme, related)
	}
	message := fmt.Sprintf(note, args...)
	if len(message) > maxNoteLength {
		message = message[:maxNoteLength]
	}
	now := w.opts.Clock.Now()
	namespace := ref.Namespace
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	ev := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      recordutil.GenerateEventName(ref.Name, now.UnixNano()),
			Namespace: namespace,
		},
		EventTime:           metav1.NewMicroTime(now),
		ReportingController: w.reportingController,
		ReportingInstance:   w.reportingInstance,
		Action:              action,
		Reason:              reason,
		Regarding:           *ref,
		Related:             relatedRef,
		Note:                message,
		Type:                eventtype,
	}
	if ev = w.observe(ev, relatedRef); ev != nil {
		w.enqueue(ev)
	}
}

// observe adds ev to its series and returns what to write: ev itself for a
// new series, a patch of the count for the first repeat, nil otherwise.
func (w *Writer) observe(ev *eventsv1.Event, related *corev1.ObjectReference) *eventsv1.Event {
	key := seriesKey{eventType: ev.Type, action: ev.Action, reason: ev.Reason, note: ev.Note, regarding: ev.Regarding}
	if related != nil {
		key.related = *related
	}
	// Every status write changes an object's resourceVersion: an Event
	// about the same object repeats whatever version it was emitted at.
	key.regarding.ResourceVersion, key.related.ResourceVersion = "", ""
	now := ev.EventTime.Time
	w.mu.Lock()
	defer w.mu.Unlock()
	if s, ok := w.series[key]; ok && now.Sub(s.last) < seriesWindow {
		s.count++
		s.last = now
		if s.written > 1 {
			return nil
		}
		s.written = s.count
		return s.patch()
	}
	if len(w.series) >= w.opts.MaxSeries {
		w.endSeries(now)
	}
	if len(w.series) < w.opts.MaxSeries {
		w.series[key] = &series{event: ev, count: 1, written: 1, last: now}
	}
	return ev
}

// patch is the series' Event with its count, to write.
func (s *series) patch() *eventsv1.Event {
	ev := s.event.DeepCopy()
	ev.Series = &eventsv1.EventSeries{Count: s.count, LastObservedTime: metav1.NewMicroTime(s.last)}
	return ev
}

// flush queues the counts the API server does not hold yet and forgets the
// series that ended.
func (w *Writer) flush() {
	w.mu.Lock()
	var out []*eventsv1.Event
	for _, s := range w.series {
		if s.count > s.written {
			s.written = s.count
			out = append(out, s.patch())
		}
	}
	w.endSeries(w.opts.Clock.Now())
	w.mu.Unlock()
	for _, ev := range out {
		w.enqueue(ev)
	}
}

// endSeries forgets the series not observed for seriesWindow before now;
// the caller holds mu. Their counts were written by a flush, or are lost
// with a full map, as client-go loses them on shutdown.
func (w *Writer) endSeries(now time.Time) {
	for k, s := range w.series {
		if now.Sub(s.last) >= seriesWindow && s.count == s.written {
			delete(w.series, k)
		}
	}
}

func (w *Writer) enqueue(ev *eventsv1.Event) {
	select {
	case w.queue <- ev:
	default:
		w.drop(ev, "the queue is full")
	}
}

// Start writes queued Events, and series counts every six minutes, until
// ctx ends; what is still queued then is dropped, as client-go's broadcaster
// drops it on shutdown.
func (w *Writer) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { w.flushEvery(ctx, seriesWindow) })
	for range w.opts.Writers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case ev := <-w.queue:
					w.write(ctx, ev)
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// flushEvery writes series counts every period until ctx ends.
func (w *Writer) flushEvery(ctx context.Context, period time.Duration) {
	var ticker clock.Ticker
	if c, ok := w.opts.Clock.(clock.WithTicker); ok {
		ticker = c.NewTicker(period)
	} else {
		ticker = clock.RealClock{}.NewTicker(period)
	}
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
			w.flush()
		}
	}
}

// NeedLeaderElection is false: a standby manager emits no Events, and one
// that just lost its lease still writes what it queued.
func (w *Writer) NeedLeaderElection() bool { return false }

// write creates ev, retrying while the API server cannot be reached. An
// answer from the API server (an invalid Event, a namespace being deleted,
// a denial) is final.
func (w *Writer) write(ctx context.Context, ev *eventsv1.Event) {
	for try := 1; ; try++ {
		err := w.writeOnce(ctx, ev)
		var status apierrors.APIStatus
		switch {
		case err == nil:
			return
		case errors.As(err, &status):
			if !apierrors.IsAlreadyExists(err) {
				w.opts.Log.V(1).Info("Event rejected", "object", regarding(ev), "reason", ev.Reason, "error", err.Error())
			}
			return
		case try >= maxTries || ctx.Err() != nil:
			w.drop(ev, "the API server could not be reached")
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait.Jitter(w.opts.RetryInterval, 0.25)):
		}
	}
}

// writeOnce creates ev, or patches its series in; an Event of a series that
// is gone (deleted, expired) is created again with its count.
func (w *Writer) writeOnce(ctx context.Context, ev *eventsv1.Event) error {
	if ev.Series != nil {
		patch, err := json.Marshal(map[string]any{"series": ev.Series})
		if err != nil {
			return fmt.Errorf("encoding the series of event %s: %w", ev.Name, err)
		}
		_, err = w.client.Events(ev.Namespace).Patch(ctx, ev.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if !apierrors.IsNotFound(err) {
			return err
		}
	}
	_, err := w.client.Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
	return err
}

func (w *Writer) drop(ev *eventsv1.Event, why string) {
	if w.opts.Dropped != nil {
		w.opts.Dropped.Inc()
	}
	w.opts.Log.V(1).Info("Dropped an event", "why", why, "object", regarding(ev), "reason", ev.Reason)
}

func regarding(ev *eventsv1.Event) klog.ObjectRef {
	return klog.KRef(ev.Regarding.Namespace, ev.Regarding.Name)
}
