package tokenstore

import (
	"context"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/refresh"
)

// Store reads and writes the Secrets that hold requests' tokens. Reads of
// metadata go through the manager's cache, which holds only managed Secrets
// and only their metadata, so no token is kept in memory; reads of a token
// itself (ReadLive) go to the API server. Every write is recorded, so a
// reconcile never decides from a cache older than the operator's last write
// (CacheBehind).
type Store struct {
	// client reads Secret metadata from the cache and writes Secrets.
	client client.Client
	// live reads uncached: a Secret's token, or a Secret the cache misses.
	live client.Reader
	// sharded is set when this instance serves one shard: its cache then
	// misses the Secret of a request moved in from another shard, which
	// Load looks up live and adopts.
	sharded bool
	expect  *writeExpectations
	held    *Held
}

// New returns a Store writing through c and reading tokens through live.
// Tokens that could not be stored are kept within the Held bounds.
func New(c client.Client, live client.Reader, sharded bool) *Store {
	return &Store{client: c, live: live, sharded: sharded, expect: newWriteExpectations(),
		held: NewHeld(MaxHeldTokenBytes, MaxHeldTokenBytesPerNamespace)}
}

// Held is where tokens wait whose Secret write failed, for the next attempt
// to store without a vendor call.
func (s *Store) Held() *Held { return s.held }

// Forget drops what the store keeps for a request that is gone.
func (s *Store) Forget(key types.NamespacedName) {
	s.expect.forget(key)
	s.held.Forget(key)
}

// Loaded is what the store knows of the Secret that holds a request's token.
type Loaded struct {
	// Meta is the Secret's metadata, nil when there is none or it is not
	// this request's.
	Meta *metav1.PartialObjectMetadata
	// Stored is the token the Secret's annotations describe.
	Stored refresh.StoredToken
	// Digest is the stored token's digest.
	Digest string
	// Absent says a live read found no Secret, so no other owner's Secret
	// can be in the way.
	Absent bool
	// Foreign says a Secret with the target name exists that another
	// request owns.
	Foreign bool
}

// secretMeta is an empty Secret metadata object, the form in which the
// manager caches the Secrets it writes.
func secretMeta() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return m
}

// secretKey names etr's Secret.
func secretKey(etr *v1alpha1.EmbedTokenRequest) client.ObjectKey {
	return client.ObjectKey{Namespace: etr.Namespace, Name: etr.TargetSecretName()}
}

// Load reads the metadata of the request's Secret from the cache and the
// token its annotations describe. A Secret owned by someone else is never
// returned.
func (s *Store) Load(ctx context.Context, etr *v1alpha1.EmbedTokenRequest) (Loaded, error) {
	var l Loaded
	secret := secretMeta()
	err := s.client.Get(ctx, secretKey(etr), secret)
	if apierrors.IsNotFound(err) {
		if !s.sharded {
			return l, nil // a Secret in the way is found by the create's AlreadyExists
		}
		if secret, err = s.loadLive(ctx, etr, &l); secret == nil || err != nil {
			return l, err // loadLive adopts a Secret the cache misses (another shard's label)
		}
	} else if err != nil {
		return l, fmt.Errorf("reading Secret %s: %w", etr.TargetSecretName(), err)
	}
	if !metav1.IsControlledBy(secret, etr) {
		l.Foreign = true // labelled as ours but owned by another request
		return l, nil
	}
	l.Meta = secret
	var digestKnown bool
	l.Stored, l.Digest, digestKnown = storedToken(secret)
	if !digestKnown {
		return l, s.readStoredDigest(ctx, etr, &l)
	}
	return l, nil
}

// loadLive reads the metadata of the request's Secret past the cache,
// which misses it when the Secret still carries the shard label of the
// instance the request was moved from (or lost its managed-by label). A
// Secret this request owns is returned, so its stored token is kept rather
// than re-issued and the next write gives it this shard's labels. A Secret
// owned by someone else is only marked Foreign, to be reported before any
// vendor call. When there is no Secret at all, l.Absent saves the conflict
// check a second read. It runs only in a sharded instance; an unsharded one
// caches every managed Secret and leaves any other in the way to the
// create's AlreadyExists.
func (s *Store) loadLive(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, l *Loaded) (*metav1.PartialObjectMetadata, error) {
	key := secretKey(etr)
	secret := secretMeta()
	err := s.live.Get(ctx, key, secret)
	switch {
	case apierrors.IsNotFound(err):
		l.Absent = true
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading Secret %s: %w", key.Name, err)
	case !metav1.IsControlledBy(secret, etr):
		l.Foreign = true
		return nil, nil
	}
	if secret.Labels[v1alpha1.ShardLabel] != etr.Labels[v1alpha1.ShardLabel] {
		log.FromContext(ctx).Info("Adopting Secret from another shard", "embedTokenRequest", klog.KObj(etr),
			"secret", key.Name, "fromShard", secret.Labels[v1alpha1.ShardLabel], "toShard", etr.Labels[v1alpha1.ShardLabel])
	}
	return secret, nil
}

// storedToken reads what a Secret's annotations say about its token; a
// Secret without readable issue and expiry times holds no usable token.
// digestKnown is false for a token whose digest the annotations do not
// record (a Secret written before they did): readStoredDigest reads it.
func storedToken(s metav1.Object) (stored refresh.StoredToken, digest string, digestKnown bool) {
	a := s.GetAnnotations()
	expires, err1 := time.Parse(time.RFC3339, a[v1alpha1.ExpiresAtAnnotation])
	issued, err2 := time.Parse(time.RFC3339, a[v1alpha1.IssuedAtAnnotation])
	if err1 != nil || err2 != nil {
		return refresh.StoredToken{}, "", true
	}
	vendorExpires, _ := time.Parse(time.RFC3339, a[v1alpha1.SecretVendorExpiresAtAnnotation]) // zero when absent
	return refresh.StoredToken{
		Present:            true,
		IssuedAt:           issued,
		ExpiresAt:          expires,
		InputHash:          a[v1alpha1.InputHashAnnotation],
		RefreshHandled:     a[v1alpha1.RefreshHandledAnnotation],
		CredentialsVersion: a[v1alpha1.CredentialsVersionAnnotation],
		VendorExpiresAt:    vendorExpires,
	}, a[v1alpha1.SecretTokenDigestAnnotation], a[v1alpha1.SecretTokenDigestAnnotation] != ""
}

// readStoredDigest reads the token of a Secret whose annotations do not
// record its digest, live, once: Repair then writes the annotation. A
// Secret without a token holds no usable token.
func (s *Store) readStoredDigest(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, l *Loaded) error {
	secret, err := s.ReadLive(ctx, etr)
	if err != nil {
		return client.IgnoreNotFound(fmt.Errorf("reading Secret %s: %w", etr.TargetSecretName(), err))
	}
	if tok := TokenIn(secret); tok != "" {
		l.Digest = provider.Digest(tok)
	} else {
		l.Stored = refresh.StoredToken{}
	}
	return nil
}

// ReadLive reads the request's Secret, token included, from the API server:
// it may be one the cache does not hold (unlabelled) or has not seen yet,
// and the cache holds no token.
func (s *Store) ReadLive(ctx context.Context, etr *v1alpha1.EmbedTokenRequest) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	if err := s.live.Get(ctx, secretKey(etr), secret); err != nil {
		return nil, err
	}
	return secret, nil
}

// TokenIn is the token a Secret holds, or "" when there is no Secret.
func TokenIn(secret *corev1.Secret) string {
	if secret == nil {
		return ""
	}
	return string(secret.Data[v1alpha1.SecretTokenKey])
}

// StoredExpiry reads from the cache when the token stored for a request
// expires: the Secret's annotations, which a failed status patch may have
// left ahead of the status, or else the status.
func (s *Store) StoredExpiry(ctx context.Context, key types.NamespacedName) (time.Time, bool) {
	etr := &v1alpha1.EmbedTokenRequest{}
	if err := s.client.Get(ctx, key, etr); err != nil {
		return time.Time{}, false
	}
	secret := secretMeta()
	err := s.client.Get(ctx, secretKey(etr), secret)
	if err == nil && metav1.IsControlledBy(secret, etr) {
		if stored, _, _ := storedToken(secret); stored.Present {
			return stored.ExpiresAt, true
		}
	}
	if etr.Status.ExpiresAt == nil {
		return time.Time{}, false
	}
	return etr.Status.ExpiresAt.Time, true
}

// Record is what a Secret written with tok records about it: its times, cut
// to the second as the annotations hold them, the inputs it was issued
// for, the refresh annotation it served and the credentials version.
func Record(etr *v1alpha1.EmbedTokenRequest, tok provider.Token, inputHash, credentialsVersion string) refresh.StoredToken {
	return refresh.StoredToken{
		Present: true, IssuedAt: tok.IssuedAt.UTC().Truncate(time.Second), ExpiresAt: tok.ExpiresAt.UTC().Truncate(time.Second),
		InputHash: inputHash, RefreshHandled: etr.Annotations[v1alpha1.RefreshAnnotation],
		CredentialsVersion: credentialsVersion, VendorExpiresAt: tok.VendorExpiresAt.UTC().Truncate(time.Second),
	}
}

// Put writes the whole Secret: token, the metadata recorded in rec, the
// spec's labels and annotations, and the request as its owner. It creates
// the Secret when existing is nil and otherwise replaces it, conditional on
// existing's resourceVersion, so pods that mount it see the new token
// without a restart.
func (s *Store) Put(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, existing *metav1.PartialObjectMetadata, token string, rec refresh.StoredToken) error {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: etr.Namespace, Name: etr.TargetSecretName()}}
	if existing != nil {
		existing.ObjectMeta.DeepCopyInto(&secret.ObjectMeta)
	}
	if err := s.renderMetadata(etr, secret, rec, provider.Digest(token)); err != nil {
		return err
	}
	secret.Type = corev1.SecretTypeOpaque
	secret.Data = map[string][]byte{
		v1alpha1.SecretTokenKey:     []byte(token),
		v1alpha1.SecretExpiresAtKey: []byte(rec.ExpiresAt.UTC().Format(time.RFC3339)),
	}
	var err error
	if existing == nil {
		err = s.client.Create(ctx, secret)
	} else {
		err = s.client.Update(ctx, secret)
	}
	if err != nil {
		return err
	}
	s.expect.wroteSecret(client.ObjectKeyFromObject(etr), secret.ResourceVersion)
	return nil
}

// Repair rewrites the Secret's labels, annotations and owner when the
// spec's secretLabels/secretAnnotations changed or someone edited them,
// keeping its token. The cache holds no token, so a repair reads the Secret
// live and writes it whole: the operator needs no patch right on Secrets. A
// Secret whose token is gone is left for its renewal. l.Digest is set to the
// digest of the token read.
func (s *Store) Repair(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, l *Loaded) error {
	if l.Meta == nil {
		return nil
	}
	want := l.Meta.DeepCopy()
	if err := s.renderMetadata(etr, want, l.Stored, l.Digest); err != nil {
		return err
	}
	if equality.Semantic.DeepEqual(l.Meta, want) {
		return nil
	}
	full, err := s.ReadLive(ctx, etr)
	if err != nil {
		return client.IgnoreNotFound(fmt.Errorf("reading Secret %s: %w", etr.TargetSecretName(), err))
	}
	token := TokenIn(full)
	if token == "" || !metav1.IsControlledBy(full, etr) {
		return nil
	}
	l.Digest = provider.Digest(token)
	return s.Put(ctx, etr, &metav1.PartialObjectMetadata{ObjectMeta: full.ObjectMeta}, token, l.Stored)
}

// renderMetadata sets the metadata the Secret must carry: the token's
// record rec and digest, the spec's labels and annotations, the request's
// shard label and the request as its owner.
func (s *Store) renderMetadata(etr *v1alpha1.EmbedTokenRequest, secret metav1.Object, rec refresh.StoredToken, digest string) error {
	labels := mergeMaps(secret.GetLabels())
	for k, v := range etr.Spec.SecretLabels {
		labels[k] = string(v)
	}
	labels[v1alpha1.ManagedByLabel] = v1alpha1.ManagedByValue
	// The Secret is cached by the same instance as its request.
	if shard, ok := etr.Labels[v1alpha1.ShardLabel]; ok {
		labels[v1alpha1.ShardLabel] = shard
	} else {
		delete(labels, v1alpha1.ShardLabel)
	}
	secret.SetLabels(labels)
	annotations := mergeMaps(secret.GetAnnotations(), etr.Spec.SecretAnnotations, map[string]string{
		v1alpha1.IssuedAtAnnotation:          rec.IssuedAt.UTC().Format(time.RFC3339),
		v1alpha1.ExpiresAtAnnotation:         rec.ExpiresAt.UTC().Format(time.RFC3339),
		v1alpha1.InputHashAnnotation:         rec.InputHash,
		v1alpha1.RefreshHandledAnnotation:    rec.RefreshHandled,
		v1alpha1.SecretTokenDigestAnnotation: digest,
	})
	if rec.CredentialsVersion != "" {
		annotations[v1alpha1.CredentialsVersionAnnotation] = rec.CredentialsVersion
	}
	delete(annotations, v1alpha1.SecretVendorExpiresAtAnnotation) // a replaced token's
	if !rec.VendorExpiresAt.IsZero() {
		annotations[v1alpha1.SecretVendorExpiresAtAnnotation] = rec.VendorExpiresAt.UTC().Format(time.RFC3339)
	}
	secret.SetAnnotations(annotations)
	if err := controllerutil.SetControllerReference(etr, secret, s.client.Scheme()); err != nil {
		return fmt.Errorf("setting owner of Secret %s: %w", secret.GetName(), err)
	}
	return nil
}

// WriteRefused reports whether the API server refused a Secret write for a
// reason that the same write retried will meet again: the Secret is invalid
// or too large, or the write is forbidden (RBAC, an admission policy or
// webhook, a namespace being deleted, a quota). Outages, timeouts and
// conflicts are not refusals.
func WriteRefused(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsRequestEntityTooLargeError(err) ||
		apierrors.IsBadRequest(err)
}

// mergeMaps returns base overlaid with each overlay in turn, allocating only
// when base is nil.
func mergeMaps(base map[string]string, overlays ...map[string]string) map[string]string {
	if base == nil {
		base = map[string]string{}
	}
	for _, m := range overlays {
		maps.Copy(base, m)
	}
	return base
}
