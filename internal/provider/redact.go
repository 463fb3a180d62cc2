package provider

import (
	"errors"
	"net/url"
	"strings"
	"unicode/utf8"
)

// redactMarkers replace a credential found in a message. Redact uses the
// first whose first and last bytes occur in no form of the call's
// credentials and which holds no form itself: then no form can span a
// marker, so replacing can never join text into a credential again.
// The symbol-only ones serve credentials that are part of the word.
var redactMarkers = []string{"[redacted]", "<redacted>", "{redacted}", "(redacted)", "#redacted#", "|redacted|",
	"[***]", "<***>", "{***}", "(***)", "#***#", "|***|"}

// maxRedactLen bounds the message Redact scans: longer ones are cut, with
// an ellipsis, first. Conditions hold at most 32768 bytes anyway.
const maxRedactLen = 64 << 10

// minCutPrefix is the shortest beginning of a credential form that is
// redacted where a message was cut ("…"): Detail cuts vendor text at a
// fixed length, which may leave only part of an echoed credential.
const minCutPrefix = 4

// minEchoPrefix is the shortest beginning of a credential form that is
// redacted wherever it appears: a vendor may quote a request cut at a fixed
// length without marking the cut, and go on after it (`..."}`), and whoever
// writes the request can move the cut to any byte of the credential. Forms
// of credentials shorter than this are redacted only whole, as shorter
// beginnings would match ordinary words.
const minEchoPrefix = 8

// wholeOnly starts a value passed to Redact that is redacted only whole: a
// Basic credential "id:secret" begins with the client id, which is no
// secret, and every beginning of the secret in it is redacted as the
// secret's own (the base64 cores of secretForms).
const wholeOnly = "\x00embedtokens.io/whole-only\x00"

// ellipsis marks where Detail (or Redact) cut a message.
const ellipsis = "…"

// Redact removes every credential in secrets, in every form a vendor may
// echo it (see credentialForms: raw, JSON-, HTML- and URL-escaped, base64
// and Basic credentials, and every beginning of minEchoPrefix bytes or more
// of a form wherever it appears, also when a vendor cut the rest off), from
// err's message: the message of its classified Error, changed in place, and
// the text of that Error's cause. If err's text still holds a form (an
// unclassified error, or one wrapping an Error), it returns a new error
// with the redacted text instead. Blank secrets are ignored: they are the
// absence of a credential, and vendors trim what they send. The work is
// linear in the message's length (capped at maxRedactLen) times the number
// of forms.
func Redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	r := newRedactor(credentialForms(secrets, min(len(err.Error()), maxRedactLen)))
	var e *Error
	if errors.As(err, &e) {
		e.Message = r.redact(e.Message)
		if e.Err != nil {
			if text := e.Err.Error(); r.redact(text) != text {
				e.Err = errors.New(r.redact(text))
			}
		}
	}
	text := err.Error()
	clean := r.redact(text)
	switch {
	case clean == text:
		return err
	case e != nil:
		return &Error{Reason: e.Reason, Message: clean, Permanent: e.Permanent, RetryAfter: e.RetryAfter}
	}
	return errors.New(clean)
}

// BasicCredentials are the strings a client base64-encodes for HTTP Basic
// authentication with id and secret: "id:secret", and both parts
// form-encoded first as RFC 6749 section 2.3.1 asks. Vendors that send
// them pass them to Redact with the secret, so an echoed Authorization
// header is removed whatever the secret's length. They are marked to be
// redacted only whole (see wholeOnly); the secret passed beside them covers
// their beginnings.
func BasicCredentials(id, secret string) []string {
	return []string{wholeOnly + id + ":" + secret, wholeOnly + url.QueryEscape(id) + ":" + url.QueryEscape(secret)}
}

// redactor redacts the messages of one error with one call's credentials,
// whose forms are computed once for the longest of them.
type redactor struct {
	forms  []form
	marker string
}

func newRedactor(forms []form) redactor {
	return redactor{forms: forms, marker: chooseMarker(forms)}
}

// redact returns msg with every form of every secret, every form's
// beginning of minEchoPrefix bytes or more (see form), and every form's
// beginning of minCutPrefix bytes or more that ends where the text was cut,
// replaced by a marker.
func (r redactor) redact(msg string) string {
	if len(r.forms) == 0 {
		return msg
	}
	if len(msg) > maxRedactLen {
		msg = cutAtRune(msg, maxRedactLen) + ellipsis
	}
	// With a safe marker one pass suffices; without one (credentials that
	// hold every delimiter) occurrences are removed until none is left.
	for range 4 {
		spans := findForms(msg, r.forms)
		if spans == nil {
			return msg
		}
		msg = replaceSpans(msg, spans, r.marker)
		if r.marker != "" {
			return msg
		}
	}
	if findForms(msg, r.forms) != nil {
		return ""
	}
	return msg
}

// chooseMarker returns the first marker that no form can span, and that
// holds no form's shortest redacted beginning, or "".
func chooseMarker(forms []form) string {
	for _, m := range redactMarkers {
		ok := true
		for _, f := range forms {
			if strings.IndexByte(f.text, m[0]) >= 0 || strings.IndexByte(f.text, m[len(m)-1]) >= 0 || strings.Contains(m, f.shortest()) {
				ok = false
				break
			}
		}
		if ok {
			return m
		}
	}
	return ""
}

// findForms finds every occurrence of a form, or of a beginning of it that
// form.prefix allows, in msg, and every form's beginning that ends just
// before an ellipsis, as a difference array: the running sum of spans is
// positive exactly on the bytes found. It returns nil when nothing is found.
func findForms(msg string, forms []form) []int32 {
	var spans []int32
	mark := func(from, to int) {
		if spans == nil {
			spans = make([]int32, len(msg)+1)
		}
		spans[from]++
		spans[to]--
	}
	cut := strings.Contains(msg, ellipsis)
	for _, f := range forms {
		// Only a form whose shortest redacted beginning is present can be
		// matched; the fast search spares the full scan for all the others.
		if strings.Contains(msg, f.shortest()) || cut && len(f.text) > minCutPrefix && strings.Contains(msg, f.text[:minCutPrefix]) {
			matchForm(msg, f, mark)
		}
	}
	return spans
}

// matchForm reports every occurrence of f in text, overlapping ones
// included, f's longest beginning (at least f.prefix bytes) that ends at
// each byte, and its longest beginning (at least minCutPrefix bytes) that
// ends before each ellipsis, in one Knuth-Morris-Pratt pass: linear in
// len(text)+len(f.text), however repetitive both are. The state after each
// byte is the longest beginning of f ending there, so every occurrence of a
// beginning lies inside a span reported where it ends.
func matchForm(text string, f form, mark func(from, to int)) {
	pat := f.text
	m := len(pat)
	fail := make([]int, m)
	for i, k := 1, 0; i < m; i++ {
		for k > 0 && pat[i] != pat[k] {
			k = fail[k-1]
		}
		if pat[i] == pat[k] {
			k++
		}
		fail[i] = k
	}
	q := 0
	for i := 0; i < len(text); i++ {
		for q > 0 && (q == m || text[i] != pat[q]) {
			q = fail[q-1]
		}
		if text[i] == pat[q] {
			q++
		}
		switch {
		case q == m, q >= f.prefix:
			mark(i+1-q, i+1)
		case q >= minCutPrefix && strings.HasPrefix(text[i+1:], ellipsis):
			mark(i+1-q, i+1)
		}
	}
}

// replaceSpans replaces each run of bytes found by findForms by marker.
func replaceSpans(msg string, spans []int32, marker string) string {
	var b strings.Builder
	b.Grow(len(msg))
	depth, inside := int32(0), false
	for i := 0; i < len(msg); i++ {
		depth += spans[i]
		switch {
		case depth == 0:
			b.WriteByte(msg[i])
		case !inside:
			b.WriteString(marker)
		}
		inside = depth > 0
	}
	return b.String()
}

// cutAtRune returns s cut to at most n bytes, at a rune boundary.
func cutAtRune(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
