package issuance

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/fairness"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// Call is one vendor call: what to ask for, and for whom.
type Call struct {
	// Namespace is the namespace the token is for: its calls count against
	// the namespace's caps.
	Namespace string
	// Key names who calls, for the fairness queues and the log, e.g. a
	// request's name or "template/<namespace>/<name>" for the endpoint.
	// Concurrent blocking calls may share it.
	Key string
	// Object is the object the call is for (a request, a template), named
	// in the log under LogKey ("embedTokenRequest" when empty).
	Object klog.ObjectRef
	LogKey string
	// Params are the vendor parameters, filled in.
	Params *v1alpha1.VendorParams
	// Lifetime is the lifetime asked for; the provider's maxLifetime caps
	// it (Provider.Lifetime).
	Lifetime time.Duration
	// ExpiryCapped, when set, is told when the vendor stated an expiry past
	// MaxTrustedLifetime, which the token is recorded without.
	ExpiryCapped func(stated, recorded time.Time)
}

// logger is ctx's logger naming c.Object under LogKey ("embedTokenRequest"
// when empty).
func (c Call) logger(ctx context.Context) logr.Logger {
	key := cmp.Or(c.LogKey, "embedTokenRequest")
	return log.FromContext(ctx).WithValues(key, c.Object) //nolint:loggercheck // the key is the kind of the caller's object, Call.LogKey
}

// MaxCallWait bounds how long a blocking Call waits for its turn under a
// provider's rate limit, and MaxQueueRounds how many rounds of calls may be
// ahead of it in a call-slot queue or its namespace's lane: past either it
// is Throttled at once rather than holding a connection open.
const (
	MaxCallWait    = 5 * time.Second
	MaxQueueRounds = 4
)

// Throttled is the error of a blocking Call that would wait past its
// context's deadline or past MaxCallWait or MaxQueueRounds for its turn
// under the provider's rate limit or for a call slot. No vendor call was
// made; RetryAfter is when a retry may find a turn.
type Throttled struct {
	RetryAfter time.Duration
	// Reason says what was waited for, without any caller's data.
	Reason string
}

// Error implements error.
func (t *Throttled) Error() string {
	return fmt.Sprintf("vendor call throttled: %s; retry after %s", t.Reason, t.RetryAfter.Round(time.Millisecond))
}

// TryAdmit lets one vendor call by who, from namespace, through p's gates
// without blocking (fairness.Gates.TryAdmit). The reconciler requeues a
// request that must wait; Call waits.
func (i *Issuer) TryAdmit(who types.NamespacedName, p *Provider, namespace string, now time.Time) fairness.Admission {
	return i.gates.TryAdmit(fairness.Call{Who: who, Provider: fairness.ProviderKey(p.Key()), UID: p.UID, RateLimit: p.Spec.RateLimit,
		Namespace: namespace, Shared: p.Shared()}, now)
}

// DescribeCaps states the call caps that apply to p, for a status message.
func (i *Issuer) DescribeCaps(p *Provider) string {
	return i.gates.Caps.Describe(p.Shared())
}

// Call makes one vendor call for c through p, which Check has admitted,
// blocking until its fair turn: under p's rate limit and within the same
// call slots (per provider, per namespace, and per namespace through a
// ClusterEmbedProvider) as the reconciler's calls. A wait that would pass
// ctx's deadline, MaxCallWait or MaxQueueRounds returns a *Throttled at
// once. Then it is Issue.
func (i *Issuer) Call(ctx context.Context, p *Provider, c Call) (provider.Token, error) {
	release, err := i.wait(ctx, p, c)
	if err != nil {
		return provider.Token{}, err
	}
	defer release()
	return i.Issue(ctx, p, c)
}

// wait blocks until c may call p's vendor and returns the function that
// frees its call slot.
func (i *Issuer) wait(ctx context.Context, p *Provider, c Call) (func(), error) {
	who := types.NamespacedName{Namespace: c.Namespace, Name: fmt.Sprintf("%s#%d", c.Key, i.waiters.Add(1))}
	woken, done := i.gates.Block(who)
	defer done()
	for {
		a := i.TryAdmit(who, p, c.Namespace, time.Now())
		var after time.Duration
		var reason string
		switch a.Wait {
		case fairness.Admitted:
			if err := sleep(ctx, a.Sleep, nil); err != nil {
				a.Release()
				return nil, &Throttled{RetryAfter: a.Sleep, Reason: "the rate limit of " + p.Describe()}
			}
			return a.Release, nil
		case fairness.WaitRateLimit:
			after, reason = a.After, "the rate limit of "+p.Describe()
			if a.After > MaxCallWait || pastDeadline(ctx, a.After) {
				return nil, &Throttled{RetryAfter: a.After, Reason: reason}
			}
			woken = nil // the turn is a time, not a wake-up
		case fairness.WaitTurn, fairness.WaitSlot:
			after = fairness.RetryBase * time.Duration(max(a.Queue.Rounds, 1))
			reason = "a free vendor call slot of " + p.Describe() + " (" + i.DescribeCaps(p) + ")"
			if a.Wait == fairness.WaitTurn {
				reason = "its namespace's turn under the rate limit of " + p.Describe()
			}
			if a.Queue.Rounds > MaxQueueRounds {
				return nil, &Throttled{RetryAfter: after, Reason: reason}
			}
		}
		if i.onWait != nil {
			i.onWait(a.Wait)
		}
		if err := sleep(ctx, after, woken); err != nil {
			return nil, &Throttled{RetryAfter: after, Reason: reason}
		}
	}
}

// sleep waits d, or until woken, or until ctx ends (an error).
func sleep(ctx context.Context, d time.Duration, woken <-chan struct{}) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-woken:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// pastDeadline reports whether waiting d would pass ctx's deadline.
func pastDeadline(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return ok && !time.Now().Add(d).Before(deadline)
}

// Issue asks p's vendor for a token within the call's timeout; the caller
// has been admitted (TryAdmit) or waited its turn (Call). The token is
// bounded in size, must expire in the future, is held to the provider's
// maxLifetime (a refused token is revoked) and to MaxTrustedLifetime. Its
// errors hold no credential the call read, in any encoding.
func (i *Issuer) Issue(ctx context.Context, p *Provider, c Call) (provider.Token, error) {
	if p.impl == nil {
		return provider.Token{}, provider.Permanent(v1alpha1.ReasonVendorNotSupported, "this operator build has no %s provider", p.vendor)
	}
	httpClient, err := i.httpClient(ctx, p)
	if err != nil {
		return provider.Token{}, err
	}
	callCtx, cancel := context.WithTimeout(ctx, httpClient.Timeout+time.Second)
	defer cancel()
	now := i.clock.Now()
	lifetime := p.Lifetime(c.Lifetime)
	start := time.Now()
	creds := provider.RecordCredentials(p.creds)
	tok, err := p.impl.Issue(callCtx, provider.Request{
		Config:      p.Spec,
		Params:      c.Params,
		Lifetime:    lifetime,
		Credentials: creds,
		HTTPClient:  httpClient,
		Now:         now,
		// What the vendor caches for the provider is charged to the
		// provider's namespace: see provider.Request.
		ProviderNamespace: p.Namespace,
	})
	if i.metrics != nil {
		i.metrics.ObserveIssue(p.vendor, time.Since(start), err)
	}
	if err != nil {
		// The message goes to the conditions, an Event, the log or the
		// endpoint's answer: every credential the call read is removed
		// from it, in any encoding.
		return provider.Token{}, creds.Redact(err)
	}
	// Every vendor's token is bounded here, whatever its parser checked.
	if err := provider.CheckTokenSize("the vendor's token", tok.Value); err != nil {
		return provider.Token{}, err
	}
	if !tok.ExpiresAt.After(now) {
		return provider.Token{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "the vendor issued a token that expires at %s, which is not in the future", tok.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if tok, err = i.limitLifetime(ctx, p, c, tok); err != nil {
		return provider.Token{}, err
	}
	return capExpiry(ctx, c, tok, lifetime, now), nil
}

// limitLifetime applies the provider's maxLifetime to a token the vendor
// just issued (see holdToMaxLifetime): a token it refuses is revoked where the
// vendor can revoke, so it does not stay live unused (nor count against a
// per-user limit); one it stores under RenewAtMax is logged.
func (i *Issuer) limitLifetime(ctx context.Context, p *Provider, c Call, tok provider.Token) (provider.Token, error) {
	limited, err := holdToMaxLifetime(tok, i.clock.Now(), p.Name, p.Spec.LifetimeCap(), p.Spec.LifetimeExceedsMax)
	switch {
	case err != nil:
		i.Revoke(ctx, p, c, tok.Value, "refused")
	case !limited.VendorExpiresAt.IsZero():
		c.logger(ctx).Info("Recording the token as expiring at the provider's maxLifetime",
			"digest", tok.Digest(), "vendorExpiresAt", tok.ExpiresAt.UTC().Format(time.RFC3339),
			"recordedExpiresAt", limited.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return limited, err
}

// Revoke asks p's vendor to revoke a token c's object no longer uses
// (replaced by a new one, refused, discarded), for vendors that support it
// (the vendor's config decides whether to); which says which, for the log.
// A failure is only logged, without the token or any credential the call
// read: nothing depends on it.
func (i *Issuer) Revoke(ctx context.Context, p *Provider, c Call, token, which string) {
	revoker, ok := p.impl.(provider.Revoker)
	if !ok {
		return
	}
	creds := provider.RecordCredentials(p.creds)
	httpClient, err := i.httpClient(ctx, p)
	if err == nil {
		err = revoker.Revoke(ctx, provider.Request{Config: p.Spec, Params: c.Params, Credentials: creds,
			HTTPClient: httpClient, Now: i.clock.Now()}, token)
		err = creds.Redact(err, token)
	}
	if err != nil {
		c.logger(ctx).Error(err, "Revoking the "+which+" token failed",
			"vendor", p.vendor, "digest", provider.Digest(token))
	}
}
