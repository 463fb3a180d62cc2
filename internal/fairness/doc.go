// Package fairness keeps one provider or one namespace from taking every
// vendor call. Gates holds the state every vendor call passes: Tickets, each
// caller's reservation on its provider's rate limiter (with per-namespace
// lanes on a shared provider, so namespaces take turns), and Slots, the
// calls in flight under Caps per provider, per namespace and per namespace
// through a shared provider. Nothing here blocks: a refused caller is queued
// and woken, either through the reconciler's queue (a requeue) or, for a
// caller registered with Block, through its own channel.
package fairness
