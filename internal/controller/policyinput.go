package controller

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/issuance"
)

// policyInput gathers what Decide needs. A failed vendor call delays the
// next attempt while it is newer than the stored token and the spec has not
// changed since.
func (r *EmbedTokenRequestReconciler) policyInput(etr *v1alpha1.EmbedTokenRequest, o *outcome, prov *issuance.Provider) PolicyInput {
	in := PolicyInput{
		Stored:         o.stored,
		InputHash:      inputHash(etr, grantedLifetime(prov, etr)),
		RefreshRequest: etr.Annotations[v1alpha1.RefreshAnnotation],
		Renew:          r.renewPolicy(etr),
		Seed:           string(etr.UID),
		// The zero value is the default: only a manager option lowers it.
		MinRefreshInterval: cmp.Or(r.MinRefreshInterval, DefaultMinRefreshInterval),
	}
	in.CredentialsVersion = prov.RotationVersion()
	st := etr.Status
	if st.FailedAttempts > 0 && st.RenewAt != nil && st.LastFailureTime != nil && st.LastFailure != nil && v1alpha1.IsVendorFailureReason(st.LastFailure.Reason) &&
		st.ObservedGeneration == etr.Generation && st.LastFailureTime.Time.After(o.stored.IssuedAt) {
		in.RetryAt = st.RenewAt.Time
	}
	return in
}

// renewPolicy is etr's renewal margin under the manager's renewal floor.
func (r *EmbedTokenRequestReconciler) renewPolicy(etr *v1alpha1.EmbedTokenRequest) RenewPolicy {
	p := RenewPolicy{MinInterval: cmp.Or(r.MinRenewInterval, DefaultMinRenewInterval)}
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
