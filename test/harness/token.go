package harness

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// Token is what a request's Secret holds, read the way an application reads
// it: data.token and data.expiresAt. It is the one reading of the Secret's
// layout for tests and tools.
type Token struct {
	// Value is the token, "" when the Secret holds none.
	Value string
	// ExpiresAt is data.expiresAt; zero when missing or unreadable.
	ExpiresAt time.Time
}

// Digest is the token's digest, as status.tokenDigest shows it.
func (t Token) Digest() string { return provider.Digest(t.Value) }

// TokenOf reads the token in s.
func TokenOf(s *corev1.Secret) Token {
	t := Token{Value: string(s.Data[v1alpha1.SecretTokenKey])}
	if at, err := time.Parse(time.RFC3339, string(s.Data[v1alpha1.SecretExpiresAtKey])); err == nil {
		t.ExpiresAt = at
	}
	return t
}

// GetToken reads the token in the Secret namespace/name.
func GetToken(ctx context.Context, c client.Reader, namespace, name string) (Token, error) {
	s := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, s); err != nil {
		return Token{}, fmt.Errorf("reading Secret %s/%s: %w", namespace, name, err)
	}
	return TokenOf(s), nil
}
