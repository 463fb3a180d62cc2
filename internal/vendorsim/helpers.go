package vendorsim

// Helpers shared by vendor endpoints: token-store queries for vendors with
// per-user limits and revocation, and request-body decoding beyond JSON.

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// liveTokens counts the unexpired tokens whose issuing request body satisfies
// match, for vendors that cap how many tokens one user may hold (Qlik Cloud).
func (s *Server) liveTokens(match func(body map[string]any) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now, n := s.clock.Now(), 0
	for _, rec := range s.tokens {
		if now.Before(rec.expiresAt) && match(rec.body) {
			n++
		}
	}
	return n
}

// revoke forgets token if it carries prefix, so a vendor's revocation
// endpoint frees a per-user slot and Validate reports the token unknown.
// Tokens of other vendors are never touched.
func (s *Server) revoke(prefix, token string) {
	if !strings.HasPrefix(token, prefix) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, token)
}

// stringField returns body[key] when it is a string, "" otherwise: vendors validate
// request fields with it without caring whether they came as JSON or form.
func stringField(body map[string]any, key string) string {
	v, _ := body[key].(string)
	return v
}

// isFormBody reports whether r declares a form-encoded body.
func isFormBody(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
}

// decodeForm parses an application/x-www-form-urlencoded body into the same
// shape decodeObject gives JSON: one string per field, or a list of strings
// when a field repeats.
func decodeForm(raw []byte) (map[string]any, error) {
	values, err := url.ParseQuery(string(raw))
	if err != nil {
		return nil, errors.New("decode form body: malformed encoding")
	}
	body := make(map[string]any, len(values))
	for k, vs := range values {
		if len(vs) == 1 {
			body[k] = vs[0]
			continue
		}
		list := make([]any, len(vs))
		for i, v := range vs {
			list[i] = v
		}
		body[k] = list
	}
	return body, nil
}
