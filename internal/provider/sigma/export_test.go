package sigma

// NewWithJTI is New with a fixed token ID source, for deterministic tokens.
func NewWithJTI(jti func() string) *Provider { return &Provider{jti: jti} }
