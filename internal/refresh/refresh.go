package refresh

import (
	"hash/fnv"
	"time"
)

// Reason says why a new token is needed; None means the stored
// token is good until its renewal time.
type Reason string

// Reasons for issuing a token, in the order Decide checks them.
const (
	None               Reason = ""
	NoToken            Reason = "NoToken"
	InputsChanged      Reason = "InputsChanged"
	Requested          Reason = "Requested"
	CredentialsChanged Reason = "CredentialsChanged"
	Expired            Reason = "Expired"
	Due                Reason = "RenewalDue"
)

// Backoff bounds for failed attempts: the first retry comes after a few
// seconds, later ones double up to MaxBackoff.
const (
	BaseBackoff = 5 * time.Second
	MaxBackoff  = 5 * time.Minute
	// MinRetry is the least time before any retry, so none is scheduled in
	// a hot loop.
	MinRetry = time.Second
	// renewJitter spreads renewals of tokens issued together over up to this
	// fraction of their margin, always earlier, never later.
	renewJitter = 0.1
	// BackoffJitter makes retries up to this fraction earlier (and the
	// fallback requeues of waiting vendor calls up to this fraction later).
	BackoffJitter = 0.25
)

// DefaultMinRenewInterval is the least time between two issues of a
// request's token for the time-driven reasons (renewal due, token expired)
// unless the manager's --min-renew-interval says otherwise. Every issue
// costs a vendor call, a Secret write and a status write, so a lifetime of
// a second (the vendor may grant that whatever is asked) would otherwise
// spend the operator's whole API budget on one namespace. The admission
// minimum lifetime, 1m, has a default margin (half of a short lifetime) of
// exactly this interval, so the floor only acts when the vendor grants less
// than the minimum lifetime or renewBefore asks to renew sooner.
const DefaultMinRenewInterval = 30 * time.Second

// DefaultMinRefreshInterval is how often the refresh annotation is honoured
// per request unless the manager's --min-refresh-interval says otherwise: a
// new value within this time of the last issue is served when it has
// passed, so annotating every request again and again cannot spend the
// vendor's quota and the API budget at will.
const DefaultMinRefreshInterval = time.Minute

// MinDefaultRenewMargin is the least time the default policy leaves between
// writing a renewed token and the old one expiring. A pod sees a mounted
// Secret's new content only at the kubelet's next sync of the pod (every
// minute with up to 50% jitter: 60-90 s; measured on a real node, 1-88 s
// over 256 pod files, docs/benchmarks.md), so a third of a short lifetime
// is not enough; 2 minutes leaves 30 s beyond the worst case.
const MinDefaultRenewMargin = 2 * time.Minute

// DefaultRenewMargin is the margin used when the request sets neither
// renewBefore nor renewBeforePercentage: a third of the lifetime, at least
// MinDefaultRenewMargin so mounted Secrets update in time, but never more
// than half the lifetime so a short-lived token is used for half its life.
func DefaultRenewMargin(lifetime time.Duration) time.Duration {
	return min(max(lifetime/3, MinDefaultRenewMargin), lifetime/2)
}

// StoredToken is what the written Secret records about the token it holds.
// The Secret, not the status, is the source of truth: it is written first,
// so after a crash it tells whether a token was already issued.
type StoredToken struct {
	// Present is true when the Secret holds a token with a readable expiry.
	Present        bool
	IssuedAt       time.Time
	ExpiresAt      time.Time
	InputHash      string
	RefreshHandled string
	// CredentialsVersion is the provider's credentials version at issue.
	CredentialsVersion string
	// VendorExpiresAt is the vendor's expiry when ExpiresAt records an
	// earlier one (Token.VendorExpiresAt), zero otherwise.
	VendorExpiresAt time.Time
}

// RenewPolicy is the request's renewal margin (at most one of RenewBefore
// and RenewBeforePercentage is set) and the manager's floor under it.
type RenewPolicy struct {
	RenewBefore           time.Duration
	RenewBeforePercentage int32
	// MinInterval is the least time from issuing a token to renewing it,
	// whatever the margin or the lifetime the vendor granted.
	MinInterval time.Duration
}

// Input is everything Decide looks at.
type Input struct {
	Stored StoredToken
	// InputHash fingerprints the current spec's token inputs.
	InputHash string
	// RefreshRequest is the current value of the refresh annotation.
	RefreshRequest string
	// CredentialsVersion is the provider's current credentials version, or
	// "" when unknown or when the provider does not re-issue on rotation.
	CredentialsVersion string
	Renew              RenewPolicy
	// Seed makes jitter deterministic per request (its UID), so a restart
	// computes the same times.
	Seed string
	// RetryAt is when a failed attempt may be retried; zero when the last
	// attempt did not fail (or failed for an older spec).
	RetryAt time.Time
	// MinRefreshInterval is the least time from the last issue to one the
	// refresh annotation asks for.
	MinRefreshInterval time.Duration
}

// Decision is what to do now: issue a token (Reason != None) at At, or
// nothing until At.
type Decision struct {
	Reason Reason
	At     time.Time
}

// Decide answers "should we refresh now?" from the stored token, the spec
// and the clock alone, so restarts and unrelated events never mint a token
// early and every branch is table-tested. A reason whose time has not come
// (a refresh asked for within MinRefreshInterval of the last issue, an
// expiry within the renewal floor) is no reason yet: Decide waits until
// the earliest such time.
func Decide(in Input, now time.Time) Decision {
	next := time.Time{}
	for _, c := range refreshCandidates(in) {
		switch {
		case !c.applies:
		case !now.Before(c.from):
			at := now
			if in.RetryAt.After(now) {
				at = in.RetryAt
			}
			return Decision{Reason: c.reason, At: at}
		case next.IsZero() || c.from.Before(next):
			next = c.from
		}
	}
	return Decision{At: next}
}

// ReasonWithoutFloor is the reason to issue at now with no floor: a refresh
// asked for is due at once, an expired token is expired. A token issued but
// not yet stored with any such reason is not stored in place of a new one.
func ReasonWithoutFloor(in Input, now time.Time) Reason {
	in.MinRefreshInterval, in.Renew.MinInterval = 0, 0
	return Decide(in, now).Reason
}

// candidate is a reason to issue a token and the time from which it holds.
type candidate struct {
	reason  Reason
	applies bool
	from    time.Time
}

// refreshCandidates lists the reasons to issue in the order Decide checks
// them. With no stored token the first applies at once; otherwise the last,
// the renewal time, always applies, so Decide always finds a time.
func refreshCandidates(in Input) []candidate {
	s := in.Stored
	if !s.Present {
		return []candidate{{reason: NoToken, applies: true}}
	}
	renewAt := RenewAt(s.IssuedAt, s.ExpiresAt, in.Renew, in.Seed)
	return []candidate{
		{reason: InputsChanged, applies: s.InputHash != in.InputHash},
		{reason: Requested, applies: in.RefreshRequest != "" && in.RefreshRequest != s.RefreshHandled,
			from: s.IssuedAt.Add(in.MinRefreshInterval)},
		{reason: CredentialsChanged, applies: in.CredentialsVersion != "" && s.CredentialsVersion != "" && in.CredentialsVersion != s.CredentialsVersion},
		{reason: Expired, applies: true, from: latest(s.ExpiresAt, s.IssuedAt.Add(in.Renew.MinInterval))},
		{reason: Due, applies: true, from: renewAt},
	}
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// RenewAt is when a token valid from issued to expires should be replaced:
// its margin (DefaultRenewMargin unless the policy sets one) before expiry,
// made up to 10% earlier by a per-token jitter so tokens issued together do
// not renew together, and never before the policy's MinInterval after
// issued, even when the vendor granted a shorter token.
func RenewAt(issued, expires time.Time, p RenewPolicy, seed string) time.Time {
	lifetime := expires.Sub(issued)
	if lifetime <= 0 {
		return latest(expires, issued.Add(p.MinInterval))
	}
	margin := DefaultRenewMargin(lifetime)
	switch {
	case p.RenewBefore > 0 && p.RenewBefore < lifetime:
		margin = p.RenewBefore
	case p.RenewBefore >= lifetime:
		// The vendor granted less than asked: fall back to the default
		// margin, as cert-manager does when renewBefore exceeds the duration.
	case p.RenewBeforePercentage > 0:
		margin = lifetime * time.Duration(p.RenewBeforePercentage) / 100
	}
	jitter := time.Duration(float64(margin) * renewJitter * Jitter(seed, issued.UnixNano()))
	return latest(expires.Add(-margin-jitter).Truncate(time.Second), issued.Add(p.MinInterval))
}

// Backoff is how long to wait after the attempts-th consecutive failure. It
// doubles from BaseBackoff to MaxBackoff (permanent errors start there), is
// made up to 25% shorter by jitter, never waits past a third of the stored
// token's remaining life so retries continue before expiry, and honours the
// vendor's Retry-After.
func Backoff(attempts int32, permanent bool, retryAfter time.Duration, expiresAt, now time.Time, seed string) time.Duration {
	d := MaxBackoff
	if !permanent && attempts < 16 {
		d = min(BaseBackoff<<max(attempts-1, 0), MaxBackoff)
	}
	d -= time.Duration(float64(d) * BackoffJitter * Jitter(seed, int64(attempts)))
	if remaining := expiresAt.Sub(now); remaining > 0 {
		d = min(d, remaining/3)
	}
	return max(d, retryAfter, MinRetry)
}

// Jitter maps (seed, n) to [0, 1) deterministically, so times spread per
// request (seed is its UID) come out the same after a restart.
func Jitter(seed string, n int64) float64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(seed))
	var b [8]byte
	for i := range b {
		b[i] = byte(n >> (8 * i)) //nolint:gosec // G115: truncating to each byte is the point
	}
	_, _ = h.Write(b[:])
	return float64(h.Sum64()>>11) / float64(1<<53)
}
