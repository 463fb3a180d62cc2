package provider

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// CredentialRecorder is a CredentialReader that remembers every value read
// through it, so whoever makes a vendor call can redact all of them from
// what the call returns: redaction then does not depend on each vendor
// remembering each credential it read. It is safe for concurrent use.
type CredentialRecorder struct {
	reader CredentialReader
	mu     sync.Mutex
	values []string
}

// RecordCredentials wraps r for one call.
func RecordCredentials(r CredentialReader) *CredentialRecorder {
	return &CredentialRecorder{reader: r}
}

// Read implements CredentialReader, recording the value as read and as
// vendors use it, without surrounding whitespace.
func (c *CredentialRecorder) Read(ctx context.Context, ref v1alpha1.SecretKeySelector) ([]byte, error) {
	v, err := c.reader.Read(ctx, ref)
	if err == nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, s := range []string{string(v), strings.TrimSpace(string(v))} {
			if !slices.Contains(c.values, s) {
				c.values = append(c.values, s)
			}
		}
	}
	return v, err
}

// ServiceAccountToken implements CredentialReader, recording the token.
func (c *CredentialRecorder) ServiceAccountToken(ctx context.Context, ref v1alpha1.ServiceAccountReference, audience string) (string, error) {
	v, err := c.reader.ServiceAccountToken(ctx, ref, audience)
	if err == nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !slices.Contains(c.values, v) {
			c.values = append(c.values, v)
		}
	}
	return v, err
}

// Redact is Redact with every credential read so far, and extra values the
// caller knows to be secret (a token being revoked, say).
func (c *CredentialRecorder) Redact(err error, extra ...string) error {
	if err == nil {
		return nil
	}
	c.mu.Lock()
	secrets := append(slices.Clone(c.values), extra...)
	c.mu.Unlock()
	return Redact(err, secrets...)
}
