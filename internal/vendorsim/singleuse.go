package vendorsim

// The redeemers of single-use tokens: Looker's signed embed URLs, Sigma's
// embed JWTs and Tableau connected-app JWTs are signed by the operator, not
// issued by the vendor, so what the simulator checks is their redemption,
// as the vendor does when a browser opens the embed: the signature, the
// claims the vendor requires, and that a nonce or jti is never used twice.
// A successful redemption opens a session, recorded as an issued token.

import (
	"sync"
	"time"
)

// usedOnce remembers the nonces or jtis already redeemed, each until it
// could no longer be redeemed anyway, so the set stays bounded by the rate
// of redemptions.
type usedOnce struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// use records id, valid until until, and reports whether it was new.
func (u *usedOnce) use(id string, now, until time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.seen == nil {
		u.seen = map[string]time.Time{}
	}
	for k, exp := range u.seen {
		if now.After(exp) {
			delete(u.seen, k)
		}
	}
	if _, ok := u.seen[id]; ok {
		return false
	}
	u.seen[id] = until
	return true
}

// reset forgets every redemption.
func (u *usedOnce) reset() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.seen = nil
}
