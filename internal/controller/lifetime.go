package controller

import (
	"fmt"
	"strings"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// lifetime is the lifetime to ask for etr: its own, capped by the
// provider's maxLifetime. Without a provider (not found, not readable) it is
// the request's own: nothing can be issued then anyway.
func (p *resolvedProvider) lifetime(etr *v1alpha1.EmbedTokenRequest) time.Duration {
	if p == nil {
		return etr.RequestedLifetime()
	}
	return GrantedLifetime(etr.RequestedLifetime(), p.spec.LifetimeCap())
}

// lifetimeNote tells the request's owner what the provider's maxLifetime
// did: that it shortened the lifetime asked of the vendor, and that the
// stored token, issued for longer by the vendor, renews as if it expired at
// the cap. It is "" when neither applies. It claims only what happened: a
// vendor may ignore the lifetime asked for, and a stored token outliving
// maxLifetime is either refused or recorded with the vendor's expiry.
func (p *resolvedProvider) lifetimeNote(etr *v1alpha1.EmbedTokenRequest, stored StoredToken) string {
	if p == nil {
		return ""
	}
	var notes []string
	requested, granted := etr.RequestedLifetime(), p.lifetime(etr)
	if granted < requested {
		notes = append(notes, fmt.Sprintf("asked the vendor for %s: provider %s's maxLifetime caps the %s the request asks for",
			formatDuration(granted), p.name, formatDuration(requested)))
	}
	limit := p.spec.LifetimeCap()
	if stored.Present && stored.VendorExpiresAt.After(stored.IssuedAt.Add(limit)) {
		notes = append(notes, exceedsMaxMessage(p.name, limit, stored.IssuedAt, stored.VendorExpiresAt)+
			"; it is renewed as if it expired after "+formatDuration(stored.ExpiresAt.Sub(stored.IssuedAt)))
	}
	return strings.Join(notes, "; ")
}

// lifetimeTolerance is how far past maxLifetime a vendor's stated expiry may
// lie and still honour it: vendors round expiries to whole seconds and
// state them on clocks a little off the operator's. It counts from the end
// of the vendor call, as the vendor may have minted the token at any moment
// of it.
const lifetimeTolerance = 5 * time.Second

// holdToMaxLifetime holds a token the vendor just issued to the provider's
// maxLifetime (limit). A token that expires within limit of the call (plus
// lifetimeTolerance) is returned as it is; this is always the case for
// vendors whose tokens the operator signs or whose lifetime it sets. A
// longer one is refused with a permanent LifetimeExceedsMax error under
// policy Refuse (the default), and under RenewAtMax returned recorded as
// expiring limit after issue, with the vendor's expiry in VendorExpiresAt.
// callEnd is when the vendor call ended; the token's IssuedAt is when it
// began. Errors never hold the token.
func holdToMaxLifetime(tok provider.Token, callEnd time.Time, providerName string, limit time.Duration, policy string) (provider.Token, error) {
	if tok.IssuedAt.IsZero() {
		tok.IssuedAt = callEnd
	}
	latest := tok.IssuedAt
	if callEnd.After(latest) {
		latest = callEnd
	}
	if !tok.ExpiresAt.After(latest.Add(limit + lifetimeTolerance)) {
		return tok, nil
	}
	msg := exceedsMaxMessage(providerName, limit, tok.IssuedAt, tok.ExpiresAt)
	if policy != v1alpha1.LifetimeExceedsMaxRenewAtMax {
		return provider.Token{}, provider.Permanent(v1alpha1.ReasonLifetimeExceedsMax,
			"%s; it was refused and not stored (the provider's lifetimeExceedsMax is %s)", msg, v1alpha1.LifetimeExceedsMaxRefuse)
	}
	tok.VendorExpiresAt = tok.ExpiresAt
	tok.ExpiresAt = tok.IssuedAt.Add(limit)
	return tok, nil
}

// exceedsMaxMessage says that the vendor issued a token valid from issued
// to expires, longer than provider name's maxLifetime limit. A lifetime of
// more than ten years (a placeholder or unit mistake) is told by its end.
func exceedsMaxMessage(name string, limit time.Duration, issued, expires time.Time) string {
	valid := expires.Sub(issued).Round(time.Second)
	span := "for " + formatDuration(valid)
	if valid > 10*365*24*time.Hour {
		span = "until " + expires.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("the vendor issued a token valid %s, longer than provider %s's maxLifetime of %s", span, name, formatDuration(limit))
}

// formatDuration writes d as a person would: 24h, 1h30m, 90s, not 24h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
