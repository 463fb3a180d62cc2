package controller

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/issuance"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// checkSecretConflict finds a Secret with the target name that this request
// does not own before a vendor call is spent, where that costs no API read:
// one in the cache (labelled as managed) owned by another request. Any other
// Secret in the way is found by the create's AlreadyExists (see
// writeSecret), so a first token costs no read of the name. Only a request
// that already reports SecretConflict looks again, uncached, so a conflict
// costs at most one vendor call however often the request is reconciled.
func (r *EmbedTokenRequestReconciler) checkSecretConflict(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, o *outcome) error {
	if o.foreignSecret {
		return secretConflict(etr)
	}
	if readyReason(etr) != v1alpha1.ReasonSecretConflict {
		return nil
	}
	existing, err := r.readSecret(ctx, etr)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return provider.Transient(v1alpha1.ReasonVendorUnavailable, "reading Secret %s: %v", etr.TargetSecretName(), apierrors.ReasonForError(err))
	case metav1.IsControlledBy(existing, etr):
		return nil // ours, but not yet in the cache
	}
	return secretConflict(etr)
}

// readSecret reads the request's Secret uncached: it may be one the cache
// does not hold (unlabelled) or has not seen yet.
func (r *EmbedTokenRequestReconciler) readSecret(ctx context.Context, etr *v1alpha1.EmbedTokenRequest) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: etr.Namespace, Name: etr.TargetSecretName()}, secret); err != nil {
		return nil, err
	}
	return secret, nil
}

// createConflict handles a create that found the name taken. A Secret this
// request owns (written by an attempt whose write the cache had not shown)
// is returned to be updated in place. Any other is left untouched and
// reported as SecretConflict; the token already issued for it is revoked
// where the vendor can, and nil is returned.
func (r *EmbedTokenRequestReconciler) createConflict(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, tok provider.Token,
	prov *issuance.Provider, o *outcome) (*corev1.Secret, error) {
	existing, err := r.readSecret(ctx, etr)
	if err == nil && metav1.IsControlledBy(existing, etr) {
		return existing, nil
	}
	if err != nil {
		return nil, err
	}
	o.fail(secretConflict(etr))
	log.FromContext(ctx).Info("Secret name taken by a Secret this request does not own; the issued token was not stored",
		"embedTokenRequest", klog.KObj(etr), "secret", etr.TargetSecretName(), "vendor", o.vendor, "digest", tok.Digest())
	r.revoke(ctx, etr, prov, tok.Value, "unstored")
	return nil, nil
}

func secretConflict(etr *v1alpha1.EmbedTokenRequest) error {
	return provider.Permanent(v1alpha1.ReasonSecretConflict,
		"Secret %s/%s exists and is not owned by this EmbedTokenRequest; it was left untouched", etr.Namespace, etr.TargetSecretName())
}
