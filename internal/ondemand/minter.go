// Package ondemand turns a token endpoint call into a vendor call: it fills
// an EmbedTokenTemplate with the caller's parameters (internal/template) and
// hands the filled request to the one issuance path the EmbedTokenRequest
// reconciler also uses (internal/issuance), so a template can never get
// what a request could not: the same provider resolution, namespace
// admission, requestValidations, maxLifetime cap, fair gates, vendor call
// and redaction.
package ondemand

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/issuance"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/template"
	"github.com/embedtokens/embed-token-operator/internal/tokenendpoint"
)

// Minter implements tokenendpoint.Minter over the Issuer.
type Minter struct {
	// Issuer is the manager's one issuance path.
	Issuer *issuance.Issuer
	// Templates holds compiled templates, shared with the template
	// reconciler.
	Templates *template.Cache
	// Providers maps a vendor to its implementation, to tell single-use
	// vendors apart.
	Providers map[string]provider.Provider
	// APIReader reads a template's Namespace, uncached, when a parameter
	// rule reads namespaceObject.
	APIReader client.Reader
}

var _ tokenendpoint.Minter = (*Minter)(nil)

// call is what Prepare hands Mint.
type call struct {
	provider *issuance.Provider
	call     issuance.Call
}

// Prepare fills tmpl with params and checks the filled request as the
// provider checks a request: no vendor call is made. A parameter refused
// is InvalidParameters (400); a filled request the provider's rules refuse
// is RequestDenied (403).
func (m *Minter) Prepare(ctx context.Context, tmpl *v1alpha1.EmbedTokenTemplate, params map[string]string,
	caller tokenendpoint.Caller) (tokenendpoint.Prepared, error) {
	compiled, err := m.Templates.Get(tmpl)
	if err != nil {
		return tokenendpoint.Prepared{}, &tokenendpoint.Error{Status: http.StatusConflict, Reason: tokenendpoint.ReasonTemplateNotReady,
			Message: fmt.Sprintf("template %s/%s does not compile: %v", tmpl.Namespace, tmpl.Name, err)}
	}
	var ns *corev1.Namespace
	if compiled.UsesNamespace() {
		if ns, err = m.namespace(ctx, tmpl.Namespace); err != nil {
			return tokenendpoint.Prepared{}, err
		}
	}
	filled, err := compiled.Fill(params, template.Caller{Username: caller.Username, Namespace: caller.Namespace,
		ServiceAccount: caller.ServiceAccount, PodName: caller.PodName}, ns)
	if terr, ok := errors.AsType[*template.Error](err); ok {
		return tokenendpoint.Prepared{}, tokenendpoint.InvalidParameters("%s", terr.Message)
	}
	if err != nil {
		return tokenendpoint.Prepared{}, fmt.Errorf("filling template %s/%s: %w", tmpl.Namespace, tmpl.Name, err)
	}
	p, err := m.Issuer.Resolve(ctx, tmpl.Namespace, tmpl.Spec.ProviderRef)
	if err != nil {
		return tokenendpoint.Prepared{}, err
	}
	req := template.ToRequest(tmpl, filled)
	if err := m.Issuer.Check(ctx, p, req); err != nil {
		return tokenendpoint.Prepared{}, err
	}
	requested := v1alpha1.DefaultLifetime
	if tmpl.Spec.Lifetime != nil {
		requested = tmpl.Spec.Lifetime.Duration
	}
	return tokenendpoint.Prepared{
		CredentialsVersion: p.CredentialsVersion(),
		SingleUse:          provider.IsSingleUse(m.Providers[p.Vendor()], p.Spec),
		Payload: call{provider: p, call: issuance.Call{
			Namespace: tmpl.Namespace,
			Key:       "template/" + tmpl.Namespace + "/" + tmpl.Name,
			Object:    klog.KObj(tmpl),
			LogKey:    "embedTokenTemplate",
			Params:    filled,
			Lifetime:  p.Lifetime(requested),
		}},
	}, nil
}

// Mint makes the vendor call Prepare checked, through the gates every
// vendor call passes.
func (m *Minter) Mint(ctx context.Context, prepared tokenendpoint.Prepared) (provider.Token, error) {
	c, ok := prepared.Payload.(call)
	if !ok {
		return provider.Token{}, fmt.Errorf("mint: payload %T was not prepared by this minter", prepared.Payload)
	}
	tok, err := m.Issuer.Call(ctx, c.provider, c.call)
	if throttled, ok := errors.AsType[*issuance.Throttled](err); ok {
		return provider.Token{}, &tokenendpoint.Throttled{RetryAfter: throttled.RetryAfter}
	}
	return tok, err
}

// namespace reads the template's Namespace for its parameter rules.
func (m *Minter) namespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	ns := &corev1.Namespace{}
	if err := m.APIReader.Get(ctx, client.ObjectKey{Name: name}, ns); err != nil {
		return nil, provider.Transient(v1alpha1.ReasonNamespaceNotAllowed, "reading Namespace %s: %v", name, apierrors.ReasonForError(err))
	}
	return ns, nil
}
