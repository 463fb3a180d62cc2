// Package eventwriter records Kubernetes Events (events.k8s.io/v1) with a
// fixed number of writers and a bounded queue.
//
// client-go's events broadcaster keeps every Event it recorded in a map for
// six to twelve minutes, so that an identical Event can become a series, and
// writes each Event from a goroutine of its own. The operator's Events mark
// state changes and name a token's digest, so they almost never repeat: the
// map only holds memory, one entry per request that changed state, and a
// renewal wave of N requests holds N Events and up to N goroutines blocked on
// a busy API server. Here memory is bounded by the queue, whatever N is.
package eventwriter

import (
	"context"
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
)

// Options tune a Writer; the zero value gives the defaults.
type Options struct {
	QueueLength, Writers int
	// RetryInterval is the pause after a failure to reach the API server.
	RetryInterval time.Duration
	// Dropped counts Events dropped because the queue was full or the
	// API server stayed unreachable; nil counts nothing.
	Dropped prometheus.Counter
	Clock   clock.PassiveClock
	Log     logr.Logger
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
	queue               chan *eventsv1.Event
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
	hostname, _ := os.Hostname()
	return &Writer{
		client:              c,
		scheme:              scheme,
		reportingController: controller,
		reportingInstance:   controller + "-" + hostname,
		opts:                opts,
		queue:               make(chan *eventsv1.Event, opts.QueueLength),
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
// full the Event is dropped and counted.
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
	select {
	case w.queue <- ev:
	default:
		w.drop(ev, "the queue is full")
	}
}

// Start writes queued Events until ctx ends; what is still queued then is
// dropped, as client-go's broadcaster drops it on shutdown.
func (w *Writer) Start(ctx context.Context) error {
	var wg sync.WaitGroup
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

// NeedLeaderElection is false: a standby manager emits no Events, and one
// that just lost its lease still writes what it queued.
func (w *Writer) NeedLeaderElection() bool { return false }

// write creates ev, retrying while the API server cannot be reached. An
// answer from the API server (an invalid Event, a namespace being deleted,
// a denial) is final.
func (w *Writer) write(ctx context.Context, ev *eventsv1.Event) {
	for try := 1; ; try++ {
		_, err := w.client.Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
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

func (w *Writer) drop(ev *eventsv1.Event, why string) {
	if w.opts.Dropped != nil {
		w.opts.Dropped.Inc()
	}
	w.opts.Log.V(1).Info("Dropped an event", "why", why, "object", regarding(ev), "reason", ev.Reason)
}

func regarding(ev *eventsv1.Event) klog.ObjectRef {
	return klog.KRef(ev.Regarding.Namespace, ev.Regarding.Name)
}
