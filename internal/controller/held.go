package controller

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// takeHeld returns the token an earlier attempt issued for etr but could not
// store, when it is still one to keep (heldTokens.take); the caller stores it
// instead of calling the vendor.
func (r *EmbedTokenRequestReconciler) takeHeld(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, p *resolvedProvider, in PolicyInput,
	o *outcome) (provider.Token, bool) {
	tok, ok := r.held.take(client.ObjectKeyFromObject(etr), etr.UID, in, o.now)
	if !ok {
		return provider.Token{}, false
	}
	o.vendor = p.vendor
	log.FromContext(ctx).Info("Storing a token an earlier attempt could not store", "embedTokenRequest", klog.KObj(etr),
		"vendor", p.vendor, "digest", tok.Digest(), "expiresAt", tok.ExpiresAt)
	return tok, true
}

// heldTokens keeps, per request, a token the vendor issued but the Secret
// write then failed to store (an API server outage, a conflict, a webhook
// refusing the write). The next attempt stores it instead of asking the
// vendor again, as long as the token is one Decide would keep had it been
// stored: without it every retry during an outage costs a vendor call and
// leaves one more live token at the vendor (Qlik Cloud counts them against
// a per-user limit). Tokens stay in the manager's memory only, as they do
// for the length of any reconcile; an entry goes when it is taken, when the
// request is deleted, or with the process.
type heldTokens struct {
	mu sync.Mutex
	m  map[types.NamespacedName]heldToken
}

// heldToken is a token and what Decide needs to judge it as stored.
type heldToken struct {
	uid    types.UID
	token  provider.Token
	record StoredToken
}

func newHeldTokens() *heldTokens {
	return &heldTokens{m: map[types.NamespacedName]heldToken{}}
}

// hold keeps tok, issued for the request key with uid and described by rec,
// for the next attempt; it replaces any token held before.
func (h *heldTokens) hold(key types.NamespacedName, uid types.UID, tok provider.Token, rec StoredToken) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.m[key] = heldToken{uid: uid, token: tok, record: rec}
}

// take removes the token held for the request key and returns it when it
// was issued for the same object (uid) and Decide, given in with the held
// token as the stored one, would keep it at now: the same inputs, refresh
// annotation and credentials, and not yet due. A token that fails this is
// dropped; the caller asks the vendor for a new one.
func (h *heldTokens) take(key types.NamespacedName, uid types.UID, in PolicyInput, now time.Time) (provider.Token, bool) {
	h.mu.Lock()
	held, ok := h.m[key]
	delete(h.m, key)
	h.mu.Unlock()
	if !ok || held.uid != uid {
		return provider.Token{}, false
	}
	in.Stored = held.record
	if refreshReason(in, now) != RefreshNone {
		return provider.Token{}, false
	}
	return held.token, true
}

// forget drops what is held for a deleted request.
func (h *heldTokens) forget(key types.NamespacedName) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.m, key)
}
