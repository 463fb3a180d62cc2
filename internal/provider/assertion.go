package provider

import (
	"cmp"
	"context"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// ClientAssertionType is RFC 7523's client_assertion_type for a JWT that
// authenticates an OAuth 2.0 client in place of a client secret.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// ClientAssertion returns the JWT a vendor sends as client_assertion for a:
// a token of its ServiceAccount for its audience, or
// v1alpha1.DefaultClientAssertionAudience when it names none. Vendors call
// it only when they need a fresh access token, so the TokenRequest is made
// no more often than the vendor's own sign-in.
func ClientAssertion(ctx context.Context, creds CredentialReader, a *v1alpha1.ClientAssertion) (string, error) {
	return creds.ServiceAccountToken(ctx, a.ServiceAccountRef, cmp.Or(a.Audience, v1alpha1.DefaultClientAssertionAudience))
}
