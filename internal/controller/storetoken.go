package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/refresh"
	"github.com/embedtokens/embed-token-operator/internal/tokenstore"
)

// loadSecret reads what the request's Secret says about its stored token
// (tokenstore.Store.Load): the Secret, not the status, is the source of
// truth.
func (r *EmbedTokenRequestReconciler) loadSecret(ctx context.Context, s *scope) (stepResult, error) {
	loaded, err := r.store.Load(ctx, s.request)
	s.secret = loaded
	if err != nil {
		return stop, err
	}
	return proceed, nil
}

// repairSecret serves a request whose stored token is good: it records the
// provider's credentials version if the Secret lacks it, so a later
// rotation is noticed, and rewrites metadata that was edited or that the
// spec changed (tokenstore.Store.Repair).
func (r *EmbedTokenRequestReconciler) repairSecret(ctx context.Context, s *scope) (stepResult, error) {
	if s.renewing() {
		return proceed, nil
	}
	if s.secret.Stored.CredentialsVersion == "" && s.provider != nil {
		s.secret.Stored.CredentialsVersion = s.provider.RotationVersion()
	}
	if err := r.store.Repair(ctx, s.request, &s.secret); err != nil {
		return stop, err
	}
	return proceed, nil
}

// storeToken writes the token callVendor got, creating the Secret or
// updating it in place so pods that mount it see the new token without a
// restart, and then revokes the token it replaced where the vendor can. A
// token that could not be stored stops the reconcile: it is held for the
// next attempt, or discarded when the API server refused it for good.
func (r *EmbedTokenRequestReconciler) storeToken(ctx context.Context, s *scope) (stepResult, error) {
	if !s.renewing() {
		return proceed, nil
	}
	etr, tok := s.request, s.token
	s.replaced = r.replacedToken(ctx, s)
	rec := tokenstore.Record(etr, tok, s.inputHash, s.provider.RotationVersion())
	err := r.store.Put(ctx, etr, s.secret.Meta, tok.Value, rec)
	if s.secret.Meta == nil && apierrors.IsAlreadyExists(err) {
		var existing *corev1.Secret
		if existing, err = r.createConflict(ctx, s); existing == nil && err == nil {
			return stop, nil
		}
		if err == nil {
			s.replaced = tokenstore.TokenIn(existing)
			err = r.store.Put(ctx, etr, &metav1.PartialObjectMetadata{ObjectMeta: existing.ObjectMeta}, tok.Value, rec)
		}
	}
	if err != nil && tokenstore.WriteRefused(err) {
		r.discard(ctx, s, err)
		return stop, nil // the failure is in the status, and its backoff schedules the retry
	}
	if err != nil {
		// The next attempt stores this token while it is fresh, with no
		// vendor call; count it as a failure so the retry backs off.
		if !r.store.Held().Hold(s.key, etr.UID, tok, rec) {
			log.FromContext(ctx).Info("The token is not held for the next attempt: the namespace's share of held tokens is full",
				"embedTokenRequest", klog.KObj(etr), "digest", tok.Digest(), "bytes", len(tok.Value))
		}
		s.fail(provider.Transient(v1alpha1.ReasonVendorUnavailable, "storing the token in Secret %s failed: %v", etr.TargetSecretName(), apierrors.ReasonForError(err)))
		return stop, fmt.Errorf("writing Secret %s: %w", etr.TargetSecretName(), err)
	}
	s.issued = &provider.Token{Value: tok.Value, Type: tok.Type, IssuedAt: rec.IssuedAt, ExpiresAt: rec.ExpiresAt}
	s.renewAt = refresh.RenewAt(rec.IssuedAt, rec.ExpiresAt, s.input.Renew, string(etr.UID))
	s.secret.Stored = rec
	r.rollout.Stored(etr, s.issued.Digest(), r.Clock.Now())
	s.lifetimeNote = lifetimeNote(s) // of the new token
	log.FromContext(ctx).Info("Stored token", "embedTokenRequest", klog.KObj(etr), "secret", etr.TargetSecretName(),
		"vendor", s.vendor, "digest", tok.Digest(), "expiresAt", rec.ExpiresAt, "renewAt", s.renewAt)
	if s.replaced != "" && s.replaced != tok.Value {
		r.revoke(ctx, etr, s.provider, s.replaced, "replaced")
	}
	return proceed, nil
}

// replacedToken is the token a new one is about to replace, read live
// because the cache holds no token values; only a vendor that can revoke
// it needs it, so other vendors cost no read.
func (r *EmbedTokenRequestReconciler) replacedToken(ctx context.Context, s *scope) string {
	if !s.provider.CanRevoke() || s.secret.Meta == nil {
		return ""
	}
	full, err := r.store.ReadLive(ctx, s.request)
	if err != nil {
		log.FromContext(ctx).Error(err, "Reading the token to revoke failed; it is not revoked", "embedTokenRequest", klog.KObj(s.request))
		return ""
	}
	return tokenstore.TokenIn(full)
}

// discard gives up a token the API server refused to store: holding it for
// the next attempt would only keep it in memory, since that attempt is
// refused too. It is revoked where the vendor can, and the failure stalls
// the request at the slowest backoff, so a refused write costs one vendor
// call per backoff rather than one per retry. The API server's message,
// which an admission webhook writes and might echo the Secret in, is cut
// and cleared of the token before it reaches the status.
func (r *EmbedTokenRequestReconciler) discard(ctx context.Context, s *scope, writeErr error) {
	etr, tok := s.request, s.token
	name := etr.TargetSecretName()
	log.FromContext(ctx).Info("The API server refused the Secret write; the token is discarded", "embedTokenRequest", klog.KObj(etr),
		"secret", name, "reason", apierrors.ReasonForError(writeErr), "vendor", s.vendor, "digest", tok.Digest())
	r.revoke(ctx, etr, s.provider, tok.Value, "discarded")
	s.failedAt = r.Clock.Now() // the backoff counts from now, as after a failed vendor call
	s.fail(provider.Redact(provider.Permanent(v1alpha1.ReasonSecretWriteRefused,
		"the API server refused to store the token in Secret %s (%s: %s); the token was discarded",
		name, apierrors.ReasonForError(writeErr), provider.Detail(writeErr.Error())), tok.Value))
}

// checkSecretConflict finds a Secret with the target name that this request
// does not own before a vendor call is spent, where that costs no API read:
// one in the cache (labelled as managed) owned by another request. Any other
// Secret in the way is found by the create's AlreadyExists (see
// storeToken), so a first token costs no read of the name. Only a request
// that already reports SecretConflict looks again, live, so a conflict
// costs at most one vendor call however often the request is reconciled.
func (r *EmbedTokenRequestReconciler) checkSecretConflict(ctx context.Context, s *scope) error {
	etr := s.request
	if s.secret.Foreign {
		return secretConflict(etr)
	}
	if readyReason(etr) != v1alpha1.ReasonSecretConflict {
		return nil
	}
	existing, err := r.store.ReadLive(ctx, etr)
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

// createConflict handles a create that found the name taken. A Secret this
// request owns (written by an attempt whose write the cache had not shown)
// is returned to be updated in place. Any other is left untouched and
// reported as SecretConflict; the token already issued for it is revoked
// where the vendor can, and nil is returned.
func (r *EmbedTokenRequestReconciler) createConflict(ctx context.Context, s *scope) (*corev1.Secret, error) {
	etr := s.request
	existing, err := r.store.ReadLive(ctx, etr)
	if err == nil && metav1.IsControlledBy(existing, etr) {
		return existing, nil
	}
	if err != nil {
		return nil, err
	}
	s.fail(secretConflict(etr))
	log.FromContext(ctx).Info("Secret name taken by a Secret this request does not own; the issued token was not stored",
		"embedTokenRequest", klog.KObj(etr), "secret", etr.TargetSecretName(), "vendor", s.vendor, "digest", s.token.Digest())
	r.revoke(ctx, etr, s.provider, s.token.Value, "unstored")
	return nil, nil
}

func secretConflict(etr *v1alpha1.EmbedTokenRequest) error {
	return provider.Permanent(v1alpha1.ReasonSecretConflict,
		"Secret %s/%s exists and is not owned by this EmbedTokenRequest; it was left untouched", etr.Namespace, etr.TargetSecretName())
}
