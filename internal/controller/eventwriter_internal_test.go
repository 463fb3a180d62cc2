package controller

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// TestEventWriterBuildsValidEvents proves the Events the writer builds carry
// what events.k8s.io/v1 requires, live in the object's namespace, and keep
// the note within the API server's limit.
func TestEventWriterBuildsValidEvents(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	w := &eventWriter{scheme: scheme, controller: "embed-token-operator", instance: "embed-token-operator-host"}
	etr := &v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "dash", UID: "u1"}}
	for _, tc := range []struct {
		name, note string
		wantNote   int
	}{
		{"short note", "Issued token abc", len("Issued token abc")},
		{"long note is cut", strings.Repeat("x", 3000), maxEventNote},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := w.event(etr, nil, corev1.EventTypeNormal, v1alpha1.ReasonTokenIssued, "Issue", tc.note)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Namespace != "shop" || !strings.HasPrefix(ev.Name, "dash.") {
				t.Errorf("event %s/%s, want shop/dash.<time>", ev.Namespace, ev.Name)
			}
			if ev.Regarding.Kind != "EmbedTokenRequest" || ev.Regarding.UID != "u1" {
				t.Errorf("regarding = %+v", ev.Regarding)
			}
			if ev.ReportingController == "" || ev.ReportingInstance == "" || ev.Action == "" || ev.EventTime.IsZero() {
				t.Errorf("a required field is empty: %+v", ev)
			}
			if len(ev.Note) != tc.wantNote {
				t.Errorf("note length %d, want %d", len(ev.Note), tc.wantNote)
			}
		})
	}
	coreOnly := &eventWriter{scheme: clientgoscheme.Scheme, controller: "c", instance: "i"}
	if _, err := coreOnly.event(etr, nil, corev1.EventTypeNormal, "R", "A", "n"); err == nil {
		t.Error("an object of a kind the scheme does not know was referenced")
	}
}
