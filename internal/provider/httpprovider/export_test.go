package httpprovider

import (
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// ParseResponse exposes the response reader to fuzz tests: it compiles spec
// and reads body as a 2xx answer at now.
func ParseResponse(spec *v1alpha1.HTTPProvider, body []byte, now time.Time) (provider.Token, error) {
	c, err := compile(spec, "spec.http")
	if err != nil {
		return provider.Token{}, err
	}
	return c.parseResponse(body, now)
}

// AuthCacheSize is the number of auth tokens p caches and the bytes they
// are charged.
func (p *Provider) AuthCacheSize() (entries, bytes int) { return p.auth.size() }

// Bounds of the auth token cache, for tests.
const (
	MaxAuthBytes      = maxAuthBytes
	MaxAuthShareBytes = maxAuthShareBytes
)
