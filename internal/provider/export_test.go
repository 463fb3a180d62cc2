package provider

// RedactedBeginnings lists the shortest beginning of each form Redact
// removes, which it removes wherever it appears, so tests can tell a
// message that holds none apart from one it must change.
func RedactedBeginnings(secrets []string, msgLen int) []string {
	var out []string
	for _, f := range credentialForms(secrets, msgLen) {
		out = append(out, f.shortest())
	}
	return out
}

// GoJSONEscape and GoJSONEscapeNoHTML expose the JSON styles that must match
// encoding/json byte for byte.
var (
	GoJSONEscape       = goJSON.escape
	GoJSONEscapeNoHTML = goJSONNoHTML.escape
)
