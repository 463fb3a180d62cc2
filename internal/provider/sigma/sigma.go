// Package sigma signs Sigma Computing embed JWTs locally with an embed
// client's secret: no HTTP call is made. Each token carries a new jti,
// which Sigma accepts once, so the tokens are single-use.
//
// The token follows Sigma's JWT claims reference: header alg HS256, typ JWT
// and kid the client ID; claims sub (the user's email), jti, iat, exp
// (at most 30 days after iat), iss (the client ID) and, when set,
// account_type, teams, user_attributes, eval_connection_id, first_name and
// last_name. The browser opens the workbook's URL with ?:jwt=<token>&:embed=true.
package sigma

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// maxSecretBytes bounds the embed secret read from a Secret.
const maxSecretBytes = 4 << 10

// Provider is the Sigma implementation of provider.Provider,
// provider.ConfigValidator and provider.SingleUser. It keeps no state.
type Provider struct {
	// jti returns a new token ID for each token; tests fix it.
	jti func() string
}

// New returns the Sigma provider.
func New() *Provider { return &Provider{jti: newJTI} }

// SecretRefs implements provider.Provider: the references of spec.sigma.
func (p *Provider) SecretRefs(config *v1alpha1.EmbedProviderSpec) []v1alpha1.SecretKeySelector {
	return provider.SecretRefsIn(config.Sigma)
}

// SingleUse implements provider.SingleUser: Sigma accepts each jti once.
func (p *Provider) SingleUse(*v1alpha1.EmbedProviderSpec) bool { return true }

// Validate implements provider.ConfigValidator: the embed secret is
// readable and not blank.
func (p *Provider) Validate(ctx context.Context, config *v1alpha1.EmbedProviderSpec, creds provider.CredentialReader) error {
	if config.Sigma == nil {
		return provider.Permanent(v1alpha1.ReasonVendorMismatch, "sigma provider needs spec.sigma")
	}
	_, err := secret(ctx, config.Sigma, creds)
	return err
}

// Issue implements provider.Provider: the token is the signed JWT, valid
// from now less the clock skew allowance (v1alpha1.DefaultJWTClockSkew)
// for the requested lifetime, at most Sigma's 30 days after iat.
func (p *Provider) Issue(ctx context.Context, req provider.Request) (provider.Token, error) {
	cfg, params := req.Config.Sigma, req.Params.Sigma
	if cfg == nil || params == nil {
		return provider.Token{}, provider.Permanent(v1alpha1.ReasonVendorMismatch, "sigma provider needs spec.sigma on both provider and request")
	}
	key, err := secret(ctx, cfg, req.Credentials)
	if err != nil {
		return provider.Token{}, err
	}
	claims, exp := Claims(cfg, params, p.jti(), req.Now, req.Lifetime)
	token := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	token.Header["kid"] = cfg.ClientID
	signed, err := token.SignedString(key)
	if err != nil {
		return provider.Token{}, provider.Permanent(v1alpha1.ReasonInvalidCredentials, "signing with the Sigma embed secret failed")
	}
	if err := provider.CheckTokenSize("the Sigma embed JWT", signed); err != nil {
		return provider.Token{}, err
	}
	return provider.Token{Value: signed, IssuedAt: req.Now, ExpiresAt: exp}, nil
}

// Claims are the JWT claims for params with token ID jti, issued at now for
// lifetime (1h when unset), and the expiry they state: iat is backdated by
// the default clock skew, exp is cut to whole seconds and to 30 days after
// iat.
func Claims(cfg *v1alpha1.SigmaProvider, p *v1alpha1.SigmaParams, jti string, now time.Time, lifetime time.Duration) (jwt.MapClaims, time.Time) {
	if lifetime <= 0 {
		lifetime = v1alpha1.DefaultLifetime
	}
	iat := now.Add(-v1alpha1.DefaultJWTClockSkew).Unix()
	exp := min(now.Add(lifetime).Unix(), iat+v1alpha1.MaxSigmaLifetime)
	claims := jwt.MapClaims{"sub": p.Email, "jti": jti, "iat": iat, "exp": exp, "iss": cfg.ClientID}
	for name, v := range map[string]string{"account_type": p.AccountType, "eval_connection_id": p.EvalConnectionID,
		"first_name": p.FirstName, "last_name": p.LastName} {
		if v != "" {
			claims[name] = v
		}
	}
	if len(p.Teams) > 0 {
		claims["teams"] = p.Teams
	}
	if len(p.UserAttributes) > 0 {
		claims["user_attributes"] = p.UserAttributes
	}
	return claims, time.Unix(exp, 0).UTC()
}

// secret reads the embed secret, without surrounding whitespace (Sigma's
// secrets have none; a Secret made from a file often ends in a newline).
func secret(ctx context.Context, cfg *v1alpha1.SigmaProvider, creds provider.CredentialReader) ([]byte, error) {
	raw, err := creds.Read(ctx, cfg.SecretSecretRef)
	if err != nil {
		return nil, err
	}
	key := bytes.TrimSpace(raw)
	switch {
	case len(key) == 0:
		return nil, provider.Permanent(v1alpha1.ReasonInvalidCredentials, "the Sigma embed secret is empty")
	case len(key) > maxSecretBytes:
		return nil, provider.Permanent(v1alpha1.ReasonInvalidCredentials, "the Sigma embed secret is %d bytes, more than the %d accepted", len(key), maxSecretBytes)
	}
	return key, nil
}

// newJTI returns 128 random bits in hex, so Sigma never sees a jti twice.
func newJTI() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails since Go 1.24
	return hex.EncodeToString(b)
}
