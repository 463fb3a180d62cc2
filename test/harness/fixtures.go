package harness

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

// QrveyFixture describes a namespace with a Qrvey EmbedProvider pointing at
// the simulator, the cheapest vendor to simulate.
type QrveyFixture struct {
	Namespace, Provider string
	SimURL, APIKey      string
}

// Apply creates the namespace, the credential Secret and the provider.
func (f QrveyFixture) Apply(ctx context.Context, c client.Client) error {
	apiKey := f.APIKey
	if apiKey == "" {
		apiKey = vendorsim.DefaultQrveyAPIKey
	}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.Namespace}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.Namespace, Name: f.Provider + "-credentials"},
			StringData: map[string]string{"apiKey": apiKey}},
		&v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.Namespace, Name: f.Provider},
			Spec: v1alpha1.EmbedProviderSpec{AllowInsecureHTTP: true, VendorConfig: v1alpha1.VendorConfig{Qrvey: &v1alpha1.QrveyProvider{
				URL: f.SimURL, APIKeySecretRef: v1alpha1.SecretKeySelector{Name: f.Provider + "-credentials", Key: "apiKey"}}}}},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// Request returns a Qrvey EmbedTokenRequest named name with the lifetime.
func (f QrveyFixture) Request(name string, lifetime time.Duration) *v1alpha1.EmbedTokenRequest {
	return &v1alpha1.EmbedTokenRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.Namespace, Name: name},
		Spec: v1alpha1.EmbedTokenRequestSpec{
			ProviderRef:  v1alpha1.ProviderRef{Name: f.Provider},
			VendorParams: v1alpha1.VendorParams{Qrvey: &v1alpha1.QrveyParams{UserID: "user-" + name, AppID: "app-1"}},
			Lifetime:     &metav1.Duration{Duration: lifetime},
		},
	}
}

// IsReady reports whether the request's Ready condition is True for its
// current generation.
func IsReady(etr *v1alpha1.EmbedTokenRequest) bool {
	c := meta.FindStatusCondition(etr.Status.Conditions, v1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && etr.Status.ObservedGeneration == etr.Generation
}

// CountReady lists the namespace's requests and counts the Ready ones.
func CountReady(ctx context.Context, c client.Reader, namespace string) (ready, total int, err error) {
	var list v1alpha1.EmbedTokenRequestList
	if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return 0, 0, fmt.Errorf("listing requests: %w", err)
	}
	for i := range list.Items {
		if IsReady(&list.Items[i]) {
			ready++
		}
	}
	return ready, len(list.Items), nil
}

// CreateParallel runs create(i) for i in [0, n) on workers goroutines and
// returns the first error.
func CreateParallel(ctx context.Context, n, workers int, create func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := create(ctx, i); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return ctx.Err()
	}
}
