package controller

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// MaxTrustedLifetime is the longest validity the operator records for a
// token, unless the lifetime asked of the vendor is longer. A vendor that states
// an expiry further away (a unit mistake, a year-9999 placeholder, a clock
// gone wrong) would otherwise park the renewal for years, and if the token
// really expires sooner its consumers would be left with a dead token. Such
// an expiry is recorded as issuedAt + max(lifetime, MaxTrustedLifetime)
// (lifetime as granted by the provider's maxLifetime), a
// warning is logged and a TokenExpiryCapped Warning event is recorded.
const MaxTrustedLifetime = 7 * 24 * time.Hour

// capExpiry applies MaxTrustedLifetime to a freshly issued token that was
// asked for lifetime, keeping the vendor's expiry in VendorExpiresAt.
func (r *EmbedTokenRequestReconciler) capExpiry(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, tok provider.Token,
	lifetime time.Duration, now time.Time) provider.Token {
	issued := tok.IssuedAt
	if issued.IsZero() {
		issued = now
	}
	limit := issued.Add(max(lifetime, MaxTrustedLifetime))
	if !tok.ExpiresAt.After(limit) {
		return tok
	}
	if tok.VendorExpiresAt.IsZero() {
		tok.VendorExpiresAt = tok.ExpiresAt
	}
	stated := tok.VendorExpiresAt.UTC().Format(time.RFC3339)
	tok.ExpiresAt = limit
	log.FromContext(ctx).Info("Warning: capping the expiry the vendor stated", "embedTokenRequest", klog.KObj(etr),
		"digest", tok.Digest(), "statedExpiresAt", stated, "recordedExpiresAt", limit.UTC().Format(time.RFC3339))
	r.Recorder.Eventf(etr, nil, corev1.EventTypeWarning, v1alpha1.ReasonTokenExpiryCapped, "Issue",
		"The vendor stated the token expires at %s, further away than the operator trusts; it is recorded as expiring at %s and renewed before then",
		stated, limit.UTC().Format(time.RFC3339))
	return tok
}
