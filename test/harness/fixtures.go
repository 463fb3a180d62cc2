package harness

import (
	"cmp"
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

// QrveyFixture is the one Qrvey setup of the suites, tools and benchmark: a
// namespace with a Qrvey EmbedProvider pointing at the simulator, the
// cheapest vendor to simulate, and requests for it.
type QrveyFixture struct {
	Namespace, Provider string
	SimURL, APIKey      string
	// UserPrefix starts each request's user ID ("user-" when empty), so a
	// shared simulator's call log can be counted per request.
	UserPrefix string
}

// Credentials is the Secret holding the API key, named after the provider.
func (f QrveyFixture) Credentials() *corev1.Secret {
	apiKey := f.APIKey
	if apiKey == "" {
		apiKey = vendorsim.DefaultQrveyAPIKey
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.Namespace, Name: f.Provider + "-credentials"},
		StringData: map[string]string{"apiKey": apiKey}}
}

// ProviderSpec is the spec of the provider: the simulator over plain HTTP.
func (f QrveyFixture) ProviderSpec() v1alpha1.EmbedProviderSpec {
	return v1alpha1.EmbedProviderSpec{AllowInsecureHTTP: true, VendorConfig: v1alpha1.VendorConfig{Qrvey: &v1alpha1.QrveyProvider{
		URL: f.SimURL, APIKeySecretRef: v1alpha1.SecretKeySelector{Name: f.Provider + "-credentials", Key: "apiKey"}}}}
}

// EmbedProvider is the provider object.
func (f QrveyFixture) EmbedProvider() *v1alpha1.EmbedProvider {
	return &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.Namespace, Name: f.Provider}, Spec: f.ProviderSpec()}
}

// Apply creates the namespace, the credential Secret and the provider.
func (f QrveyFixture) Apply(ctx context.Context, c client.Client) error {
	objs := []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.Namespace}}, f.Credentials(), f.EmbedProvider()}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}

// UserID is the Qrvey user of the request named name.
func (f QrveyFixture) UserID(name string) string {
	return cmp.Or(f.UserPrefix, "user-") + name
}

// Request returns a Qrvey EmbedTokenRequest named name with the lifetime.
func (f QrveyFixture) Request(name string, lifetime time.Duration) *v1alpha1.EmbedTokenRequest {
	return &v1alpha1.EmbedTokenRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.Namespace, Name: name},
		Spec: v1alpha1.EmbedTokenRequestSpec{
			ProviderRef:  v1alpha1.ProviderRef{Name: f.Provider},
			VendorParams: v1alpha1.VendorParams{Qrvey: &v1alpha1.QrveyParams{UserID: f.UserID(name), AppID: "app-1"}},
			Lifetime:     &metav1.Duration{Duration: lifetime},
		},
	}
}

// QrveyTemplate is a valid EmbedTokenTemplate of a Qrvey provider named
// "qrvey" whose one parameter, user, fills qrvey.userID with values that
// start with the caller's namespace: the template the suites break one way
// at a time and the controller compiles.
func QrveyTemplate(ns, name string) *v1alpha1.EmbedTokenTemplate {
	return &v1alpha1.EmbedTokenTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.EmbedTokenTemplateSpec{ProviderRef: v1alpha1.ProviderRef{Name: "qrvey"},
			VendorParams: v1alpha1.VendorParams{Qrvey: &v1alpha1.QrveyParams{UserID: "placeholder", AppID: "app-1"}},
			Parameters: []v1alpha1.TemplateParameter{{Name: "user", Path: "qrvey.userID",
				Validation: &v1alpha1.ParameterValidation{Expression: "value.startsWith(caller.namespace + '/')"}}}}}
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
