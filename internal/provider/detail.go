package provider

import (
	"encoding/json"
	"fmt"
	"strings"
)

// detailKeys are the fields vendors use for a human-readable error, most
// specific first: OAuth (error_description), Bold BI (Message,
// StatusMessage), Qrvey and most REST APIs (message), RFC 7807 (detail).
var detailKeys = []string{"error_description", "message", "Message", "StatusMessage", "detail", "error"}

// ErrorDetail pulls a short human message out of a vendor's JSON error body
// for CheckStatus and similar messages. It only returns string fields that
// vendors use for explanations (also error.message when error is an object),
// never the body itself, and returns "" for anything else.
func ErrorDetail(body []byte) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return ""
	}
	for _, key := range detailKeys {
		var msg string
		if json.Unmarshal(fields[key], &msg) == nil && strings.TrimSpace(msg) != "" {
			return Detail(msg)
		}
		var nested struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(fields[key], &nested) == nil && strings.TrimSpace(nested.Message) != "" {
			return Detail(nested.Message)
		}
	}
	return ""
}

// JSONKind names a decoded JSON value's type (null, boolean, string, number,
// list, object) so messages can say what was found without quoting it.
func JSONKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number, float64, int, int64:
		return "number"
	case []any:
		return "list"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
