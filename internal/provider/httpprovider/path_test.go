package httpprovider_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/embedtokens/embed-token-operator/internal/provider/httpprovider"
)

const pathDoc = `{
	"Data": {"access_token": "tok", ".expires": "locale", "expires_in": 60},
	"a": {"b": [{"c": "first"}, {"c": "second", "d": null}]},
	"Key.with.dots": {"x y": true, "q\"uote": 1},
	"list": [[1, 2], [3]]
}`

func decode(t testing.TB, s string) any {
	t.Helper()
	var doc any
	if err := json.Unmarshal([]byte(s), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestParsePathLookup(t *testing.T) {
	doc := decode(t, pathDoc)
	tests := []struct {
		expr  string
		want  any
		found bool
	}{
		{".Data.access_token", "tok", true},
		{"Data.access_token", "tok", true},
		{"$.Data.access_token", "tok", true},
		{" .Data.expires_in ", 60.0, true},
		{`.Data[".expires"]`, "locale", true},
		{`.Data['.expires']`, "locale", true},
		{".a.b[1].c", "second", true},
		{".a.b[0].c", "first", true},
		{".a.b[1].d", nil, true},
		{`["Key.with.dots"]["x y"]`, true, true},
		{`["Key.with.dots"]["q\"uote"]`, 1.0, true},
		{".list[0][1]", 2.0, true},
		{".a.b[2].c", nil, false},
		{".a.b.c", nil, false},
		{".Data.access_token.x", nil, false},
		{".missing", nil, false},
		{".Data[0]", nil, false},
		{"$", decode(t, pathDoc), true},
		{".", decode(t, pathDoc), true},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			p, err := httpprovider.ParsePath(tc.expr)
			if err != nil {
				t.Fatalf("ParsePath: %v", err)
			}
			got, found := p.Lookup(doc)
			if found != tc.found || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Lookup = %v, %v; want %v, %v", got, found, tc.want, tc.found)
			}
			if p.String() != tc.expr {
				t.Errorf("String = %q", p.String())
			}
		})
	}
}

func TestParsePathErrors(t *testing.T) {
	for _, expr := range []string{"", "  ", "a..b", ".a.", ".a[", ".a[x]", ".a[-1]", ".a[1", `.a["x`, `.a["x"`, `.a["x"]b`, ".a]", `.a"b`, ".a b", ".a[99999999999]", ".a[+1]"} {
		if _, err := httpprovider.ParsePath(expr); err == nil {
			t.Errorf("ParsePath(%q) succeeded", expr)
		} else if !strings.Contains(err.Error(), "path") {
			t.Errorf("ParsePath(%q) error %q does not say it is about a path", expr, err)
		}
	}
}

// quoteKey writes key as a bracketed, double-quoted path step.
func quoteKey(key string) string {
	return `["` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(key) + `"]`
}

func FuzzPath(f *testing.F) {
	for _, s := range []string{".Data.access_token", `$.a.b[1].c`, `["Key.with.dots"]`, "[0]", "a..b", `.a["x`, "$", "", ".list[0][1]", `['\'']`} {
		f.Add(s, "key")
	}
	f.Add(".x", `we"ird.key[0]\`)
	f.Fuzz(func(t *testing.T, expr, key string) {
		doc := decode(t, pathDoc)
		if p, err := httpprovider.ParsePath(expr); err == nil {
			p.Lookup(doc) // must not panic
		}
		// Any key is reachable through the quoted form.
		p, err := httpprovider.ParsePath(quoteKey(key))
		if err != nil {
			t.Fatalf("quoted key %q: %v", key, err)
		}
		if v, ok := p.Lookup(map[string]any{key: "v"}); !ok || v != "v" {
			t.Fatalf("quoted key %q not found", key)
		}
	})
}
