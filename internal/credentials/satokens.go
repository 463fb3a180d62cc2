package credentials

import (
	"context"
	"fmt"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// ServiceAccountTokenSeconds is the lifetime asked of the TokenRequest API
// for a client assertion: the least the API server allows. An assertion is
// only presented once, when the vendor issues an access token, so a longer
// one would only widen what a leak of it allows.
const ServiceAccountTokenSeconds = 600

// serviceAccountTokenReuse is the part of a token's life during which it is
// reused for further assertions; the rest is left for the vendor to check
// it before it expires, clock skew included.
const serviceAccountTokenReuse = 0.8

// maxCachedServiceAccountTokens bounds the ServiceAccount token cache; past
// it the cache starts over, which costs one TokenRequest per provider.
const maxCachedServiceAccountTokens = 4096

// maxServiceAccountTokenBytes bounds a token the API server answers, as
// provider.MaxTokenBytes bounds a vendor's.
const maxServiceAccountTokenBytes = provider.MaxTokenBytes

// ServiceAccountTokens requests ServiceAccount tokens through the
// TokenRequest API (create on serviceaccounts/token) and keeps each until
// serviceAccountTokenReuse of its life has passed. An entry belongs to one
// provider object (UID) at one generation, one ServiceAccount and one
// audience, so another provider, or a changed spec, never gets a token
// requested for this one.
type ServiceAccountTokens struct {
	client corev1client.ServiceAccountsGetter
	clock  clock.PassiveClock

	mu      sync.Mutex
	entries map[serviceAccountTokenKey]serviceAccountToken
}

// serviceAccountTokenKey is what a cached token was requested for.
type serviceAccountTokenKey struct {
	uid        types.UID
	generation int64
	namespace  string
	name       string
	audience   string
}

// serviceAccountToken is a cached token and when to stop reusing it.
type serviceAccountToken struct {
	value      string
	reuseUntil time.Time
}

// NewServiceAccountTokens requests tokens through client, the manager's
// TokenRequest client, and ages them by clk. One is built per manager and
// shared by every Reader of ForProvider; a nil client makes every
// ServiceAccountToken fail with ProviderInvalid.
func NewServiceAccountTokens(client corev1client.ServiceAccountsGetter, clk clock.PassiveClock) *ServiceAccountTokens {
	return &ServiceAccountTokens{client: client, clock: clk, entries: map[serviceAccountTokenKey]serviceAccountToken{}}
}

// token returns a token of the ServiceAccount key names for key's
// audience: the cached one while it is fresh, else a new one.
func (s *ServiceAccountTokens) token(ctx context.Context, key serviceAccountTokenKey) (string, error) {
	if s == nil || s.client == nil {
		return "", provider.Permanent(v1alpha1.ReasonProviderInvalid,
			"this operator was built without the TokenRequest client that clientAssertion needs")
	}
	now := s.clock.Now()
	s.mu.Lock()
	e, ok := s.entries[key]
	s.mu.Unlock()
	if ok && now.Before(e.reuseUntil) {
		return e.value, nil
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:         []string{key.audience},
		ExpirationSeconds: ptr.To[int64](ServiceAccountTokenSeconds),
	}}
	out, err := s.client.ServiceAccounts(key.namespace).CreateToken(ctx, key.name, req, metav1.CreateOptions{})
	if err != nil {
		return "", tokenRequestError(key, err)
	}
	value := out.Status.Token
	switch {
	case value == "":
		return "", provider.Transient(v1alpha1.ReasonCredentialsNotFound, "the TokenRequest for ServiceAccount %s/%s answered no token", key.namespace, key.name)
	case len(value) > maxServiceAccountTokenBytes:
		return "", provider.Permanent(v1alpha1.ReasonInvalidCredentials, "the TokenRequest for ServiceAccount %s/%s answered %d bytes, more than the %d accepted",
			key.namespace, key.name, len(value), maxServiceAccountTokenBytes)
	}
	life := out.Status.ExpirationTimestamp.Sub(now)
	if life > 0 {
		s.put(key, serviceAccountToken{value: value, reuseUntil: now.Add(time.Duration(float64(life) * serviceAccountTokenReuse))})
	}
	return value, nil
}

// put caches e for key, dropping every other token of the same provider
// (an older generation's), and starting over when the cache is full.
func (s *ServiceAccountTokens) put(key serviceAccountTokenKey, e serviceAccountToken) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.entries {
		if k.uid == key.uid && k.generation != key.generation {
			delete(s.entries, k)
		}
	}
	if _, ok := s.entries[key]; !ok && len(s.entries) >= maxCachedServiceAccountTokens {
		clear(s.entries)
	}
	s.entries[key] = e
}

// Forget drops the tokens cached for the provider objects uids:
// issuance.Issuer calls it when a provider is gone or was replaced, so no
// token outlives the provider it was requested for.
func (s *ServiceAccountTokens) Forget(uids ...types.UID) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.entries {
		for _, uid := range uids {
			if k.uid == uid {
				delete(s.entries, k)
			}
		}
	}
}

// tokenRequestError classifies a failed TokenRequest. A missing
// ServiceAccount can be created later, so it is transient, as a missing
// Secret is; a refusal (RBAC, or the admission policy manager-guardrails
// for a ServiceAccount not opted in) needs a person.
func tokenRequestError(key serviceAccountTokenKey, err error) error {
	what := fmt.Sprintf("ServiceAccount %s/%s", key.namespace, key.name)
	switch {
	case apierrors.IsNotFound(err):
		return provider.Transient(v1alpha1.ReasonCredentialsNotFound, "%s not found", what)
	case apierrors.IsForbidden(err):
		return provider.Permanent(v1alpha1.ReasonInvalidCredentials,
			"the operator may not request tokens for %s: grant its manager the verb %s on it (the admission policy manager-guardrails refuses the others): %s",
			what, v1alpha1.FederatedIdentityVerb, apierrors.ReasonForError(err))
	}
	return provider.Transient(v1alpha1.ReasonCredentialsNotFound, "requesting a token for %s: %v", what, apierrors.ReasonForError(err))
}
