package controller

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/issuance"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/refresh"
	"github.com/embedtokens/embed-token-operator/internal/tokenstore"
)

// scope is everything one reconcile of an EmbedTokenRequest knows. The
// steps fill it in order, each the fields under its name, and setStatus
// turns it into the status at the end. A derived value (the granted
// lifetime, the input hash, the renewal margin) is computed once, by the
// step that first needs it, and read from here by every later one.
type scope struct {
	// request is the request as read; setStatus rewrites its status.
	request *v1alpha1.EmbedTokenRequest
	// before is the request as read, to patch the status against and to
	// hand to Options.Reconciled.
	before *v1alpha1.EmbedTokenRequest
	key    types.NamespacedName
	// now is the reconcile's start; every decision is taken at it.
	now time.Time

	// loadSecret: the Secret's metadata and the token it stores. After
	// storeToken, secret.Stored describes the new token.
	secret tokenstore.Loaded

	// resolveProvider: the provider, or why it cannot be used; the
	// lifetime asked of the vendor (the request's, capped by the
	// provider's maxLifetime); the inputs' hash; the refresh input.
	provider    *issuance.Provider
	providerErr error
	lifetime    time.Duration
	inputHash   string
	input       refresh.Input
	// lifetimeNote says what the provider's maxLifetime did to the
	// lifetime asked for and to the stored token; it is added to the Ready
	// message of a valid token.
	lifetimeNote string

	// decide: whether and when to issue.
	decision  refresh.Decision
	suspended bool

	// checkIssuable and callVendor: why no token was issued, or the token
	// to store.
	waiting bool // a failed attempt is backing off
	// deferral is set when the vendor call waits for the provider's rate
	// limit, a free call slot or the namespace's write budget.
	deferral *deferral
	vendor   string
	token    provider.Token
	err      *provider.Error
	// failedAt is when a failed vendor call (or a refused write) ended,
	// zero otherwise; the backoff counts from then, so a call that timed
	// out after 30 s still waits its whole backoff before the next.
	failedAt time.Time

	// storeToken: the token stored, when it renews, and the token it
	// replaced.
	issued   *provider.Token
	renewAt  time.Time
	replaced string

	// rollout: the digests whose restarts and pod pushes completed, their
	// failures, and when to look again for either.
	restartedFor  string
	restartErr    error
	propagatedFor string
	propagateErr  error
	followUpAt    time.Time
}

// newScope starts the scope of a reconcile of etr at now.
func newScope(etr *v1alpha1.EmbedTokenRequest, now time.Time) *scope {
	return &scope{request: etr, before: etr.DeepCopy(), key: client.ObjectKeyFromObject(etr), now: now}
}

// useProvider records the request's provider p (nil when it cannot be
// read) and derives from it, once, the lifetime to ask for, the inputs'
// hash, the refresh input under settings and the lifetime note.
func (s *scope) useProvider(p *issuance.Provider, settings refresh.Settings) {
	s.provider = p
	s.lifetime = p.Lifetime(s.request.RequestedLifetime())
	s.inputHash = refresh.InputHash(s.request, s.lifetime)
	s.input = settings.Input(s.request, s.secret.Stored, s.inputHash, p.RotationVersion())
	s.lifetimeNote = lifetimeNote(s)
}

// renewing reports whether the decision is to issue a token.
func (s *scope) renewing() bool {
	return s.decision.Reason != refresh.None
}

// retryAt asks for a reconcile at t at the latest.
func (s *scope) retryAt(t time.Time) {
	if s.followUpAt.IsZero() || t.Before(s.followUpAt) {
		s.followUpAt = t
	}
}

// currentDigest is the digest of the token the Secret holds after this
// reconcile, or "" if it holds none.
func (s *scope) currentDigest() string {
	if s.issued != nil {
		return s.issued.Digest()
	}
	return s.secret.Digest
}

// fail records a classified failure of this attempt.
func (s *scope) fail(err error) {
	s.err = provider.Classify(err)
}

// latest is the last time this reconcile knows of: the end of a failed
// vendor call, or the reconcile's start.
func (s *scope) latest() time.Time {
	if s.failedAt.After(s.now) {
		return s.failedAt
	}
	return s.now
}

// step is one stage of a reconcile. It reads what earlier steps recorded
// in the scope and records what it learns; stop ends the reconcile, whose
// scope is then reported.
type step func(ctx context.Context, s *scope) (stepResult, error)

// stepResult says whether the reconcile goes on after a step.
type stepResult int

const (
	// proceed runs the next step.
	proceed stepResult = iota
	// stop ends the reconcile here.
	stop
)

// run runs steps in order until one stops or fails.
func run(ctx context.Context, s *scope, steps []step) error {
	for _, st := range steps {
		res, err := st(ctx, s)
		if err != nil || res == stop {
			return err
		}
	}
	return nil
}
