package controller

import (
	"fmt"
	"strings"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
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

// lifetimeNote tells the request's owner that the provider's maxLifetime
// shortened the lifetime asked for, or is "" when it did not.
func (p *resolvedProvider) lifetimeNote(etr *v1alpha1.EmbedTokenRequest) string {
	if p == nil {
		return ""
	}
	requested, granted := etr.RequestedLifetime(), p.lifetime(etr)
	if granted >= requested {
		return ""
	}
	return fmt.Sprintf("lifetime capped to %s by provider %s's maxLifetime; the request asks for %s",
		formatDuration(granted), p.name, formatDuration(requested))
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
