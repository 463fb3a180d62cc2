package controller

import (
	"context"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/issuance"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// secretMeta is an empty Secret metadata object, the form in which the
// manager caches the Secrets it writes.
func secretMeta() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return m
}

// loadSecret reads the metadata of the request's Secret from the cache
// (which holds only managed Secrets, and only their metadata) and records
// the token its annotations describe. A Secret owned by someone else is
// never returned.
func (r *EmbedTokenRequestReconciler) loadSecret(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, o *outcome) (*metav1.PartialObjectMetadata, error) {
	secret := secretMeta()
	err := r.Get(ctx, client.ObjectKey{Namespace: etr.Namespace, Name: etr.TargetSecretName()}, secret)
	if apierrors.IsNotFound(err) {
		if !r.Sharded {
			return nil, nil // a Secret in the way is found by the create's AlreadyExists
		}
		if secret, err = r.uncachedSecret(ctx, etr, o); secret == nil || err != nil {
			return nil, err // uncachedSecret adopts a Secret the cache misses (another shard's label)
		}
	} else if err != nil {
		return nil, fmt.Errorf("reading Secret %s: %w", etr.TargetSecretName(), err)
	}
	if !metav1.IsControlledBy(secret, etr) {
		o.foreignSecret = true // labelled as ours but owned by another request
		return nil, nil
	}
	var digestKnown bool
	o.stored, o.digest, digestKnown = storedToken(secret)
	if !digestKnown {
		return secret, r.readStoredDigest(ctx, etr, o)
	}
	return secret, nil
}

// storedToken reads what a Secret's annotations say about its token; a
// Secret without readable issue and expiry times holds no usable token.
// digestKnown is false for a token whose digest the annotations do not
// record (a Secret written before they did): readStoredDigest reads it.
func storedToken(s metav1.Object) (stored StoredToken, digest string, digestKnown bool) {
	a := s.GetAnnotations()
	expires, err1 := time.Parse(time.RFC3339, a[v1alpha1.ExpiresAtAnnotation])
	issued, err2 := time.Parse(time.RFC3339, a[v1alpha1.IssuedAtAnnotation])
	if err1 != nil || err2 != nil {
		return StoredToken{}, "", true
	}
	vendorExpires, _ := time.Parse(time.RFC3339, a[v1alpha1.SecretVendorExpiresAtAnnotation]) // zero when absent
	return StoredToken{
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
// record its digest, uncached, once: keep then writes the annotation. A
// Secret without a token holds no usable token.
func (r *EmbedTokenRequestReconciler) readStoredDigest(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, o *outcome) error {
	secret, err := r.readSecret(ctx, etr)
	if err != nil {
		return client.IgnoreNotFound(fmt.Errorf("reading Secret %s: %w", etr.TargetSecretName(), err))
	}
	if tok := tokenIn(secret); tok != "" {
		o.digest = provider.Digest(tok)
	} else {
		o.stored = StoredToken{}
	}
	return nil
}

// tokenIn is the token a Secret holds, or "" when there is no Secret.
func tokenIn(secret *corev1.Secret) string {
	if secret == nil {
		return ""
	}
	return string(secret.Data[v1alpha1.SecretTokenKey])
}

// replacedToken is the token a new one is about to replace, read uncached
// because the cache holds no token values; only a vendor that can revoke
// it needs it, so other vendors cost no read.
func (r *EmbedTokenRequestReconciler) replacedToken(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, secret *metav1.PartialObjectMetadata, prov *issuance.Provider) string {
	if !prov.CanRevoke() || secret == nil {
		return ""
	}
	full, err := r.readSecret(ctx, etr)
	if err != nil {
		log.FromContext(ctx).Error(err, "Reading the token to revoke failed; it is not revoked", "embedTokenRequest", klog.KObj(etr))
		return ""
	}
	return tokenIn(full)
}

// writeSecret stores a newly issued token, creating the Secret or updating it
// in place so pods that mount it see the new token without a restart. It
// records the stored token in o; o.issued stays nil when it was not stored.
func (r *EmbedTokenRequestReconciler) writeSecret(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, secret *metav1.PartialObjectMetadata, tok provider.Token, prov *issuance.Provider, o *outcome) error {
	rec := StoredToken{
		Present: true, IssuedAt: tok.IssuedAt.UTC().Truncate(time.Second), ExpiresAt: tok.ExpiresAt.UTC().Truncate(time.Second),
		InputHash: inputHash(etr, grantedLifetime(prov, etr)), RefreshHandled: etr.Annotations[v1alpha1.RefreshAnnotation],
		CredentialsVersion: prov.RotationVersion(), VendorExpiresAt: tok.VendorExpiresAt.UTC().Truncate(time.Second),
	}
	err := r.putToken(ctx, etr, secret, tok.Value, rec)
	if secret == nil && apierrors.IsAlreadyExists(err) {
		var existing *corev1.Secret
		if existing, err = r.createConflict(ctx, etr, tok, prov, o); existing == nil && err == nil {
			return nil
		}
		if err == nil {
			o.replaced = tokenIn(existing)
			err = r.putToken(ctx, etr, &metav1.PartialObjectMetadata{ObjectMeta: existing.ObjectMeta}, tok.Value, rec)
		}
	}
	if err != nil && writeRefused(err) {
		r.discard(ctx, etr, tok, prov, err, o)
		return nil // the failure is in the status, and its backoff schedules the retry
	}
	if err != nil {
		// The next attempt stores this token while it is fresh, with no
		// vendor call; count it as a failure so the retry backs off.
		if !r.held.hold(client.ObjectKeyFromObject(etr), etr.UID, tok, rec) {
			log.FromContext(ctx).Info("The token is not held for the next attempt: the namespace's share of held tokens is full",
				"embedTokenRequest", klog.KObj(etr), "digest", tok.Digest(), "bytes", len(tok.Value))
		}
		o.fail(provider.Transient(v1alpha1.ReasonVendorUnavailable, "storing the token in Secret %s failed: %v", etr.TargetSecretName(), apierrors.ReasonForError(err)))
		return fmt.Errorf("writing Secret %s: %w", etr.TargetSecretName(), err)
	}
	o.issued = &provider.Token{Value: tok.Value, Type: tok.Type, IssuedAt: rec.IssuedAt, ExpiresAt: rec.ExpiresAt}
	o.renewAt = RenewAt(rec.IssuedAt, rec.ExpiresAt, r.renewPolicy(etr), string(etr.UID))
	o.stored = rec
	o.storedAt = r.Clock.Now()
	log.FromContext(ctx).Info("Stored token", "embedTokenRequest", klog.KObj(etr), "secret", etr.TargetSecretName(),
		"vendor", o.vendor, "digest", tok.Digest(), "expiresAt", rec.ExpiresAt, "renewAt", o.renewAt)
	return nil
}

// writeRefused reports whether the API server refused a Secret write for a
// reason that the same write retried will meet again: the Secret is invalid
// or too large, or the write is forbidden (RBAC, an admission policy or
// webhook, a namespace being deleted, a quota). Outages, timeouts and
// conflicts are not refusals.
func writeRefused(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsRequestEntityTooLargeError(err) ||
		apierrors.IsBadRequest(err)
}

// discard gives up a token the API server refused to store: holding it for
// the next attempt would only keep it in memory, since that attempt is
// refused too. It is revoked where the vendor can, and the failure stalls
// the request at the slowest backoff, so a refused write costs one vendor
// call per backoff rather than one per retry. The API server's message,
// which an admission webhook writes and might echo the Secret in, is cut
// and cleared of the token before it reaches the status.
func (r *EmbedTokenRequestReconciler) discard(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, tok provider.Token, prov *issuance.Provider,
	writeErr error, o *outcome) {
	name := etr.TargetSecretName()
	log.FromContext(ctx).Info("The API server refused the Secret write; the token is discarded", "embedTokenRequest", klog.KObj(etr),
		"secret", name, "reason", apierrors.ReasonForError(writeErr), "vendor", prov.Vendor(), "digest", tok.Digest())
	r.revoke(ctx, etr, prov, tok.Value, "discarded")
	o.failedAt = r.Clock.Now() // the backoff counts from now, as after a failed vendor call
	o.fail(provider.Redact(provider.Permanent(v1alpha1.ReasonSecretWriteRefused,
		"the API server refused to store the token in Secret %s (%s: %s); the token was discarded",
		name, apierrors.ReasonForError(writeErr), provider.Detail(writeErr.Error())), tok.Value))
}

// putToken writes the whole Secret: token, the metadata recorded in rec, the
// spec's labels and annotations, and the request as its owner. It creates
// the Secret when existing is nil and otherwise replaces it, conditional on
// existing's resourceVersion.
func (r *EmbedTokenRequestReconciler) putToken(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, existing *metav1.PartialObjectMetadata, token string, rec StoredToken) error {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: etr.Namespace, Name: etr.TargetSecretName()}}
	if existing != nil {
		existing.ObjectMeta.DeepCopyInto(&secret.ObjectMeta)
	}
	if err := r.renderMetadata(etr, secret, rec, provider.Digest(token)); err != nil {
		return err
	}
	secret.Type = corev1.SecretTypeOpaque
	secret.Data = map[string][]byte{
		v1alpha1.SecretTokenKey:     []byte(token),
		v1alpha1.SecretExpiresAtKey: []byte(rec.ExpiresAt.UTC().Format(time.RFC3339)),
	}
	var err error
	if existing == nil {
		err = r.Create(ctx, secret)
	} else {
		err = r.Update(ctx, secret)
	}
	if err != nil {
		return err
	}
	r.expect.wroteSecret(client.ObjectKeyFromObject(etr), secret.ResourceVersion)
	return nil
}

// syncSecretMetadata repairs the Secret's labels, annotations and owner when
// the spec's secretLabels/secretAnnotations changed or someone edited them,
// keeping its token. The cache holds no token, so a repair reads the Secret
// uncached and writes it whole: the operator needs no patch right on
// Secrets. A Secret whose token is gone is left for its renewal.
func (r *EmbedTokenRequestReconciler) syncSecretMetadata(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, secret *metav1.PartialObjectMetadata, o *outcome) error {
	if secret == nil {
		return nil
	}
	want := secret.DeepCopy()
	if err := r.renderMetadata(etr, want, o.stored, o.digest); err != nil {
		return err
	}
	if equality.Semantic.DeepEqual(secret, want) {
		return nil
	}
	full, err := r.readSecret(ctx, etr)
	if err != nil {
		return client.IgnoreNotFound(fmt.Errorf("reading Secret %s: %w", etr.TargetSecretName(), err))
	}
	token := tokenIn(full)
	if token == "" || !metav1.IsControlledBy(full, etr) {
		return nil
	}
	o.digest = provider.Digest(token)
	return r.putToken(ctx, etr, &metav1.PartialObjectMetadata{ObjectMeta: full.ObjectMeta}, token, o.stored)
}

// renderMetadata sets the metadata the Secret must carry: the token's
// record rec and digest, the spec's labels and annotations, and the request
// as its owner.
func (r *EmbedTokenRequestReconciler) renderMetadata(etr *v1alpha1.EmbedTokenRequest, secret metav1.Object, rec StoredToken, digest string) error {
	labels := mergeMaps(secret.GetLabels())
	for k, v := range etr.Spec.SecretLabels {
		labels[k] = string(v)
	}
	labels[v1alpha1.ManagedByLabel] = v1alpha1.ManagedByValue
	setShardLabel(labels, etr)
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
	if err := controllerutil.SetControllerReference(etr, secret, r.Scheme()); err != nil {
		return fmt.Errorf("setting owner of Secret %s: %w", secret.GetName(), err)
	}
	return nil
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
