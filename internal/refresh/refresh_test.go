package refresh

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func freshToken() StoredToken {
	return StoredToken{Present: true, IssuedAt: t0, ExpiresAt: t0.Add(time.Hour), InputHash: "h1", RefreshHandled: "r1"}
}

// floor is the default minimum renewal interval.
var floor = RenewPolicy{MinInterval: DefaultMinRenewInterval}

// shortToken is a fresh token the vendor granted for lifetime.
func shortToken(lifetime time.Duration) StoredToken {
	s := freshToken()
	s.ExpiresAt = t0.Add(lifetime)
	return s
}

func withCreds(s StoredToken, version string) StoredToken {
	s.CredentialsVersion = version
	return s
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name   string
		in     Input
		now    time.Time
		reason Reason
		at     time.Time // zero: not checked
	}{
		{
			name:   "a request without a stored token issues one now",
			in:     Input{InputHash: "h1"},
			now:    t0,
			reason: NoToken, at: t0,
		},
		{
			name:   "a fresh token with unchanged inputs waits for its renewal time",
			in:     Input{Stored: freshToken(), InputHash: "h1", RefreshRequest: "r1"},
			now:    t0.Add(10 * time.Minute),
			reason: None,
		},
		{
			name:   "changed inputs re-issue although the token is fresh",
			in:     Input{Stored: freshToken(), InputHash: "h2", RefreshRequest: "r1"},
			now:    t0.Add(time.Minute),
			reason: InputsChanged, at: t0.Add(time.Minute),
		},
		{
			name:   "a new refresh annotation value re-issues once",
			in:     Input{Stored: freshToken(), InputHash: "h1", RefreshRequest: "r2"},
			now:    t0.Add(time.Minute),
			reason: Requested,
		},
		{
			name:   "a removed refresh annotation does not re-issue",
			in:     Input{Stored: freshToken(), InputHash: "h1", RefreshRequest: ""},
			now:    t0.Add(time.Minute),
			reason: None,
		},
		{
			name:   "a token past its renewal time is renewed",
			in:     Input{Stored: freshToken(), InputHash: "h1", RefreshRequest: "r1"},
			now:    t0.Add(41 * time.Minute),
			reason: Due,
		},
		{
			name:   "a rotated credential re-issues",
			in:     Input{Stored: withCreds(freshToken(), "c1"), InputHash: "h1", RefreshRequest: "r1", CredentialsVersion: "c2"},
			now:    t0.Add(time.Minute),
			reason: CredentialsChanged,
		},
		{
			name:   "an unchanged credential does not re-issue",
			in:     Input{Stored: withCreds(freshToken(), "c1"), InputHash: "h1", RefreshRequest: "r1", CredentialsVersion: "c1"},
			now:    t0.Add(time.Minute),
			reason: None,
		},
		{
			name:   "a credentials version first seen after issuing does not re-issue",
			in:     Input{Stored: freshToken(), InputHash: "h1", RefreshRequest: "r1", CredentialsVersion: "c1"},
			now:    t0.Add(time.Minute),
			reason: None,
		},
		{
			name:   "a provider that does not re-issue on rotation ignores credential changes",
			in:     Input{Stored: withCreds(freshToken(), "c1"), InputHash: "h1", RefreshRequest: "r1"},
			now:    t0.Add(time.Minute),
			reason: None,
		},
		{
			name:   "an expired token is replaced",
			in:     Input{Stored: freshToken(), InputHash: "h1", RefreshRequest: "r1"},
			now:    t0.Add(2 * time.Hour),
			reason: Expired,
		},
		{
			name:   "a failed attempt delays the next one until its retry time",
			in:     Input{Stored: freshToken(), InputHash: "h1", RefreshRequest: "r1", RetryAt: t0.Add(50 * time.Minute)},
			now:    t0.Add(45 * time.Minute),
			reason: Due, at: t0.Add(50 * time.Minute),
		},
		{
			name:   "a token the vendor granted for a second is renewed no earlier than the minimum renewal interval after its issue",
			in:     Input{Stored: shortToken(time.Second), InputHash: "h1", RefreshRequest: "r1", Renew: floor},
			now:    t0.Add(5 * time.Second),
			reason: None, at: t0.Add(30 * time.Second),
		},
		{
			name:   "a short token expired for the whole minimum renewal interval is renewed when it has passed",
			in:     Input{Stored: shortToken(time.Second), InputHash: "h1", RefreshRequest: "r1", Renew: floor},
			now:    t0.Add(30 * time.Second),
			reason: Expired, at: t0.Add(30 * time.Second),
		},
		{
			name:   "a token of the minimum lifetime is renewed after half its life, which is the minimum renewal interval",
			in:     Input{Stored: shortToken(time.Minute), InputHash: "h1", RefreshRequest: "r1", Renew: floor},
			now:    t0.Add(30 * time.Second),
			reason: Due, at: t0.Add(30 * time.Second),
		},
		{
			name:   "a refresh asked for within a minute of the last issue is served a minute after it, not refused",
			in:     Input{Stored: freshToken(), InputHash: "h1", RefreshRequest: "r2", Renew: floor, MinRefreshInterval: time.Minute},
			now:    t0.Add(10 * time.Second),
			reason: None, at: t0.Add(time.Minute),
		},
		{
			name:   "a refresh asked for within a minute of the last issue is served once the minute has passed",
			in:     Input{Stored: freshToken(), InputHash: "h1", RefreshRequest: "r2", Renew: floor, MinRefreshInterval: time.Minute},
			now:    t0.Add(time.Minute),
			reason: Requested, at: t0.Add(time.Minute),
		},
		{
			name:   "a refresh waiting for its minute does not hold back a renewal that is due",
			in:     Input{Stored: shortToken(time.Second), InputHash: "h1", RefreshRequest: "r2", Renew: floor, MinRefreshInterval: time.Minute},
			now:    t0.Add(40 * time.Second),
			reason: Expired, at: t0.Add(40 * time.Second),
		},
		{
			name:   "changed inputs re-issue at once whatever the minimum intervals",
			in:     Input{Stored: shortToken(time.Second), InputHash: "h2", RefreshRequest: "r2", Renew: floor, MinRefreshInterval: time.Minute},
			now:    t0.Add(2 * time.Second),
			reason: InputsChanged, at: t0.Add(2 * time.Second),
		},
		{
			name:   "a rotated credential re-issues at once whatever the minimum intervals",
			in:     Input{Stored: withCreds(shortToken(time.Minute), "c1"), InputHash: "h1", RefreshRequest: "r1", CredentialsVersion: "c2", Renew: floor},
			now:    t0.Add(2 * time.Second),
			reason: CredentialsChanged, at: t0.Add(2 * time.Second),
		},
		{
			name:   "a retry time in the past does not delay",
			in:     Input{InputHash: "h1", RetryAt: t0.Add(-time.Second)},
			now:    t0,
			reason: NoToken, at: t0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.in, tt.now)
			if d.Reason != tt.reason {
				t.Fatalf("reason = %q, want %q", d.Reason, tt.reason)
			}
			if !tt.at.IsZero() && !d.At.Equal(tt.at) {
				t.Fatalf("at = %s, want %s", d.At, tt.at)
			}
			if d.Reason == None && !d.At.After(tt.now) {
				t.Fatalf("a fresh token must requeue in the future, got %s", d.At)
			}
		})
	}
}

func TestRenewAt(t *testing.T) {
	hour := t0.Add(time.Hour)
	tests := []struct {
		name             string
		issued, expires  time.Time
		policy           RenewPolicy
		earliest, latest time.Time
	}{
		{
			name:   "by default a token renews when a third of its life remains",
			issued: t0, expires: hour,
			earliest: hour.Add(-22 * time.Minute), latest: hour.Add(-20 * time.Minute),
		},
		{
			name:   "renewBefore sets the margin",
			issued: t0, expires: hour, policy: RenewPolicy{RenewBefore: 5 * time.Minute},
			earliest: hour.Add(-5*time.Minute - 30*time.Second), latest: hour.Add(-5 * time.Minute),
		},
		{
			name:   "renewBeforePercentage sets the margin as a share of the lifetime",
			issued: t0, expires: hour, policy: RenewPolicy{RenewBeforePercentage: 50},
			earliest: hour.Add(-33 * time.Minute), latest: hour.Add(-30 * time.Minute),
		},
		{
			name:   "a short token renews at least two minutes before expiry so the kubelet can deliver the new one",
			issued: t0, expires: t0.Add(5 * time.Minute),
			earliest: t0.Add(3*time.Minute - 12*time.Second), latest: t0.Add(3 * time.Minute),
		},
		{
			name:   "a very short token renews at half its life rather than at once",
			issued: t0, expires: t0.Add(3 * time.Minute),
			earliest: t0.Add(90*time.Second - 9*time.Second), latest: t0.Add(90 * time.Second),
		},
		{
			name:   "a renewBefore longer than what the vendor granted falls back to the default margin",
			issued: t0, expires: t0.Add(3 * time.Minute), policy: RenewPolicy{RenewBefore: 10 * time.Minute},
			earliest: t0.Add(90*time.Second - 9*time.Second), latest: t0.Add(90 * time.Second),
		},
		{
			name:   "an explicit renewBefore may be shorter than the default minimum",
			issued: t0, expires: t0.Add(3 * time.Minute), policy: RenewPolicy{RenewBefore: 30 * time.Second},
			earliest: t0.Add(150*time.Second - 3*time.Second), latest: t0.Add(150 * time.Second),
		},
		{
			name:   "a token the vendor granted for less than the minimum renewal interval renews at the interval, not at once",
			issued: t0, expires: t0.Add(time.Second), policy: floor,
			earliest: t0.Add(30 * time.Second), latest: t0.Add(30 * time.Second),
		},
		{
			name:   "a token of the minimum lifetime renews at half its life, the minimum renewal interval, jitter or not",
			issued: t0, expires: t0.Add(time.Minute), policy: floor,
			earliest: t0.Add(30 * time.Second), latest: t0.Add(30 * time.Second),
		},
		{
			name:   "a renewBefore of nearly the whole lifetime is held to the minimum renewal interval",
			issued: t0, expires: hour, policy: RenewPolicy{RenewBefore: 59*time.Minute + 59*time.Second, MinInterval: DefaultMinRenewInterval},
			earliest: t0.Add(30 * time.Second), latest: t0.Add(30 * time.Second),
		},
		{
			name:   "a token with no lifetime renews at the minimum renewal interval",
			issued: t0, expires: t0, policy: floor,
			earliest: t0.Add(30 * time.Second), latest: t0.Add(30 * time.Second),
		},
		{
			name:   "a token with no lifetime renews at once",
			issued: t0, expires: t0,
			earliest: t0, latest: t0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, seed := range []string{"a", "b", "c", "uid-1234"} {
				got := RenewAt(tt.issued, tt.expires, tt.policy, seed)
				if got.Before(tt.earliest.Add(-time.Second)) || got.After(tt.latest) {
					t.Fatalf("seed %q: renewAt = %s, want within [%s, %s]", seed, got, tt.earliest, tt.latest)
				}
				if again := RenewAt(tt.issued, tt.expires, tt.policy, seed); !again.Equal(got) {
					t.Fatalf("seed %q: renewAt is not deterministic: %s then %s", seed, got, again)
				}
			}
		})
	}
}

func TestRenewAtSpreadsTokensIssuedTogether(t *testing.T) {
	seen := map[time.Time]bool{}
	for i := range 100 {
		seen[RenewAt(t0, t0.Add(time.Hour), RenewPolicy{}, string(rune('a'+i%26))+string(rune('a'+i/26)))] = true
	}
	if len(seen) < 50 {
		t.Fatalf("100 tokens issued together renew at only %d distinct seconds", len(seen))
	}
}

func TestBackoff(t *testing.T) {
	far := t0.Add(24 * time.Hour)
	tests := []struct {
		name       string
		attempts   int32
		permanent  bool
		retryAfter time.Duration
		expiresAt  time.Time
		min, max   time.Duration
	}{
		{name: "the first retry comes after a few seconds", attempts: 1, expiresAt: far, min: 3 * time.Second, max: 5 * time.Second},
		{name: "retries double", attempts: 3, expiresAt: far, min: 15 * time.Second, max: 20 * time.Second},
		{name: "retries are capped", attempts: 30, expiresAt: far, min: MaxBackoff * 3 / 4, max: MaxBackoff},
		{name: "permanent errors retry at the slowest pace", attempts: 1, permanent: true, expiresAt: far, min: MaxBackoff * 3 / 4, max: MaxBackoff},
		{name: "retries never jump past a third of the remaining life", attempts: 10, expiresAt: t0.Add(30 * time.Second), min: 10 * time.Second, max: 10 * time.Second},
		{name: "permanent errors also retry before expiry", attempts: 1, permanent: true, expiresAt: t0.Add(60 * time.Second), min: 20 * time.Second, max: 20 * time.Second},
		{name: "the vendor's Retry-After is honoured", attempts: 1, retryAfter: 30 * time.Second, expiresAt: far, min: 30 * time.Second, max: 30 * time.Second},
		{name: "retries never come in a hot loop", attempts: 1, expiresAt: t0.Add(time.Second), min: time.Second, max: time.Second},
		{name: "after expiry retries keep backing off", attempts: 2, expiresAt: t0.Add(-time.Hour), min: 7 * time.Second, max: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Backoff(tt.attempts, tt.permanent, tt.retryAfter, tt.expiresAt, t0, "seed")
			if got < tt.min || got > tt.max {
				t.Fatalf("backoff = %s, want within [%s, %s]", got, tt.min, tt.max)
			}
		})
	}
}

func BenchmarkDecide(b *testing.B) {
	in := Input{Stored: freshToken(), InputHash: "h1", RefreshRequest: "r1", Seed: "0f1e2d3c-uid"}
	now := t0.Add(10 * time.Minute)
	for b.Loop() {
		_ = Decide(in, now)
	}
}
