package powerbi

import (
	"time"

	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// The pure parsers and the cache's size, exported to the external test
// package.
var (
	ParseEmbedToken = parseEmbedToken
	ErrorDetail     = errorDetail
)

// ParseAccessToken is parseAccessToken with its result as a Token, so the
// shared parser fuzzer can check it.
func ParseAccessToken(resp *provider.Response, now time.Time) (provider.Token, error) {
	at, err := parseAccessToken(resp, now)
	return provider.Token{Value: at.value, IssuedAt: now, ExpiresAt: at.expiresAt}, err
}

// CachedTokens is how many access tokens p holds.
func CachedTokens(p *Provider) int { return p.cache.len() }
