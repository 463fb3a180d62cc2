package qlikcloud

// The pure parsers, exported to the external test package for fuzzing.
var (
	ParseToken  = parseToken
	ErrorDetail = errorDetail
)
