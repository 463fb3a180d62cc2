package issuance

import (
	"context"
	"time"

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
// asked for lifetime, keeping the vendor's expiry in VendorExpiresAt, and
// tells c.ExpiryCapped when it did.
func capExpiry(ctx context.Context, c Call, tok provider.Token, lifetime time.Duration, now time.Time) provider.Token {
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
	tok.ExpiresAt = limit
	c.logger(ctx).Info("Warning: capping the expiry the vendor stated",
		"digest", tok.Digest(), "statedExpiresAt", tok.VendorExpiresAt.UTC().Format(time.RFC3339),
		"recordedExpiresAt", limit.UTC().Format(time.RFC3339))
	if c.ExpiryCapped != nil {
		c.ExpiryCapped(tok.VendorExpiresAt, limit)
	}
	return tok
}
