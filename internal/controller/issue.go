package controller

import (
	"context"
	"time"

	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// issue makes the vendor call for etr once admit lets it through p's rate
// limit and call slots. It returns false, having recorded in o why, when the
// call waits or fails; a failure is logged with its classified message,
// which never holds a token or credential.
func (r *EmbedTokenRequestReconciler) issue(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, p *resolvedProvider, o *outcome) (provider.Token, bool) {
	release, admitted := r.admit(ctx, etr, p, o)
	if !admitted {
		return provider.Token{}, false
	}
	log.FromContext(ctx).V(1).Info("Issuing token", "embedTokenRequest", klog.KObj(etr), "vendor", p.vendor, "reason", o.decision.Reason,
		"lifetime", p.lifetime(etr))
	o.vendor = p.vendor
	tok, err := func() (provider.Token, error) {
		defer release()
		return r.ensureToken(ctx, etr, p, o)
	}()
	if err != nil {
		o.fail(err)
		o.failedAt = r.Clock.Now()
		log.FromContext(ctx).Info("Issuing token failed", "embedTokenRequest", klog.KObj(etr), "vendor", p.vendor,
			"reason", o.err.Reason, "message", o.err.Message, "permanent", o.err.Permanent)
		return provider.Token{}, false
	}
	return tok, true
}

// ensureToken asks the vendor for a token within the call's timeout; admit
// has already let the call through the provider's rate limit and call cap.
// Its errors hold no credential the vendor call read.
func (r *EmbedTokenRequestReconciler) ensureToken(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, p *resolvedProvider, o *outcome) (provider.Token, error) {
	httpClient, err := r.httpClient(ctx, p)
	if err != nil {
		return provider.Token{}, err
	}
	callCtx, cancel := context.WithTimeout(ctx, httpClient.Timeout+time.Second)
	defer cancel()
	start := time.Now()
	creds := provider.RecordCredentials(p.creds)
	tok, err := p.impl.Issue(callCtx, provider.Request{
		Config:      p.spec,
		Params:      &etr.Spec.VendorParams,
		Lifetime:    p.lifetime(etr),
		Credentials: creds,
		HTTPClient:  httpClient,
		Now:         r.Clock.Now(),
		// What the vendor caches for the provider is charged to the
		// provider's namespace: see provider.Request.
		ProviderNamespace: p.namespace,
	})
	r.Metrics.ObserveIssue(p.vendor, time.Since(start), err)
	if err != nil {
		// The message goes to the conditions, an Event and the log: every
		// credential the call read is removed from it, in any encoding.
		return provider.Token{}, creds.Redact(err)
	}
	// Every vendor's token is bounded here, whatever its parser checked.
	if err := provider.CheckTokenSize("the vendor's token", tok.Value); err != nil {
		return provider.Token{}, err
	}
	if !tok.ExpiresAt.After(o.now) {
		return provider.Token{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "the vendor issued a token that expires at %s, which is not in the future", tok.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if tok, err = r.limitLifetime(ctx, etr, p, tok); err != nil {
		return provider.Token{}, err
	}
	return r.capExpiry(ctx, etr, tok, p.lifetime(etr), o.now), nil
}

// limitLifetime applies the provider's maxLifetime to a token the vendor
// just issued (see holdToMaxLifetime): a token it refuses is revoked where the
// vendor can revoke, so it does not stay live unused (nor count against a
// per-user limit); one it stores under RenewAtMax is logged.
func (r *EmbedTokenRequestReconciler) limitLifetime(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, p *resolvedProvider,
	tok provider.Token) (provider.Token, error) {
	limited, err := holdToMaxLifetime(tok, r.Clock.Now(), p.name, p.spec.LifetimeCap(), p.spec.LifetimeExceedsMax)
	switch {
	case err != nil:
		r.revoke(ctx, etr, p, tok.Value, "refused")
	case !limited.VendorExpiresAt.IsZero():
		log.FromContext(ctx).Info("Recording the token as expiring at the provider's maxLifetime", "embedTokenRequest", klog.KObj(etr),
			"digest", tok.Digest(), "vendorExpiresAt", tok.ExpiresAt.UTC().Format(time.RFC3339),
			"recordedExpiresAt", limited.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return limited, err
}

// revoke asks the vendor to revoke a token the request no longer uses,
// replaced by a new one or refused, for vendors that support it (the
// vendor's config decides whether to); which says which, for the log. A
// failure is only logged, without the token or any credential the call
// read: the request does not depend on it.
func (r *EmbedTokenRequestReconciler) revoke(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, prov *resolvedProvider, token, which string) {
	revoker, ok := prov.impl.(provider.Revoker)
	if !ok {
		return
	}
	creds := provider.RecordCredentials(prov.creds)
	httpClient, err := r.httpClient(ctx, prov)
	if err == nil {
		err = revoker.Revoke(ctx, provider.Request{Config: prov.spec, Params: &etr.Spec.VendorParams, Credentials: creds,
			HTTPClient: httpClient, Now: r.Clock.Now()}, token)
		err = creds.Redact(err, token)
	}
	if err != nil {
		log.FromContext(ctx).Error(err, "Revoking the "+which+" token failed", "embedTokenRequest", klog.KObj(etr),
			"vendor", prov.vendor, "digest", provider.Digest(token))
	}
}
