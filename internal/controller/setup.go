package controller

import (
	"cmp"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// CacheOptions limits the manager's Secret cache to Secrets this operator
// writes. Credential Secrets are read directly, so thousands of unrelated
// Secrets in the cluster cost no memory.
func CacheOptions() cache.Options {
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Secret{}: {Label: labels.SelectorFromSet(labels.Set{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue})},
	}}
}

// Options configures the controllers Setup registers.
type Options struct {
	// Providers maps a vendor name to its implementation.
	Providers map[string]provider.Provider
	// MaxConcurrentReconciles bounds parallel EmbedTokenRequest reconciles.
	MaxConcurrentReconciles int
	// Clock defaults to the real clock.
	Clock clock.PassiveClock
	// CredentialCheckInterval is how often providers' credential Secrets are
	// checked for rotation; DefaultCredentialCheckInterval when zero.
	CredentialCheckInterval time.Duration
}

// Setup registers every controller of the operator with mgr, so the binary
// and the test suites run exactly the same wiring.
func Setup(mgr ctrl.Manager, opts Options) error {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if err := (&EmbedTokenRequestReconciler{
		Client:                  mgr.GetClient(),
		APIReader:               mgr.GetAPIReader(),
		Recorder:                mgr.GetEventRecorder("embed-token-operator"),
		Clock:                   opts.Clock,
		Providers:               opts.Providers,
		MaxConcurrentReconciles: opts.MaxConcurrentReconciles,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	return SetupProviderReconcilers(mgr, opts.Providers, cmp.Or(opts.CredentialCheckInterval, DefaultCredentialCheckInterval))
}
