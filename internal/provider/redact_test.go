package provider_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"maps"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"testing"
	"text/template"
	"unicode"
	"unicode/utf8"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// echoes are the forms in which a vendor may quote a credential it was
// sent, each built by the encoder that produces it, independently of
// provider's own list: the property tests check Redact against these.
func echoes(id, secret string) map[string]string {
	goJSON := func(s string) string {
		b, _ := json.Marshal(s)
		return string(b[1 : len(b)-1])
	}
	noHTML := func(s string) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		return strings.TrimSuffix(b.String(), "\n")[1 : b.Len()-2]
	}
	b64 := base64.StdEncoding.EncodeToString
	asDetail := func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}
	return map[string]string{
		"raw":                        secret,
		"raw as Detail shows it":     strings.Map(asDetail, secret),
		"JSON":                       goJSON(secret),
		"JSON without HTML escaping": noHTML(secret),
		`JSON with \/`:               strings.ReplaceAll(goJSON(secret), "/", `\/`),
		`JSON, no HTML, with \/`:     strings.ReplaceAll(noHTML(secret), "/", `\/`),
		"JSON in JSON":               goJSON(goJSON(secret)),
		"HTML":                       html.EscapeString(secret),
		"HTML (text/template)":       template.HTMLEscapeString(secret),
		"HTML with &quot;":           strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;").Replace(secret),
		"HTML of JSON":               html.EscapeString(goJSON(secret)),
		"query":                      url.QueryEscape(secret),
		"path":                       url.PathEscape(secret),
		"base64":                     b64([]byte(secret)),
		"base64 URL":                 base64.URLEncoding.EncodeToString([]byte(secret)),
		"base64 unpadded":            base64.RawStdEncoding.EncodeToString([]byte(secret)),
		"base64 URL unpadded":        base64.RawURLEncoding.EncodeToString([]byte(secret)),
		"Basic":                      b64([]byte(id + ":" + secret)),
		"Basic, form-encoded":        b64([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret))),
	}
}

// redactAll redacts msg as a vendor does: the secret and the Basic
// credentials built from it.
func redactAll(msg, id, secret string) string {
	return provider.Redact(provider.Permanent(v1alpha1.ReasonVendorRejected, "%s", msg),
		append([]string{secret}, provider.BasicCredentials(id, secret)...)...).Error()
}

// leaks returns the names of the echoes of secret that text holds whole,
// or whose beginning of 4 bytes or more ends just before an ellipsis, or,
// for a secret of 8 bytes or more, whose beginning of 8 bytes or more it
// holds anywhere (the Basic credentials begin with the id, which is no
// secret: the base64 of the secret inside them is checked by FuzzRedact
// through RedactedBeginnings).
func leaks(text, id, secret string) []string {
	var found []string
	for name, e := range echoes(id, secret) {
		if e != "" && strings.Contains(text, e) {
			found = append(found, name)
			continue
		}
		if len(secret) >= 8 && len(e) >= 8 && !strings.HasPrefix(name, "Basic") && strings.Contains(text, e[:8]) {
			found = append(found, name+" (beginning)")
			continue
		}
		for _, before := range strings.Split(text, "…")[:strings.Count(text, "…")] {
			for k := 4; k < len(e); k++ {
				if strings.HasSuffix(before, e[:k]) {
					found = append(found, name+" (cut)")
				}
			}
		}
	}
	return found
}

func TestRedact(t *testing.T) {
	const id, secret = "my client", `p&ss<w>"0rd/+'x`
	for name, e := range echoes(id, secret) {
		t.Run(name, func(t *testing.T) {
			msg := fmt.Sprintf(`vendor answered HTTP 400: client %s sent "%s" (%s)`, id, e, e)
			got := redactAll(msg, id, secret)
			if l := leaks(got, id, secret); l != nil {
				t.Fatalf("Redact(%q) = %q holds %v", msg, got, l)
			}
			if !strings.Contains(got, "[redacted]") || !strings.HasPrefix(got, "vendor answered HTTP 400: client my client sent") {
				t.Fatalf("Redact(%q) = %q", msg, got)
			}
		})
	}
	err := provider.Permanent(v1alpha1.ReasonVendorRejected, "secret s3cr3t was wrong, s3cr3t!")
	if got := provider.Redact(err, "", " ", "s3cr3t").Error(); got != "secret [redacted] was wrong, [redacted]!" {
		t.Errorf("Redact = %q", got)
	}
	if provider.Redact(nil, "s3cr3t") != nil {
		t.Error("Redact(nil) != nil")
	}
}

// TestRedactWithoutHelp checks what Redact removes given only the raw
// credential, as the controller passes every credential a call read: the
// Basic credentials built from it, and the cause of a classified error.
func TestRedactWithoutHelp(t *testing.T) {
	const secret = "s3cr3t-&<>-value"
	basic := base64.StdEncoding.EncodeToString([]byte("client:" + url.QueryEscape(secret)))
	wrapped := &provider.Error{Reason: v1alpha1.ReasonVendorUnavailable, Message: "vendor unreachable",
		Err: fmt.Errorf("proxy said: Authorization: Basic %s", basic)}
	got := provider.Redact(wrapped, secret)
	if got != wrapped || strings.Contains(got.Error(), basic[8:len(basic)-4]) { //nolint:errorlint // the very error must be redacted in place
		t.Fatalf("Redact = %q", got)
	}
	plain := errors.New("no credential here")
	if provider.Redact(plain, secret) != plain { //nolint:errorlint // the very error must pass through
		t.Error("an error without a credential was replaced")
	}
	outer := fmt.Errorf("issuing: %w", provider.Transient(v1alpha1.ReasonVendorRejected, "bad key %s", secret))
	if got := provider.Redact(outer, secret); strings.Contains(got.Error(), secret) || provider.Classify(got).Reason != v1alpha1.ReasonVendorRejected {
		t.Fatalf("Redact of a wrapped error = %v (%s)", got, provider.Classify(got).Reason)
	}
	if got := provider.Redact(errors.New("key "+secret), secret).Error(); got != "key [redacted]" {
		t.Fatalf("Redact of an unclassified error = %q", got)
	}
}

// TestRedactMarker checks that a credential spelling the marker, or part of
// it, is redacted with another one, which cannot join into it again.
func TestRedactMarker(t *testing.T) {
	for _, tc := range []struct{ msg, secret, want string }{
		{"x [redacted] y", "[redacted]", "x <redacted> y"},
		{"xx[redacted]yy", "x[redacted]y", "x<redacted>y"},
		{"x acted y", "acted", "x [***] y"},
		{"x red[]<>{}()#|* y", "red[]<>{}()#|*", "x  y"},
		{"x s3cr3t-…", "s3cr3t-… and more of it", "x [redacted]"}, // its ellipsis is its own
		{"x s3cr…", "s3cr3t and more of it", "x [redacted]…"},
	} {
		if got := provider.Redact(provider.Transient(v1alpha1.ReasonVendorRejected, "%s", tc.msg), tc.secret).Error(); got != tc.want {
			t.Errorf("Redact(%q, %q) = %q, want %q", tc.msg, tc.secret, got, tc.want)
		}
	}
}

func TestRedactCutByDetail(t *testing.T) {
	secret := `s3cr3t-"credential"-value-0123456789`
	for name, e := range echoes("id", secret) {
		for cut := 4; cut < len(e); cut += 3 {
			msg := "vendor answered HTTP 400: " + provider.Detail(strings.Repeat("x", 200-cut)+e)
			if got := redactAll(msg, "id", secret); leaks(got, "id", secret) != nil {
				t.Fatalf("%s cut at %d: %q", name, cut, got)
			}
		}
	}
}

// TestRedactTruncatedEcho checks that a vendor which quotes a request cut
// at a fixed length, with no ellipsis, shows no beginning of 8 bytes or more
// of a credential, wherever the cut falls and whatever follows it.
func TestRedactTruncatedEcho(t *testing.T) {
	const key = "Zq8kP3xL0vT2mR7nB4yH6cJ9wQ5e" // 28 bytes, as the platform key was
	for _, tc := range []struct {
		name, msg string
		secrets   []string
		want      string
	}{{
		name:    "the first 64 bytes of a body, the cut placed by a padded variable",
		msg:     `vendor answered HTTP 400: bad body {"pad":"xxxxxxxxxxxxxxxxxxxx","key":"Zq8kP3xL0vT2mR7nB4yH6cJ9wQ5`,
		secrets: []string{key},
		want:    `vendor answered HTTP 400: bad body {"pad":"xxxxxxxxxxxxxxxxxxxx","key":"[redacted]`,
	}, {
		name:    "a cut followed by the vendor's own text",
		msg:     `vendor answered HTTP 400: {"error":"bad body {\"key\":\"Zq8kP3xL..."}`,
		secrets: []string{key},
		want:    `vendor answered HTTP 400: {"error":"bad body {\"key\":\"[redacted]..."}`,
	}, {
		name:    "several cuts in one message",
		msg:     "first Zq8kP3xL0v, then Zq8kP3xL0vT2mR7nB4yH6c, whole Zq8kP3xL0vT2mR7nB4yH6cJ9wQ5e.",
		secrets: []string{key},
		want:    "first [redacted], then [redacted], whole [redacted].",
	}, {
		name:    "the beginning of the base64 form",
		msg:     "header Basic " + base64.StdEncoding.EncodeToString([]byte(key))[:12] + " refused",
		secrets: []string{key},
		want:    "header Basic [redacted] refused",
	}, {
		name:    "the beginning of the JSON-escaped form",
		msg:     `body {"key":"p\u0026ss\u003cw\u003e\"0` + "\n",
		secrets: []string{`p&ss<w>"0rd'/+x`},
		want:    `body {"key":"[redacted]` + "\n",
	}, {
		name:    "the beginning of the URL-escaped form",
		msg:     "form client_secret=p%26ss%3Cw",
		secrets: []string{`p&ss<w>"0rd'/+x`},
		want:    "form client_secret=[redacted]",
	}, {
		name:    "a beginning of 7 bytes is left",
		msg:     "key Zq8kP3x is not a key",
		secrets: []string{key},
		want:    "key Zq8kP3x is not a key",
	}, {
		name:    "a short credential's longer forms are redacted only whole",
		msg:     "&lt;&lt;&lt;&lt; is not &lt;&lt;&lt;&lt;&lt;&lt;&lt;",
		secrets: []string{"<<<<<<<"},
		want:    "&lt;&lt;&lt;&lt; is not [redacted]",
	}, {
		name:    "the client id before a Basic credential is no secret",
		msg:     "client embed-token-operator failed: embed-token-operator:Zq8kP3xL0v",
		secrets: append([]string{key}, provider.BasicCredentials("embed-token-operator", key)...),
		want:    "client embed-token-operator failed: embed-token-operator:[redacted]",
	}, {
		name:    "one credential beginning with another",
		msg:     "echo password-and-more-secr",
		secrets: []string{"password", "password-and-more-secret"},
		want:    "echo [redacted]",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := provider.Redact(provider.Permanent(v1alpha1.ReasonVendorRejected, "%s", tc.msg), tc.secrets...).Error()
			if got != tc.want {
				t.Errorf("Redact(%q) = %q, want %q", tc.msg, got, tc.want)
			}
		})
	}
}

// TestRedactBounded redacts the longest message with a credential built to
// defeat naive matching, and bounds what that allocates.
func TestRedactBounded(t *testing.T) {
	secret := strings.Repeat("a", 4096) + "b"
	msg := strings.Repeat("a", 1<<20)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got := provider.Redact(provider.Transient(v1alpha1.ReasonVendorRejected, "%s", msg), secret, secret[1:]).Error()
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
		t.Errorf("Redact allocated %d MiB", n>>20)
	}
	if len(got) > 70<<10 || !strings.HasSuffix(got, "[redacted]…") {
		t.Errorf("Redact = %d bytes ending %q", len(got), got[max(0, len(got)-20):])
	}
}

func FuzzRedact(f *testing.F) {
	for _, seed := range []struct{ before, after, id, secret string }{
		{"vendor answered HTTP 401: bad client_secret ", "", "client", "s3cr3t-value"},
		{"", "", "c", `p&ss<w>"0rd`},
		{strings.Repeat("x", 190), "", "client", "s3cr3t-value"},
		{"abab", "abab", "", "abab"},
		{"", "", "id", "a"},
		{"[red", "acted]", "id", "[redacted]"},
		{"", "", "id", "red[]<>{}()#|*"},
		{"x", "y", "id", "\x00\x01\b\f\n\u2028\U0001F600\xff/"},
		{"", "", "id", "é…"},
		{`{"pad":"xxxxxxxxxxxxxxxxxxxx","key":"`, `..."}`, "client", "Zq8kP3xL0vT2mR7nB4yH6cJ9wQ5e"},
		{"", "", "id", "redacted-password"},
		{"aaaaaaaaa", "aaaaaaaa", "id", "aaaaaaaaaaaaaaaaaaab"},
	} {
		for _, cut := range []uint16{0, 5, 19} {
			f.Add(seed.before, seed.after, seed.id, seed.secret, false, cut)
			f.Add(seed.before, seed.after, seed.id, seed.secret, true, cut)
		}
	}
	f.Fuzz(func(t *testing.T, before, after, id, secret string, viaDetail bool, cut uint16) {
		if strings.TrimSpace(secret) == "" {
			return // blank secrets are never sent, and Redact ignores them
		}
		if b, _ := json.Marshal(secret); provider.GoJSONEscape(secret) != string(b[1:len(b)-1]) {
			t.Fatalf("goJSON style of %q = %q, encoding/json %s", secret, provider.GoJSONEscape(secret), b)
		}
		var parts []string
		all := echoes(id, secret)
		for _, name := range slices.Sorted(maps.Keys(all)) {
			parts = append(parts, all[name])
		}
		// And each echo cut after 8 bytes or more, as a vendor quoting the
		// first bytes of a request shows it, followed by after.
		for i, name := range slices.Sorted(maps.Keys(all)) {
			if e := all[name]; len(e) >= 8 {
				parts = append(parts, e[:8+(int(cut)+i)%(len(e)-7)])
			}
		}
		msg := before + strings.Join(parts, after) + after
		if viaDetail {
			msg = "vendor answered HTTP 400: " + provider.Detail(msg) // the path vendor error bodies take
		}
		secrets := append([]string{secret}, provider.BasicCredentials(id, secret)...)
		got := redactAll(msg, id, secret)
		if l := leaks(got, id, secret); l != nil {
			t.Fatalf("Redact(%q) = %q holds %v", msg, got, l)
		}
		for _, b := range provider.RedactedBeginnings(secrets, len(msg)) {
			if strings.Contains(got, b) {
				t.Fatalf("Redact(%q) = %q holds %q, the beginning of a form", msg, got, b)
			}
		}
		if len(got) > 12*len(msg)+12 {
			t.Fatalf("Redact grew %d bytes to %d", len(msg), len(got))
		}
		// A message holding no form of the secret, nor its beginning, is
		// left alone.
		plain := before + after
		if strings.Contains(plain, "…") {
			return
		}
		for _, b := range provider.RedactedBeginnings([]string{secret}, len(plain)) {
			if strings.Contains(plain, b) {
				return
			}
		}
		err := provider.Transient(v1alpha1.ReasonVendorRejected, "%s", plain)
		if provider.Redact(err, secret) != err || err.Error() != plain { //nolint:errorlint // the very error must pass through
			t.Fatalf("Redact changed %q to %q, which holds no form of %q", plain, err.Error(), secret)
		}
	})
}

// TestCredentialRecorder checks that every value read through a recorder,
// and only those, is redacted by it, as read and trimmed.
func TestCredentialRecorder(t *testing.T) {
	creds := provider.RecordCredentials(pt.Creds{"app/key": "  k3y&<>value\n", "app/other": "0ther-value"})
	if _, err := creds.Read(context.Background(), pt.Ref("app/key")); err != nil {
		t.Fatal(err)
	}
	if _, err := creds.Read(context.Background(), pt.Ref("app/missing")); err == nil {
		t.Fatal("a missing key was read")
	}
	err := provider.Transient(v1alpha1.ReasonVendorRejected, `bad key "k3y\u0026\u003c\u003evalue", other 0ther-value, token tok-1`)
	got := creds.Redact(err, "tok-1").Error()
	if want := `bad key "[redacted]", other 0ther-value, token [redacted]`; got != want {
		t.Fatalf("Redact = %q, want %q", got, want)
	}
	if creds.Redact(nil) != nil {
		t.Fatal("Redact(nil) != nil")
	}
}
