package jwtprovider

// BuildClaims is the pure claims merge, exported to the external test
// package for fuzzing.
var BuildClaims = buildClaims

// KeyParses is how many signing keys p has parsed, so tests can tell a
// cached key from a parsed one.
func (p *Provider) KeyParses() int64 { return p.keys.parses.Load() }

// MaxRSABits is the largest RSA key accepted.
const MaxRSABits = maxRSABits
