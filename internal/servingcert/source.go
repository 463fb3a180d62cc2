package servingcert

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Source serves the certificate of one TLS Secret, reloaded whenever the
// Secret changes, and tells subscribers when its CA bundle changes. It
// watches that one Secret only, by name, so no other Secret of the
// namespace is held in memory. It reads the operator's own Secret and a
// cert-manager one alike: tls.crt, tls.key and ca.crt.
type Source struct {
	clientset kubernetes.Interface
	namespace string
	name      string

	current atomic.Pointer[loaded]

	mu          sync.Mutex
	subscribers []func()
	synced      chan struct{}
	syncedOnce  sync.Once
}

// loaded is the Secret's material as last read.
type loaded struct {
	cert     *tls.Certificate
	caBundle []byte
}

// NewSource returns a Source for the Secret namespace/name.
func NewSource(clientset kubernetes.Interface, namespace, name string) *Source {
	return &Source{clientset: clientset, namespace: namespace, name: name, synced: make(chan struct{})}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every
// replica serves the certificate.
func (s *Source) NeedLeaderElection() bool { return false }

// Start implements manager.Runnable: it watches the Secret until ctx ends.
func (s *Source) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("servingcert").WithValues("secret", klog.KRef(s.namespace, s.name))
	factory := informers.NewSharedInformerFactoryWithOptions(s.clientset, 0,
		informers.WithNamespace(s.namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", s.name).String()
		}))
	informer := factory.Core().V1().Secrets().Informer()
	if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.load(logger, obj) },
		UpdateFunc: func(_, obj any) { s.load(logger, obj) },
	}); err != nil {
		return fmt.Errorf("watch TLS Secret: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	<-ctx.Done()
	return nil
}

// load replaces the served material with the Secret's, when it is usable.
func (s *Source) load(logger logr.Logger, obj any) {
	secret, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	if len(secret.Data[TLSCertKey]) > maxPEMBytes || len(secret.Data[TLSKeyKey]) > maxPEMBytes {
		logger.Error(nil, "TLS Secret too large to load", "limitBytes", maxPEMBytes)
		return
	}
	cert, err := tls.X509KeyPair(secret.Data[TLSCertKey], secret.Data[TLSKeyKey])
	if err != nil {
		// The Secret is being written, or edited by hand: keep serving
		// the last good certificate.
		logger.Info("TLS Secret holds no usable certificate yet; serving the previous one", "reason", err.Error())
		return
	}
	bundle := secret.Data[CABundleKey]
	if _, err := ParseCertificates(bundle); err != nil {
		logger.Info("TLS Secret holds no usable CA bundle yet", "reason", err.Error())
		bundle = nil
	}
	prev := s.current.Swap(&loaded{cert: &cert, caBundle: bytes.Clone(bundle)})
	if prev == nil || !bytes.Equal(prev.caBundle, bundle) {
		s.notify()
	}
	s.syncedOnce.Do(func() { close(s.synced) })
}

// GetCertificate is for tls.Config.GetCertificate: the Secret's current
// certificate.
func (s *Source) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if l := s.current.Load(); l != nil {
		return l.cert, nil
	}
	return nil, errors.New("no serving certificate loaded yet")
}

// CABundle returns the Secret's current ca.crt (PEM), or nil before one is
// loaded.
func (s *Source) CABundle() []byte {
	if l := s.current.Load(); l != nil {
		return l.caBundle
	}
	return nil
}

// WaitForCertificate blocks until a certificate is loaded or ctx ends, so a
// listener does not accept connections it cannot complete.
func (s *Source) WaitForCertificate(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case <-s.synced:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the TLS Secret %s/%s: %w", s.namespace, s.name, ctx.Err())
	}
}

// OnCABundleChange registers f to be called whenever the CA bundle is
// first loaded or changes, so the publisher refreshes every namespace's
// copy. f must not block.
func (s *Source) OnCABundleChange(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subscribers = append(s.subscribers, f)
}

func (s *Source) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.subscribers {
		f()
	}
}
