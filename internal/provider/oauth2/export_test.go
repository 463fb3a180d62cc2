package oauth2

// ParseToken is the pure response parser, exported to the external test
// package for fuzzing.
var ParseToken = parseToken
