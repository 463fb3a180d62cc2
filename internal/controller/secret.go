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
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// loadSecret reads the request's Secret from the cache (which holds only
// managed Secrets) and records the token it stores. A Secret owned by someone
// else is never returned.
func (r *EmbedTokenRequestReconciler) loadSecret(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, o *outcome) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
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
	o.stored, o.digest = storedToken(secret)
	return secret, nil
}

// storedToken reads what a Secret says about its token; a Secret with no
// token or an unreadable expiry holds no usable token.
func storedToken(s *corev1.Secret) (StoredToken, string) {
	tok := string(s.Data[v1alpha1.SecretTokenKey])
	expires, err1 := time.Parse(time.RFC3339, s.Annotations[v1alpha1.ExpiresAtAnnotation])
	issued, err2 := time.Parse(time.RFC3339, s.Annotations[v1alpha1.IssuedAtAnnotation])
	if tok == "" || err1 != nil || err2 != nil {
		return StoredToken{}, ""
	}
	return StoredToken{
		Present:            true,
		IssuedAt:           issued,
		ExpiresAt:          expires,
		InputHash:          s.Annotations[v1alpha1.InputHashAnnotation],
		RefreshHandled:     s.Annotations[v1alpha1.RefreshHandledAnnotation],
		CredentialsVersion: s.Annotations[v1alpha1.CredentialsVersionAnnotation],
	}, provider.Digest(tok)
}

// tokenIn is the token a Secret holds, or "" when there is no Secret.
func tokenIn(secret *corev1.Secret) string {
	if secret == nil {
		return ""
	}
	return string(secret.Data[v1alpha1.SecretTokenKey])
}

// writeSecret stores a newly issued token, creating the Secret or updating it
// in place so pods that mount it see the new token without a restart. It
// records the stored token in o; o.issued stays nil when it was not stored.
func (r *EmbedTokenRequestReconciler) writeSecret(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, secret *corev1.Secret, tok provider.Token, prov *resolvedProvider, o *outcome) error {
	rec := StoredToken{
		Present: true, IssuedAt: tok.IssuedAt.UTC().Truncate(time.Second), ExpiresAt: tok.ExpiresAt.UTC().Truncate(time.Second),
		InputHash: inputHash(etr, prov.lifetime(etr)), RefreshHandled: etr.Annotations[v1alpha1.RefreshAnnotation],
		CredentialsVersion: prov.credentialsVersion,
	}
	err := r.applySecret(ctx, etr, secret, tok.Value, rec)
	if secret == nil && apierrors.IsAlreadyExists(err) {
		if secret, err = r.createConflict(ctx, etr, tok, prov, o); secret == nil && err == nil {
			return nil
		}
		if err == nil {
			o.replaced = tokenIn(secret)
			err = r.applySecret(ctx, etr, secret, tok.Value, rec)
		}
	}
	if err != nil {
		// The token is lost with this attempt; count it as a failure so the
		// retry backs off instead of calling the vendor in a tight loop.
		o.fail(provider.Transient(v1alpha1.ReasonVendorUnavailable, "storing the token in Secret %s failed: %v", etr.TargetSecretName(), apierrors.ReasonForError(err)))
		return fmt.Errorf("writing Secret %s: %w", etr.TargetSecretName(), err)
	}
	o.issued = &provider.Token{Value: tok.Value, Type: tok.Type, IssuedAt: rec.IssuedAt, ExpiresAt: rec.ExpiresAt}
	o.renewAt = RenewAt(rec.IssuedAt, rec.ExpiresAt, renewPolicy(etr), string(etr.UID))
	o.stored = rec
	o.storedAt = r.Clock.Now()
	log.FromContext(ctx).Info("Stored token", "embedTokenRequest", klog.KObj(etr), "secret", etr.TargetSecretName(),
		"vendor", o.vendor, "digest", tok.Digest(), "expiresAt", rec.ExpiresAt, "renewAt", o.renewAt)
	return nil
}

// syncSecretMetadata repairs the Secret's labels, annotations and expiry key
// when the spec's secretLabels/secretAnnotations changed or someone edited
// them, without touching the token.
func (r *EmbedTokenRequestReconciler) syncSecretMetadata(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, secret *corev1.Secret, o *outcome) error {
	if secret == nil {
		return nil
	}
	return r.applySecret(ctx, etr, secret, string(secret.Data[v1alpha1.SecretTokenKey]), o.stored)
}

// applySecret makes the Secret hold token with the metadata recorded in rec,
// writing only when something differs.
func (r *EmbedTokenRequestReconciler) applySecret(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, secret *corev1.Secret, token string, rec StoredToken) error {
	create := secret == nil
	if create {
		secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: etr.Namespace, Name: etr.TargetSecretName()}}
	}
	before := secret.DeepCopy()
	if err := r.renderSecret(etr, secret, token, rec); err != nil {
		return err
	}
	if !create && equality.Semantic.DeepEqual(before, secret) {
		return nil
	}
	var err error
	if create {
		err = r.Create(ctx, secret)
	} else {
		err = r.Update(ctx, secret)
	}
	if err != nil {
		return err
	}
	r.expect.wrote(client.ObjectKeyFromObject(etr), secret)
	return nil
}

// renderSecret sets what the Secret must hold: token, the metadata recorded
// in rec, the spec's labels and annotations, and the request as its owner.
func (r *EmbedTokenRequestReconciler) renderSecret(etr *v1alpha1.EmbedTokenRequest, secret *corev1.Secret, token string, rec StoredToken) error {
	secret.Type = corev1.SecretTypeOpaque
	secret.Labels = mergeMaps(secret.Labels, etr.Spec.SecretLabels, map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue})
	setShardLabel(secret, etr)
	secret.Annotations = mergeMaps(secret.Annotations, etr.Spec.SecretAnnotations, map[string]string{
		v1alpha1.IssuedAtAnnotation:       rec.IssuedAt.UTC().Format(time.RFC3339),
		v1alpha1.ExpiresAtAnnotation:      rec.ExpiresAt.UTC().Format(time.RFC3339),
		v1alpha1.InputHashAnnotation:      rec.InputHash,
		v1alpha1.RefreshHandledAnnotation: rec.RefreshHandled,
	})
	if rec.CredentialsVersion != "" {
		secret.Annotations[v1alpha1.CredentialsVersionAnnotation] = rec.CredentialsVersion
	}
	secret.Data = map[string][]byte{
		v1alpha1.SecretTokenKey:     []byte(token),
		v1alpha1.SecretExpiresAtKey: []byte(rec.ExpiresAt.UTC().Format(time.RFC3339)),
	}
	if err := controllerutil.SetControllerReference(etr, secret, r.Scheme()); err != nil {
		return fmt.Errorf("setting owner of Secret %s: %w", secret.Name, err)
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
