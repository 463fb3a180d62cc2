package qlikcloud

// ParseToken is the pure parser, exported to the external test package for
// fuzzing.
var ParseToken = parseToken

// ErrorDetail is the vendor text an error message for body quotes, and
// whether it reports the per-user token limit.
func ErrorDetail(body []byte) (detail string, tokenLimit bool) {
	qe, found := firstError(body)
	return errorDetail(qe, found, body), qe.tokenLimit()
}
