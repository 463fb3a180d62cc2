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

// issue makes the vendor call for etr through the Issuer once admit lets it
// through p's rate limit and call slots. It returns false, having recorded
// in o why, when the call waits or fails; a failure is logged with its
// classified message, which never holds a token or credential.
func (r *EmbedTokenRequestReconciler) issue(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, p *issuance.Provider, o *outcome) (provider.Token, bool) {
	release, admitted := r.admit(ctx, etr, p, o)
	if !admitted {
		return provider.Token{}, false
	}
	log.FromContext(ctx).V(1).Info("Issuing token", "embedTokenRequest", klog.KObj(etr), "vendor", p.Vendor(), "reason", o.decision.Reason,
		"lifetime", grantedLifetime(p, etr))
	o.vendor = p.Vendor()
	tok, err := func() (provider.Token, error) {
		defer release()
		return r.Issuer.Issue(ctx, p, r.call(etr))
	}()
	if err != nil {
		o.fail(err)
		o.failedAt = r.Clock.Now()
		log.FromContext(ctx).Info("Issuing token failed", "embedTokenRequest", klog.KObj(etr), "vendor", p.Vendor(),
			"reason", o.err.Reason, "message", o.err.Message, "permanent", o.err.Permanent)
		return provider.Token{}, false
	}
	return tok, true
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
