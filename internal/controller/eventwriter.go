package controller

import (
	"context"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/reference"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

const (
	// eventQueueSize bounds the Events waiting to be written; more are
	// dropped (and logged), as client-go's broadcaster drops them when its
	// queue is full.
	eventQueueSize = 1024
	// eventWriters is how many Events are written at once.
	eventWriters = 2
	// maxEventNote is the API server's limit on an Event's note.
	maxEventNote = 1024
)

// eventWriter is the requests' events.EventRecorder: it writes each Event
// (events.k8s.io/v1) once, from a bounded queue, and keeps nothing after.
// client-go's broadcaster, which the manager's recorders use, starts
// goroutines per Event and keeps every Event it sent for six to twelve
// minutes to merge repeats into a series; the reconciler emits an Event only
// when a request's state changes, so repeats are rare, and at 10,000 requests
// a refresh wave held 10,000 Events and their goroutines in memory for nothing
// (docs/benchmarks.md, "Memory").
type eventWriter struct {
	client               client.Writer
	scheme               *runtime.Scheme
	controller, instance string
	queue                chan *eventsv1.Event
}

var _ events.EventRecorder = (*eventWriter)(nil)

// eventLog logs what Eventf, which has no context, could not record.
var eventLog = ctrl.Log.WithName("events")

// newEventWriter returns a recorder whose writers run with mgr.
func newEventWriter(mgr ctrl.Manager, controller string) (*eventWriter, error) {
	host, _ := os.Hostname()
	w := &eventWriter{client: mgr.GetClient(), scheme: mgr.GetScheme(), controller: controller,
		instance: controller + "-" + host, queue: make(chan *eventsv1.Event, eventQueueSize)}
	if err := mgr.Add(manager.RunnableFunc(w.run)); err != nil {
		return nil, fmt.Errorf("adding the event writer: %w", err)
	}
	return w, nil
}

// Eventf queues an Event about regarding; it never blocks the reconcile.
func (w *eventWriter) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	ev, err := w.event(regarding, related, eventtype, reason, action, fmt.Sprintf(note, args...))
	if err != nil {
		eventLog.Error(err, "Not recording an Event", "reason", reason)
		return
	}
	select {
	case w.queue <- ev:
	default:
		eventLog.Info("Event queue full; dropping an Event", "object", klog.KRef(ev.Regarding.Namespace, ev.Regarding.Name), "reason", reason)
	}
}

// event builds the Event as client-go's recorder does: named after the
// object and the time, in the object's namespace.
func (w *eventWriter) event(regarding, related runtime.Object, eventtype, reason, action, note string) (*eventsv1.Event, error) {
	ref, err := reference.GetReference(w.scheme, regarding)
	if err != nil {
		return nil, fmt.Errorf("referencing the object: %w", err)
	}
	var relatedRef *corev1.ObjectReference
	if related != nil {
		if relatedRef, err = reference.GetReference(w.scheme, related); err != nil {
			return nil, fmt.Errorf("referencing the related object: %w", err)
		}
	}
	if len(note) > maxEventNote {
		note = note[:maxEventNote-3] + "..."
	}
	now := time.Now()
	namespace := ref.Namespace
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	return &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: fmt.Sprintf("%v.%x", ref.Name, now.UnixNano()), Namespace: namespace},
		EventTime:           metav1.NewMicroTime(now),
		ReportingController: w.controller,
		ReportingInstance:   w.instance,
		Action:              action,
		Reason:              reason,
		Regarding:           *ref,
		Related:             relatedRef,
		Note:                note,
		Type:                eventtype,
	}, nil
}

// run writes queued Events until ctx ends.
func (w *eventWriter) run(ctx context.Context) error {
	done := make(chan struct{})
	for range eventWriters {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-ctx.Done():
					return
				case ev := <-w.queue:
					if err := w.client.Create(ctx, ev); err != nil && ctx.Err() == nil {
						log.FromContext(ctx).Error(err, "Writing an Event failed", "object",
							klog.KRef(ev.Regarding.Namespace, ev.Regarding.Name), "reason", ev.Reason)
					}
				}
			}
		}()
	}
	for range eventWriters {
		<-done
	}
	return nil
}
