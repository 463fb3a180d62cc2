package harness

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// TokenCheck judges one token read from a Secret; a non-nil error is a
// violation, recorded with the Secret's name.
type TokenCheck func(secret *corev1.Secret, token string) error

// TokenObserver watches the operator's Secrets in a namespace, as a pod
// mounting them would see them, and records every token value written and
// every violation of a TokenCheck.
type TokenObserver struct {
	check TokenCheck

	mu         sync.Mutex
	tokens     map[string]time.Time // token -> first seen
	violations []string
	events     int
}

// ObserveTokens starts an informer on managed Secrets in namespace until ctx
// ends. The informer resumes by itself if the API server goes away.
func ObserveTokens(ctx context.Context, cfg *rest.Config, namespace string, check TokenCheck) (*TokenObserver, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating a clientset: %w", err)
	}
	o := &TokenObserver{check: check, tokens: map[string]time.Time{}}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.LabelSelector = v1alpha1.ManagedByLabel + "=" + v1alpha1.ManagedByValue
		}))
	inf := factory.Core().V1().Secrets().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { o.record(obj) },
		UpdateFunc: func(_, obj any) { o.record(obj) },
	}); err != nil {
		return nil, fmt.Errorf("adding the event handler: %w", err)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("secret informer did not sync")
	}
	return o, nil
}

func (o *TokenObserver) record(obj any) {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	token := TokenOf(s).Value
	err := o.check(s, token)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events++
	if _, seen := o.tokens[token]; !seen && token != "" {
		o.tokens[token] = time.Now()
	}
	if err != nil {
		o.violations = append(o.violations, fmt.Sprintf("%s/%s (resourceVersion %s): %v", s.Namespace, s.Name, s.ResourceVersion, err))
	}
}

// Distinct is the number of different tokens seen in the Secrets.
func (o *TokenObserver) Distinct() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.tokens)
}

// Events is the number of Secret versions observed.
func (o *TokenObserver) Events() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.events
}

// Violations returns what the check rejected, in order.
func (o *TokenObserver) Violations() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.violations...)
}

// Seen reports whether token has been observed in a Secret.
func (o *TokenObserver) Seen(token string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.tokens[token]
	return ok
}
