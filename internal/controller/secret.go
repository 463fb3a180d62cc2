package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading Secret %s: %w", etr.TargetSecretName(), err)
	}
	if !metav1.IsControlledBy(secret, etr) {
		return nil, nil // labelled as ours but owned by another request: checkSecretConflict reports it
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

// policyInput gathers what Decide needs. A failed vendor call delays the
// next attempt while it is newer than the stored token and the spec has not
// changed since.
func (r *EmbedTokenRequestReconciler) policyInput(etr *v1alpha1.EmbedTokenRequest, o *outcome, prov *resolvedProvider) PolicyInput {
	in := PolicyInput{
		Stored:         o.stored,
		InputHash:      inputHash(etr, prov.lifetime(etr)),
		RefreshRequest: etr.Annotations[v1alpha1.RefreshAnnotation],
		Renew:          renewPolicy(etr),
		Seed:           string(etr.UID),
	}
	if prov != nil {
		in.CredentialsVersion = prov.credentialsVersion
	}
	st := etr.Status
	if st.FailedAttempts > 0 && st.RenewAt != nil && st.LastFailureTime != nil && st.LastFailure != nil && vendorFailureReasons[st.LastFailure.Reason] &&
		st.ObservedGeneration == etr.Generation && st.LastFailureTime.Time.After(o.stored.IssuedAt) {
		in.RetryAt = st.RenewAt.Time
	}
	return in
}

func renewPolicy(etr *v1alpha1.EmbedTokenRequest) RenewPolicy {
	var p RenewPolicy
	if etr.Spec.RenewBefore != nil {
		p.RenewBefore = etr.Spec.RenewBefore.Duration
	}
	if etr.Spec.RenewBeforePercentage != nil {
		p.RenewBeforePercentage = *etr.Spec.RenewBeforePercentage
	}
	return p
}

// inputHash fingerprints what a token is issued for: the provider, the
// vendor parameters and the lifetime asked of the vendor (the request's,
// capped by the provider's maxLifetime), so a spec change or a lower
// maxLifetime that shortens the lifetime re-mints. Renewal settings, Secret
// metadata and suspend are left out: changing them must not re-mint.
func inputHash(etr *v1alpha1.EmbedTokenRequest, lifetime time.Duration) string {
	b, _ := json.Marshal(struct {
		Kind, Name string
		Params     v1alpha1.VendorParams
		Lifetime   time.Duration
	}{etr.ProviderKind(), etr.Spec.ProviderRef.Name, etr.Spec.VendorParams, lifetime})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// checkSecretConflict looks, uncached, for a Secret with the target name that
// this request does not own, before any vendor call is spent.
func (r *EmbedTokenRequestReconciler) checkSecretConflict(ctx context.Context, etr *v1alpha1.EmbedTokenRequest) error {
	existing := &metav1.PartialObjectMetadata{}
	existing.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: etr.Namespace, Name: etr.TargetSecretName()}, existing)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return provider.Transient(v1alpha1.ReasonVendorUnavailable, "reading Secret %s: %v", etr.TargetSecretName(), err)
	case metav1.IsControlledBy(existing, etr):
		return nil // ours, but not yet in the cache
	}
	return secretConflict(etr)
}

func secretConflict(etr *v1alpha1.EmbedTokenRequest) error {
	return provider.Permanent(v1alpha1.ReasonSecretConflict,
		"Secret %s/%s exists and is not owned by this EmbedTokenRequest; it was left untouched", etr.Namespace, etr.TargetSecretName())
}

// writeSecret stores a newly issued token, creating the Secret or updating it
// in place so pods that mount it see the new token without a restart.
func (r *EmbedTokenRequestReconciler) writeSecret(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, secret *corev1.Secret, tok provider.Token, prov *resolvedProvider, o *outcome) error {
	rec := StoredToken{
		Present: true, IssuedAt: tok.IssuedAt.UTC().Truncate(time.Second), ExpiresAt: tok.ExpiresAt.UTC().Truncate(time.Second),
		InputHash: inputHash(etr, prov.lifetime(etr)), RefreshHandled: etr.Annotations[v1alpha1.RefreshAnnotation],
		CredentialsVersion: prov.credentialsVersion,
	}
	var replaced string
	if secret != nil {
		replaced = string(secret.Data[v1alpha1.SecretTokenKey])
	}
	if err := r.applySecret(ctx, etr, secret, tok.Value, rec); err != nil {
		if apierrors.IsAlreadyExists(err) {
			o.fail(secretConflict(etr)) // lost a race with another writer
			return nil
		}
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
	if replaced != "" && replaced != tok.Value {
		r.revoke(ctx, etr, prov, replaced)
	}
	return nil
}

// revoke asks the vendor to revoke a replaced token, for vendors that
// support it (the vendor's config decides whether to). The new token is
// already stored, so a failure is only logged, without the token or any
// credential the call read.
func (r *EmbedTokenRequestReconciler) revoke(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, prov *resolvedProvider, token string) {
	revoker, ok := prov.impl.(provider.Revoker)
	if !ok {
		return
	}
	creds := provider.RecordCredentials(prov.creds)
	httpClient, err := r.httpClient(ctx, prov)
	if err == nil {
		err = revoker.Revoke(ctx, provider.Request{Config: prov.spec, Params: &etr.Spec.VendorParams, Credentials: creds,
			HTTPClient: httpClient, Now: r.Clock.Now()}, token)
		err = creds.Redact(err, token)
	}
	if err != nil {
		log.FromContext(ctx).Error(err, "Revoking the replaced token failed", "embedTokenRequest", klog.KObj(etr),
			"vendor", prov.vendor, "digest", provider.Digest(token))
	}
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

	secret.Type = corev1.SecretTypeOpaque
	secret.Labels = mergeMaps(secret.Labels, etr.Spec.SecretLabels, map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue})
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
	r.waitForCache(ctx, secret)
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
