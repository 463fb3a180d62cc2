package issuance

import (
	"fmt"
	"strings"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

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
	msg := ExceedsMaxMessage(providerName, limit, tok.IssuedAt, tok.ExpiresAt)
	if policy != v1alpha1.LifetimeExceedsMaxRenewAtMax {
		return provider.Token{}, provider.Permanent(v1alpha1.ReasonLifetimeExceedsMax,
			"%s; it was refused and not stored (the provider's lifetimeExceedsMax is %s)", msg, v1alpha1.LifetimeExceedsMaxRefuse)
	}
	tok.VendorExpiresAt = tok.ExpiresAt
	tok.ExpiresAt = tok.IssuedAt.Add(limit)
	return tok, nil
}

// ExceedsMaxMessage says that the vendor issued a token valid from issued
// to expires, longer than provider name's maxLifetime limit. A lifetime of
// more than ten years (a placeholder or unit mistake) is told by its end.
func ExceedsMaxMessage(name string, limit time.Duration, issued, expires time.Time) string {
	valid := expires.Sub(issued).Round(time.Second)
	span := "for " + FormatDuration(valid)
	if valid > 10*365*24*time.Hour {
		span = "until " + expires.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("the vendor issued a token valid %s, longer than provider %s's maxLifetime of %s", span, name, FormatDuration(limit))
}

// FormatDuration writes d as a person would, for status messages: 24h, 1h30m, 90s, not 24h0m0s.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
