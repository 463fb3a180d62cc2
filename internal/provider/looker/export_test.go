package looker

// NewWithNonce is New with a fixed nonce source, for deterministic URLs.
func NewWithNonce(nonce func() string) *Provider { return &Provider{nonce: nonce} }
