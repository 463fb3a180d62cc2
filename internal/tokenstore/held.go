package tokenstore

import (
	"maps"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/refresh"
)

// Bounds on the tokens Held keeps. Tokens are held only while the API
// server refuses writes for a moment (an outage, a conflict), so a few
// thousand tokens of a few KiB fit; a token that does not is not held, and
// its request's next attempt asks the vendor again, as it would without
// holding.
const (
	// MaxHeldTokenBytes bounds what all held tokens take together.
	MaxHeldTokenBytes = 16 << 20
	// MaxHeldTokenBytesPerNamespace is each namespace's share of it, so
	// one namespace's tokens cannot take the room of another's.
	MaxHeldTokenBytesPerNamespace = 2 << 20
	// heldEntryOverhead is what an entry costs besides its strings: the
	// map entry, the record's times and the token's fields.
	heldEntryOverhead = 256
)

// Held keeps, per request, a token the vendor issued but the Secret
// write then failed to store (an API server outage, a conflict). The next
// attempt stores it instead of asking the vendor again, as long as the
// token is one Decide would keep had it been stored: without it every retry
// during an outage costs a vendor call and leaves one more live token at
// the vendor (Qlik Cloud counts them against a per-user limit). Tokens stay
// in the manager's memory only, as they do for the length of any
// reconcile; an entry goes when it is taken, when the request is deleted,
// or with the process. Their size is bounded in all (maxBytes) and per
// namespace (maxNamespaceBytes); a token past either bound is not held, and
// nothing held is ever evicted for it, so one namespace cannot take another
// namespace's held tokens away.
type Held struct {
	maxBytes, maxNamespaceBytes int64

	mu    sync.Mutex
	m     map[types.NamespacedName]heldToken
	bytes int64            // of every entry
	inNS  map[string]int64 // bytes per namespace, for namespaces that hold any
}

// heldToken is a token and what Decide needs to judge it as stored.
type heldToken struct {
	uid    types.UID
	token  provider.Token
	record refresh.StoredToken
	size   int64
}

// NewHeld keeps tokens of up to maxBytes in all and maxNamespaceBytes per
// namespace.
func NewHeld(maxBytes, maxNamespaceBytes int64) *Held {
	return &Held{maxBytes: maxBytes, maxNamespaceBytes: maxNamespaceBytes,
		m: map[types.NamespacedName]heldToken{}, inNS: map[string]int64{}}
}

// heldSize is what holding tok for key costs in memory, near enough.
func heldSize(key types.NamespacedName, tok provider.Token, rec refresh.StoredToken) int64 {
	return int64(heldEntryOverhead + len(key.Namespace) + len(key.Name) + len(tok.Value) + len(tok.Type) +
		len(rec.InputHash) + len(rec.RefreshHandled) + len(rec.CredentialsVersion))
}

// Hold keeps tok, issued for the request key with uid and described by rec,
// for the next attempt, replacing any token held before for key. It reports
// whether tok is held: not when it would take the namespace or all held
// tokens past their bound.
func (h *Held) Hold(key types.NamespacedName, uid types.UID, tok provider.Token, rec refresh.StoredToken) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.remove(key)
	size := heldSize(key, tok, rec)
	if h.inNS[key.Namespace]+size > h.maxNamespaceBytes || h.bytes+size > h.maxBytes {
		return false
	}
	h.m[key] = heldToken{uid: uid, token: tok, record: rec, size: size}
	h.bytes += size
	h.inNS[key.Namespace] += size
	return true
}

// remove drops key's entry and its bytes; h.mu is held.
func (h *Held) remove(key types.NamespacedName) (heldToken, bool) {
	held, ok := h.m[key]
	if !ok {
		return heldToken{}, false
	}
	delete(h.m, key)
	h.bytes -= held.size
	if h.inNS[key.Namespace] -= held.size; h.inNS[key.Namespace] <= 0 {
		delete(h.inNS, key.Namespace)
	}
	return held, true
}

// Take removes the token held for the request key and returns it when it
// was issued for the same object (uid) and Decide, given in with the held
// token as the stored one, would keep it at now: the same inputs, refresh
// annotation and credentials, and not yet due. A token that fails this is
// dropped; the caller asks the vendor for a new one.
func (h *Held) Take(key types.NamespacedName, uid types.UID, in refresh.Input, now time.Time) (provider.Token, bool) {
	h.mu.Lock()
	held, ok := h.remove(key)
	h.mu.Unlock()
	if !ok || held.uid != uid {
		return provider.Token{}, false
	}
	in.Stored = held.record
	if refresh.ReasonWithoutFloor(in, now) != refresh.None {
		return provider.Token{}, false
	}
	return held.token, true
}

// Forget drops what is held for a deleted request.
func (h *Held) Forget(key types.NamespacedName) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.remove(key)
}

// Usage returns the bytes held in each namespace that holds any.
func (h *Held) Usage() map[string]int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.inNS)
}
