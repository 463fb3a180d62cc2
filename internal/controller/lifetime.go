package controller

import (
	"strings"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/issuance"
)

// grantedLifetime is the lifetime to ask for etr: its own, capped by the
// provider's maxLifetime. Without a provider (not found, not readable) it is
// the request's own: nothing can be issued then anyway.
func grantedLifetime(p *issuance.Provider, etr *v1alpha1.EmbedTokenRequest) time.Duration {
	return p.Lifetime(etr.RequestedLifetime())
}

// lifetimeNote tells the request's owner what the provider's maxLifetime
// did: that it shortened the lifetime asked of the vendor, and that the
// stored token, issued for longer by the vendor, renews as if it expired at
// the cap. It is "" when neither applies. It claims only what happened: a
// vendor may ignore the lifetime asked for, and a stored token outliving
// maxLifetime is either refused or recorded with the vendor's expiry.
func lifetimeNote(p *issuance.Provider, etr *v1alpha1.EmbedTokenRequest, stored StoredToken) string {
	if p == nil {
		return ""
	}
	var notes []string
	requested, granted := etr.RequestedLifetime(), grantedLifetime(p, etr)
	if granted < requested {
		notes = append(notes, "asked the vendor for "+issuance.FormatDuration(granted)+": provider "+p.Name+
			"'s maxLifetime caps the "+issuance.FormatDuration(requested)+" the request asks for")
	}
	limit := p.Spec.LifetimeCap()
	if stored.Present && stored.VendorExpiresAt.After(stored.IssuedAt.Add(limit)) {
		notes = append(notes, issuance.ExceedsMaxMessage(p.Name, limit, stored.IssuedAt, stored.VendorExpiresAt)+
			"; it is renewed as if it expired after "+issuance.FormatDuration(stored.ExpiresAt.Sub(stored.IssuedAt)))
	}
	return strings.Join(notes, "; ")
}
