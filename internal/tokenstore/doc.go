// Package tokenstore keeps each EmbedTokenRequest's token in its Secret.
//
// The Secret, not the request's status, is the source of truth: it is
// written first, and its annotations record the token's times, inputs and
// digest, so after a crash the store tells whether a token was already
// issued. The store
//   - loads a Secret's metadata from the manager's cache (Load) and reads a
//     token itself from the API server only when it must (ReadLive);
//   - writes a Secret whole (Put) and repairs edited metadata (Repair),
//     never touching a Secret another owner holds;
//   - remembers its own writes until the cache shows them (CacheBehind), so
//     no reconcile decides from an older state;
//   - holds, within per-namespace bounds, a token whose write failed, for
//     the next attempt to store without a vendor call (Held).
package tokenstore
