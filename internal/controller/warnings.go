package controller

import (
	"context"
	"errors"
	"strings"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// withWarnings appends what the vendor finds probably wrong in a valid
// configuration (provider.ConfigWarner) to the Ready message, which stays
// True: the configuration works as written, but a person should look. The
// warnings are redacted like errors, in case a vendor ever quotes what it
// read.
func withWarnings(ctx context.Context, message string, impl provider.Provider, spec *v1alpha1.EmbedProviderSpec,
	creds *provider.CredentialRecorder) string {
	warner, ok := impl.(provider.ConfigWarner)
	if !ok {
		return message
	}
	var b strings.Builder
	b.WriteString(message)
	for _, w := range warner.ConfigWarnings(ctx, spec, creds) {
		b.WriteString("; warning: ")
		b.WriteString(creds.Redact(errors.New(w)).Error())
	}
	return b.String()
}
