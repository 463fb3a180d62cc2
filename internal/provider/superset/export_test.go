package superset

import (
	"time"

	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// The pure parsers, exported to the external test package for fuzzing.
var ErrorDetail = errorDetail

// GuestBody is the guest token call's body, for byte-for-byte wire checks.
var GuestBody = guestBody

// ParseGuest is the guest token call's answer handling: its status, then
// its body.
func ParseGuest(resp *provider.Response, now time.Time) (provider.Token, error) {
	if err := provider.CheckStatus(resp, errorDetail(resp.Body)); err != nil {
		return provider.Token{}, err
	}
	return parseGuest(resp, now)
}
