package refresh

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// Settings are the manager's floors under every request's refresh
// (--min-renew-interval, --min-refresh-interval); zero fields mean the
// defaults.
type Settings struct {
	// MinRenewInterval is the least time between issuing a token and
	// renewing it; DefaultMinRenewInterval when zero.
	MinRenewInterval time.Duration
	// MinRefreshInterval is the least time between the last issue and one
	// the refresh annotation forces; DefaultMinRefreshInterval when zero.
	MinRefreshInterval time.Duration
}

// RenewPolicy is etr's renewal margin under the manager's renewal floor.
func (s Settings) RenewPolicy(etr *v1alpha1.EmbedTokenRequest) RenewPolicy {
	p := RenewPolicy{MinInterval: cmp.Or(s.MinRenewInterval, DefaultMinRenewInterval)}
	if etr.Spec.RenewBefore != nil {
		p.RenewBefore = etr.Spec.RenewBefore.Duration
	}
	if etr.Spec.RenewBeforePercentage != nil {
		p.RenewBeforePercentage = *etr.Spec.RenewBeforePercentage
	}
	return p
}

// Input gathers what Decide needs for etr: the token its Secret stores, the
// hash of its inputs (InputHash) and the provider's credentials version to
// re-issue on (Provider.RotationVersion). A failed vendor call delays the
// next attempt while it is newer than the stored token and the spec has not
// changed since.
func (s Settings) Input(etr *v1alpha1.EmbedTokenRequest, stored StoredToken, inputHash, credentialsVersion string) Input {
	in := Input{
		Stored:             stored,
		InputHash:          inputHash,
		RefreshRequest:     etr.Annotations[v1alpha1.RefreshAnnotation],
		CredentialsVersion: credentialsVersion,
		Renew:              s.RenewPolicy(etr),
		Seed:               string(etr.UID),
		MinRefreshInterval: cmp.Or(s.MinRefreshInterval, DefaultMinRefreshInterval),
	}
	st := etr.Status
	if st.FailedAttempts > 0 && st.RenewAt != nil && st.LastFailureTime != nil && st.LastFailure != nil && v1alpha1.IsVendorFailureReason(st.LastFailure.Reason) &&
		st.ObservedGeneration == etr.Generation && st.LastFailureTime.After(stored.IssuedAt) {
		in.RetryAt = st.RenewAt.Time
	}
	return in
}

// InputHash fingerprints what a token is issued for: the provider, the
// vendor parameters and the lifetime asked of the vendor (the request's,
// capped by the provider's maxLifetime), so a spec change or a lower
// maxLifetime that shortens the lifetime re-mints. Renewal settings, Secret
// metadata and suspend are left out: changing them must not re-mint.
func InputHash(etr *v1alpha1.EmbedTokenRequest, lifetime time.Duration) string {
	b, _ := json.Marshal(struct {
		Kind, Name string
		Params     v1alpha1.VendorParams
		Lifetime   time.Duration
	}{etr.ProviderKind(), etr.Spec.ProviderRef.Name, etr.Spec.VendorParams, lifetime})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
