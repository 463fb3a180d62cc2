// Package provider defines what the controller needs from a vendor: one call
// that turns a request into a token, and the Secrets it reads. Each vendor
// lives in its own package below this one and is registered explicitly in
// internal/provider/registry, so adding a vendor never touches the controller.
package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// Provider issues embed tokens for one vendor. Implementations are safe for
// concurrent use and keep no per-request state; everything a call needs is
// in the Request. A vendor may cache what all calls of one provider share
// (Power BI's access tokens, Superset's login, the http auth step's token),
// keyed so that another provider or a rotated credential never hits it and
// the cache never changes a call's result.
type Provider interface {
	// Issue asks the vendor (or signs locally) for a new token. Errors must
	// never contain the token or a credential; wrap them with Permanent or
	// Transient so the controller can report and schedule retries.
	Issue(ctx context.Context, req Request) (Token, error)

	// SecretRefs lists every Secret key the vendor reads for config, the
	// one answer the controller uses to check a provider's credentials,
	// restrict them to the namespaces it may read and notice their
	// rotation. SecretRefsIn lists the references a vendor block declares.
	SecretRefs(config *v1alpha1.EmbedProviderSpec) []v1alpha1.SecretKeySelector
}

// Request is everything one Issue call may use.
type Request struct {
	// Config is the provider's spec; the vendor reads its own block.
	Config *v1alpha1.EmbedProviderSpec
	// Params is the request's vendor parameters; the vendor reads its own block.
	Params *v1alpha1.VendorParams
	// Lifetime is the requested token lifetime.
	Lifetime time.Duration
	// Credentials reads the Secret keys the provider references, already
	// restricted to the namespaces the provider may read.
	Credentials CredentialReader
	// HTTPClient is built for this provider: its timeout, CA bundle and
	// redirect policy. Vendors must use it for every call.
	HTTPClient *http.Client
	// Now is the time the call is made, from the controller's clock.
	Now time.Time
	// ProviderNamespace is the namespace of the provider object, "" for a
	// ClusterEmbedProvider. A vendor's cache charges what it keeps for the
	// provider to this namespace, so one namespace's entries cannot crowd
	// out another's.
	ProviderNamespace string
}

// CredentialReader returns the credentials a provider names: the bytes of
// one Secret key, or a token of one ServiceAccount for a client assertion.
// It is an interface so the controller can scope both to the namespaces the
// provider may use and tests can use maps.
type CredentialReader interface {
	Read(ctx context.Context, ref v1alpha1.SecretKeySelector) ([]byte, error)
	// ServiceAccountToken returns a short-lived token of the ServiceAccount
	// ref for audience, signed by the cluster's service-account issuer, to
	// send as a federated client assertion. The same namespace rule as Read
	// applies to ref. The token is a credential, as a Secret's value is.
	ServiceAccountToken(ctx context.Context, ref v1alpha1.ServiceAccountReference, audience string) (string, error)
}

// Token is an issued token and its validity window.
type Token struct {
	// Value is the token itself; it goes to the Secret and nowhere else.
	Value string
	// Type is the vendor's token type, e.g. "Bearer"; may be empty.
	Type string
	// IssuedAt is when the token became valid.
	IssuedAt time.Time
	// ExpiresAt is when the token stops being valid.
	ExpiresAt time.Time
	// VendorExpiresAt is set by the controller, never by a vendor, when it
	// records an ExpiresAt earlier than the one the vendor stated (the
	// provider's maxLifetime, or an expiry too far away to trust): it is
	// the vendor's, kept so the request can say why it renews early.
	VendorExpiresAt time.Time
}

// MaxTokenBytes bounds a token read from a vendor's answer, an embed token
// or an access token a vendor caches, so a vendor cannot make the manager
// hold megabytes per token. Real tokens are far smaller: JWTs with many
// claims and Power BI embed tokens run to a few kilobytes, and most servers
// refuse request headers, where access tokens travel, beyond 8 to 16 KiB.
const MaxTokenBytes = 64 << 10

// CheckTokenSize refuses a token longer than MaxTokenBytes with a permanent
// InvalidResponse error: the same vendor answer would be as large again.
// what names the token in the message, which states only its size.
func CheckTokenSize(what, token string) error {
	if len(token) <= MaxTokenBytes {
		return nil
	}
	return Permanent(v1alpha1.ReasonInvalidResponse, "%s is %d bytes, more than the %d bytes the operator accepts for a token",
		what, len(token), MaxTokenBytes)
}

// Digest is a short SHA-256 prefix of the token, safe to show in status so a
// change is visible without revealing the token.
func (t Token) Digest() string {
	return Digest(t.Value)
}

// Digest returns the first 12 hex digits of the SHA-256 of value.
func Digest(value string) string {
	sum := sha256.Sum256([]byte(value))
	return hex.EncodeToString(sum[:6])
}

// String keeps the token out of logs and fmt output by accident.
func (t Token) String() string {
	return "Token{digest:" + t.Digest() + ", expiresAt:" + t.ExpiresAt.UTC().Format(time.RFC3339) + "}"
}

// ConfigValidator is implemented by vendors that can check a provider's
// configuration beyond what the CRD schema can (e.g. that a signing key
// parses), so a provider's Ready condition catches it before any request.
type ConfigValidator interface {
	Validate(ctx context.Context, config *v1alpha1.EmbedProviderSpec, creds CredentialReader) error
}

// Revoker is implemented by vendors that can revoke a token, so a replaced
// token stops counting against per-user limits (Qlik Cloud). The controller
// calls it after the replacement is stored, and only logs a failure.
type Revoker interface {
	Revoke(ctx context.Context, req Request, token string) error
}

// SingleUser is implemented by vendors whose tokens can be redeemed once
// (signed embed URLs, JWTs with a one-time jti): such a token cannot be
// stored in a Secret for every pod to reuse, nor shared between callers.
// The token endpoint serves them one vendor call per call, whatever a
// template's cache says, and an EmbedTokenRequest for them is refused.
type SingleUser interface {
	SingleUse(config *v1alpha1.EmbedProviderSpec) bool
}

// IsSingleUse reports whether impl's tokens for config are single-use.
func IsSingleUse(impl Provider, config *v1alpha1.EmbedProviderSpec) bool {
	s, ok := impl.(SingleUser)
	return ok && s.SingleUse(config)
}
