package provider

import (
	"context"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// ConfigWarner is implemented by vendors that can tell a configuration that
// is valid but probably not what was meant (an HMAC key whose Secret value
// ends in a newline): the provider stays Ready and its Ready message carries
// the warnings, so the mistake shows before a vendor rejects the tokens.
// Warnings name Secrets and keys, never their contents. The controller asks
// only once Validate (when implemented) has passed.
type ConfigWarner interface {
	ConfigWarnings(ctx context.Context, config *v1alpha1.EmbedProviderSpec, creds CredentialReader) []string
}
