package credentials

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// Reader reads credential Secrets uncached, only from namespaces the
// provider may read: its own for an EmbedProvider, the one named in each
// reference for a ClusterEmbedProvider. With a Cache, it serves values read
// for the same provider object, generation and credentialsVersion (stamp).
// It implements provider.CredentialReader.
type Reader struct {
	reader        client.Reader
	namespace     string
	clusterScoped bool

	cache *Cache
	uid   types.UID
	stamp string

	// tokens requests ServiceAccount tokens; nil refuses them.
	tokens     *ServiceAccountTokens
	generation int64
}

// New reads the credentials of a provider in namespace (an EmbedProvider's)
// or, when clusterScoped, of a ClusterEmbedProvider, uncached through
// reader: the provider reconciler validates with it what the issuance path
// later reads through ForProvider's cache. It requests no ServiceAccount
// tokens.
func New(reader client.Reader, namespace string, clusterScoped bool) Reader {
	return Reader{reader: reader, namespace: namespace, clusterScoped: clusterScoped}
}

// ForProvider reads the credentials of the provider object obj (an
// EmbedProvider or a ClusterEmbedProvider) through reader, as New does, and
// serves the values it read from cache while obj's generation and
// credentialsVersion (its status.credentialsVersion) stay the same, and
// ServiceAccount tokens through tokens. A nil cache caches nothing; nil
// tokens refuse ServiceAccount tokens.
func ForProvider(reader client.Reader, obj client.Object, credentialsVersion string, cache *Cache, tokens *ServiceAccountTokens) Reader {
	_, clusterScoped := obj.(*v1alpha1.ClusterEmbedProvider)
	r := New(reader, obj.GetNamespace(), clusterScoped)
	r.cache, r.uid, r.stamp = cache, obj.GetUID(), stampOf(obj.GetGeneration(), credentialsVersion)
	r.tokens, r.generation = tokens, obj.GetGeneration()
	return r
}

// Read implements provider.CredentialReader.
func (c Reader) Read(ctx context.Context, ref v1alpha1.SecretKeySelector) ([]byte, error) {
	ns, err := c.namespaceFor(ref)
	if err != nil {
		return nil, err
	}
	if v, ok := c.cache.get(c.uid, c.stamp, ref); ok {
		return v, nil
	}
	v, err := c.read(ctx, ns, ref)
	if err == nil {
		c.cache.put(c.uid, c.stamp, ref, v)
	}
	return v, err
}

// ServiceAccountToken implements provider.CredentialReader: a token of the
// ServiceAccount ref, from the namespace the provider may use as Read's
// Secrets are, requested through the TokenRequest API for audience and
// reused for most of its ServiceAccountTokenSeconds.
func (c Reader) ServiceAccountToken(ctx context.Context, ref v1alpha1.ServiceAccountReference, audience string) (string, error) {
	ns, err := c.namespaceOf("ServiceAccount", ref.Name, ref.Namespace)
	if err != nil {
		return "", err
	}
	return c.tokens.token(ctx, serviceAccountTokenKey{uid: c.uid, generation: c.generation, namespace: ns, name: ref.Name, audience: audience})
}

// read reads ref's key from the Secret in ns.
func (c Reader) read(ctx context.Context, ns string, ref v1alpha1.SecretKeySelector) ([]byte, error) {
	secret := &corev1.Secret{}
	if err := c.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, provider.Transient(v1alpha1.ReasonCredentialsNotFound, "credential Secret %s/%s not found", ns, ref.Name)
		}
		return nil, provider.Transient(v1alpha1.ReasonCredentialsNotFound, "reading credential Secret %s/%s: %v", ns, ref.Name, apierrors.ReasonForError(err))
	}
	v, ok := secret.Data[ref.Key]
	if !ok || len(v) == 0 {
		return nil, provider.Transient(v1alpha1.ReasonCredentialsNotFound, "credential Secret %s/%s has no key %q", ns, ref.Name, ref.Key)
	}
	return v, nil
}

// Version fingerprints the resource versions of the Secrets behind refs,
// reading only their metadata, so a rotation is noticed without exposing or
// hashing the credentials themselves.
func (c Reader) Version(ctx context.Context, refs []v1alpha1.SecretKeySelector) (string, error) {
	h := sha256.New()
	for _, ref := range refs {
		ns, err := c.namespaceFor(ref)
		if err != nil {
			return "", err
		}
		meta := &metav1.PartialObjectMetadata{}
		meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
		if err := c.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, meta); err != nil {
			return "", err
		}
		_, _ = fmt.Fprintf(h, "%s/%s/%s@%s;", ns, ref.Name, meta.UID, meta.ResourceVersion) // a hash.Hash's Write never fails
	}
	return hex.EncodeToString(h.Sum(nil)[:8]), nil
}

func (c Reader) namespaceFor(ref v1alpha1.SecretKeySelector) (string, error) {
	return c.namespaceOf("Secret", ref.Name, ref.Namespace)
}

// namespaceOf is where the provider may use the object of kind (Secret,
// ServiceAccount) named name in namespace: its own namespace for an
// EmbedProvider, the one the reference names for a ClusterEmbedProvider.
func (c Reader) namespaceOf(kind, name, namespace string) (string, error) {
	switch {
	case c.clusterScoped && namespace == "":
		return "", provider.Permanent(v1alpha1.ReasonProviderInvalid, "%s reference %s of a ClusterEmbedProvider must set namespace", kind, name)
	case c.clusterScoped:
		return namespace, nil
	case namespace != "" && namespace != c.namespace:
		return "", provider.Permanent(v1alpha1.ReasonProviderInvalid,
			"an EmbedProvider may only use %ss in its own namespace %s, not %s", kind, c.namespace, namespace)
	}
	return c.namespace, nil
}
