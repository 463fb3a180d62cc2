package provider

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// minCoreLen is the shortest base64 core (see base64Cores) that is redacted:
// shorter ones would match ordinary words.
const minCoreLen = 8

// form is one spelling of a credential, as credentialForms lists them.
type form struct {
	// text is the spelling.
	text string
	// prefix is the length of its shortest beginning redacted wherever it
	// appears: minEchoPrefix, or len(text) when only the whole form is.
	prefix int
}

// shortest is the form's shortest beginning that is redacted anywhere.
func (f form) shortest() string { return f.text[:f.prefix] }

// credentialForms lists the forms in which a vendor may echo one of secrets
// into a message of msgLen bytes; see secretForms. A secret longer than the
// message is cut first, which keeps every beginning a message can hold. The
// forms of a secret of minEchoPrefix bytes or more are redacted from their
// beginning of minEchoPrefix bytes on; those of a shorter one, or of one
// marked wholeOnly, only whole. A form that begins with another form, and
// adds only padding or white space, which reveal nothing, is dropped:
// replacing the shorter one leaves only that.
func credentialForms(secrets []string, msgLen int) []form {
	seen := map[string]int{}
	var all []form
	for _, s := range secrets {
		s, whole := strings.CutPrefix(s, wholeOnly)
		if strings.TrimSpace(s) == "" {
			continue
		}
		whole = whole || len(s) < minEchoPrefix
		for _, f := range secretForms(cutAtRune(s, msgLen+3)) {
			if f == "" {
				continue
			}
			prefix := len(f)
			if !whole {
				prefix = min(prefix, minEchoPrefix)
			}
			if i, ok := seen[f]; ok {
				all[i].prefix = min(all[i].prefix, prefix)
				continue
			}
			seen[f] = len(all)
			all = append(all, form{text: f, prefix: prefix})
		}
	}
	slices.SortStableFunc(all, func(a, b form) int { return len(a.text) - len(b.text) })
	var kept []form
	for _, f := range all {
		if !slices.ContainsFunc(kept, func(k form) bool {
			rest, ok := strings.CutPrefix(f.text, k.text)
			return ok && k.prefix <= f.prefix && strings.Trim(rest, "= \t\r\n") == ""
		}) {
			kept = append(kept, f)
		}
	}
	return kept
}

// secretForms is s as text, URL-encoded (Go's query and path escaping,
// RFC 3986 and JavaScript's encodeURIComponent, upper- and lower-case hex)
// and base64 (standard and URL alphabets, padded or not, and the cores found
// inside any longer base64 text, such as Basic credentials); each of these
// also JSON-escaped (jsonForms) and HTML-escaped (htmlForms); s JSON-escaped
// by Go and then JSON- or HTML-escaped again (a JSON body quoted in an error
// page); and s and its HTML forms with control characters as spaces, as
// Detail shows them.
func secretForms(s string) []string {
	texts := []string{s}
	for _, enc := range []func(string) string{url.QueryEscape, url.PathEscape, rfc3986Escape, uriComponentEscape} {
		e := enc(s)
		texts = append(texts, e, lowerHex(e))
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		texts = append(texts, enc.EncodeToString([]byte(s)))
	}
	texts = append(texts, base64Cores(s)...)
	texts = append(texts, base64Cores(url.QueryEscape(s))...)

	var out []string
	for _, t := range texts {
		out = append(out, t)
		out = append(out, jsonForms(t)...)
		out = append(out, htmlForms(t)...)
	}
	for _, j := range []string{goJSON.escape(s), goJSONNoHTML.escape(s)} {
		out = append(out, jsonForms(j)...)
		out = append(out, htmlForms(j)...)
	}
	for _, f := range append(htmlForms(s), s) {
		out = append(out, asDetail(f))
	}
	return out
}

// base64Cores are the parts of a base64 encoding that depend only on s when
// s sits at any offset inside longer data (Basic credentials "id:secret", a
// token embedding it): one per alignment and alphabet, without the
// characters that mix in neighbouring bytes.
func base64Cores(s string) []string {
	var out []string
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		for align := range 3 {
			data := make([]byte, align+len(s))
			copy(data[align:], s)
			e := enc.EncodeToString(data)
			from := []int{0, 2, 3}[align] // characters holding bits of the bytes before s
			to := len(e)
			if len(data)%3 != 0 {
				to-- // the last character holds bits of the bytes after s
			}
			if to-from >= minCoreLen {
				out = append(out, e[from:to])
			}
		}
	}
	return out
}

// asDetail maps control characters and invalid UTF-8 to spaces, as Detail does.
func asDetail(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
}

// rfc3986Escape percent-encodes everything but RFC 3986's unreserved
// characters (space as %20), as most non-Go clients do.
func rfc3986Escape(s string) string {
	return percentEscape(s, func(c byte) bool { return strings.IndexByte("-._~", c) >= 0 })
}

// uriComponentEscape is JavaScript's encodeURIComponent.
func uriComponentEscape(s string) string {
	return percentEscape(s, func(c byte) bool { return strings.IndexByte("-._~!*'()", c) >= 0 })
}

func percentEscape(s string, keep func(byte) bool) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || keep(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// lowerHex lower-cases the hex digits of percent escapes.
func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			for j := i + 1; j <= i+2; j++ {
				if 'A' <= b[j] && b[j] <= 'F' {
					b[j] += 'a' - 'A'
				}
			}
		}
	}
	return string(b)
}

// htmlForms are s with &, <, > and quotes as HTML entities, in the
// spellings encoders use: &#34; (Go), &quot; or &#x22; for ", &#39; (Go),
// &#039; (PHP), &#x27; (Python) or &apos; for ', or quotes left alone; and
// NUL kept or as U+FFFD (Go's text/template). It returns nothing when s has
// nothing to escape.
func htmlForms(s string) []string {
	if !strings.ContainsAny(s, "&<>\"'\x00") {
		return nil
	}
	quotes := []string{"&#34;", "&quot;", "&#x22;", `"`}
	if !strings.Contains(s, `"`) {
		quotes = quotes[:1]
	}
	apos := []string{"&#39;", "&#039;", "&#x27;", "&apos;", "'"}
	if !strings.Contains(s, "'") {
		apos = apos[:1]
	}
	nul := []string{"\x00", "\uFFFD"}
	if !strings.Contains(s, "\x00") {
		nul = nul[:1]
	}
	var out []string
	for _, q := range quotes {
		for _, a := range apos {
			for _, n := range nul {
				out = append(out, htmlEscape(s, q, a, n))
			}
		}
	}
	return out
}

// htmlEscape writes s with &, < and > as entities and ", ' and NUL as given.
func htmlEscape(s, quote, apos, nul string) string {
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString(quote)
		case '\'':
			b.WriteString(apos)
		case 0:
			b.WriteString(nul)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// jsonStyle is one way of escaping a string inside JSON quotes. Encoders
// agree on \" (but .NET), \\, \n, \r and \t, and differ on the rest.
type jsonStyle uint16

const (
	jsonHTML        jsonStyle = 1 << iota // <, > and & as \u003c... (Go's default)
	jsonDotNet                            // also ', +, ` and " as \u0027... (.NET)
	jsonSlash                             // / as \/ (PHP, some Java)
	jsonASCII                             // non-ASCII as \uXXXX, surrogate pairs beyond the BMP (Python, PHP)
	jsonUpperHex                          // \u003C rather than \u003c (Java, .NET)
	jsonLongBF                            // \b and \f as \u0008 and \u000c (Go before 1.22)
	jsonRaw2028                           // U+2028 and U+2029 left alone (all but Go)
	jsonKeepInvalid                       // invalid UTF-8 left alone rather than \ufffd (all but Go)
	jsonStyles                            // the number of style combinations
)

// goJSON and goJSONNoHTML are encoding/json with and without HTML escaping.
const (
	goJSON       = jsonHTML
	goJSONNoHTML = jsonStyle(0)
)

// jsonForms are s escaped inside a JSON string in every style that differs
// for it: only the styles whose characters s holds are combined.
func jsonForms(s string) []string {
	var relevant jsonStyle
	for _, c := range []struct {
		style jsonStyle
		chars string
	}{{jsonHTML, "<>&"}, {jsonDotNet, "<>&'+`\""}, {jsonSlash, "/"}, {jsonLongBF, "\b\f"}, {jsonRaw2028, "\u2028\u2029"}} {
		if strings.ContainsAny(s, c.chars) {
			relevant |= c.style
		}
	}
	ascii := strings.IndexFunc(s, func(r rune) bool { return r >= utf8.RuneSelf }) >= 0
	if ascii {
		relevant |= jsonASCII
	}
	if !utf8.ValidString(s) {
		relevant |= jsonKeepInvalid
	}
	if ascii || relevant&(jsonHTML|jsonDotNet) != 0 || strings.IndexFunc(s, func(r rune) bool { return r < 0x20 }) >= 0 {
		relevant |= jsonUpperHex
	}
	var out []string
	for st := range jsonStyles {
		if st&^relevant == 0 {
			out = append(out, st.escape(s))
		}
	}
	return out
}

// escape writes s as the inside of a JSON string in this style.
func (st jsonStyle) escape(s string) string {
	hex := "0123456789abcdef"
	if st&jsonUpperHex != 0 {
		hex = "0123456789ABCDEF"
	}
	var b strings.Builder
	u := func(r rune) {
		b.WriteString(`\u`)
		for shift := 12; shift >= 0; shift -= 4 {
			b.WriteByte(hex[r>>shift&15])
		}
	}
	dotNet := st&jsonDotNet != 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1 && st&jsonKeepInvalid != 0:
			b.WriteByte(s[i])
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\ufffd`)
		case r == '"' && !dotNet:
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b' && st&jsonLongBF == 0:
			b.WriteString(`\b`)
		case r == '\f' && st&jsonLongBF == 0:
			b.WriteString(`\f`)
		case r < 0x20, dotNet && strings.ContainsRune("<>&'+`\"", r), st&jsonHTML != 0 && strings.ContainsRune("<>&", r):
			u(r)
		case r == '/' && st&jsonSlash != 0:
			b.WriteString(`\/`)
		case r >= utf8.RuneSelf && (st&jsonASCII != 0 || dotNet):
			if r > 0xffff {
				r -= 0x10000
				u(0xd800 + r>>10)
				u(0xdc00 + r&0x3ff)
			} else {
				u(r)
			}
		case (r == '\u2028' || r == '\u2029') && st&jsonRaw2028 == 0:
			u(r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
