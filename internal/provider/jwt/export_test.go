package jwtprovider

// BuildClaims is the pure claims merge, exported to the external test
// package for fuzzing.
var BuildClaims = buildClaims
