package controller

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/issuance"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// callVendor gets the token to store: one an earlier attempt issued but
// could not store, while it is still one to keep, or else a new one from
// the vendor, once admit lets the call through the provider's rate limit,
// its call slots and the namespace's write budget. It stops the reconcile,
// having recorded why, when the call waits or fails; a failure is logged
// with its classified message, which never holds a token or credential.
func (r *EmbedTokenRequestReconciler) callVendor(ctx context.Context, s *scope) (stepResult, error) {
	if !s.renewing() {
		return proceed, nil
	}
	etr, p := s.request, s.provider
	s.vendor = p.Vendor()
	if tok, ok := r.store.Held().Take(s.key, etr.UID, s.input, s.now); ok {
		log.FromContext(ctx).Info("Storing a token an earlier attempt could not store", "embedTokenRequest", klog.KObj(etr),
			"vendor", s.vendor, "digest", tok.Digest(), "expiresAt", tok.ExpiresAt)
		s.token = tok
		return proceed, nil
	}
	release, admitted := r.admit(ctx, s)
	if !admitted {
		return stop, nil
	}
	log.FromContext(ctx).V(1).Info("Issuing token", "embedTokenRequest", klog.KObj(etr), "vendor", s.vendor, "reason", s.decision.Reason,
		"lifetime", s.lifetime)
	tok, err := func() (provider.Token, error) {
		defer release()
		return r.Issuer.Issue(ctx, p, r.call(etr))
	}()
	if err != nil {
		s.fail(err)
		s.failedAt = r.Clock.Now()
		log.FromContext(ctx).Info("Issuing token failed", "embedTokenRequest", klog.KObj(etr), "vendor", s.vendor,
			"reason", s.err.Reason, "message", s.err.Message, "permanent", s.err.Permanent)
		return stop, nil
	}
	s.token = tok
	return proceed, nil
}

// call describes etr's vendor call to the Issuer. A vendor's expiry past
// issuance.MaxTrustedLifetime is recorded as a TokenExpiryCapped Warning
// event on etr.
func (r *EmbedTokenRequestReconciler) call(etr *v1alpha1.EmbedTokenRequest) issuance.Call {
	return issuance.Call{
		Namespace: etr.Namespace, Key: etr.Name, Object: klog.KObj(etr),
		Params: &etr.Spec.VendorParams, Lifetime: etr.RequestedLifetime(),
		ExpiryCapped: func(stated, recorded time.Time) {
			r.Recorder.Eventf(etr, nil, corev1.EventTypeWarning, v1alpha1.ReasonTokenExpiryCapped, "Issue",
				"The vendor stated the token expires at %s, further away than the operator trusts; it is recorded as expiring at %s and renewed before then",
				stated.UTC().Format(time.RFC3339), recorded.UTC().Format(time.RFC3339))
		},
	}
}

// revoke asks the vendor to revoke a token etr no longer uses (replaced,
// discarded, unstored), where the vendor can; see issuance.Issuer.Revoke.
func (r *EmbedTokenRequestReconciler) revoke(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, p *issuance.Provider, token, which string) {
	r.Issuer.Revoke(ctx, p, r.call(etr), token, which)
}
