package provider

// CredentialForms exposes the forms Redact removes, so tests can tell a
// message that holds none apart from one it must change.
var CredentialForms = credentialForms

// GoJSONEscape and GoJSONEscapeNoHTML expose the JSON styles that must match
// encoding/json byte for byte.
var (
	GoJSONEscape       = goJSON.escape
	GoJSONEscapeNoHTML = goJSONNoHTML.escape
)
