package httpprovider_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/httpprovider"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

const secretValue = "t0p-s3cret"

// secrets answers only ns/app-creds/key and app-creds/key.
func secrets(ref v1alpha1.SecretKeySelector) (string, error) {
	if ref.Name == "app-creds" && ref.Key == "key" {
		return secretValue + ref.Namespace, nil
	}
	return "", provider.Transient(v1alpha1.ReasonCredentialsNotFound, "credential Secret %s has no key %q", ref.Name, ref.Key)
}

func TestRenderBody(t *testing.T) {
	vars := map[string]string{"user": `al"ice\` + "\n</script>", "n": "7", "empty": ""}
	tests := []struct {
		name, src string
		want      string // the rendered body; for JSON bodies compared as JSON
		err       pt.Want
	}{
		{"escaped inside quotes", `{"u":"{{ .Vars.user }}"}`, `{"u":"al\"ice\\\n</script>"}`, pt.Want{}},
		{"number unquoted", `{"n":{{ .Vars.n }},"life":{{ .LifetimeSeconds }}}`, `{"n":7,"life":1800}`, pt.Want{}},
		{"raw opts out", `{"u":"{{ raw "a\"b" }}"}`, `{"u":"a"b"}`, pt.Want{}},
		{"json writes a whole value", `{"u":{{ json .Vars.user }}}`, `{"u":"al\"ice\\\n</script>"}`, pt.Want{}},
		{"printf output is escaped too", `{"u":"{{ printf "%s!" .Vars.user }}"}`, `{"u":"al\"ice\\\n</script>!"}`, pt.Want{}},
		{"secret", `{"k":"{{ secret "app-creds" "key" }}"}`, `{"k":"` + secretValue + `"}`, pt.Want{}},
		{"secret with namespace", `{"k":"{{ secret "team-a/app-creds" "key" }}"}`, `{"k":"` + secretValue + `team-a"}`, pt.Want{}},
		{"optional variable with index", `{ {{- with index .Vars "org" }}"org":{{ . }},{{ end }}"x":1}`, `{"x":1}`, pt.Want{}},
		{"if and else", `{{ if eq .Vars.n "7" }}seven{{ else }}other{{ end }}`, `seven`, pt.Want{}},
		{"variables", `{{ $u := .Vars.user }}{"u":"{{ $u }}"}`, `{"u":"al\"ice\\\n</script>"}`, pt.Want{}},
		{"empty template", ``, ``, pt.Want{}},
		{"missing variable", `{"u":"{{ .Vars.nobody }}"}`, "",
			pt.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true, Message: `map has no entry for key "nobody"`}},
		{"missing secret", `{"k":"{{ secret "other" "key" }}"}`, "",
			pt.Want{Reason: v1alpha1.ReasonCredentialsNotFound, Message: "other"}},
		{"parse error", `{"u":"{{ .Vars.user "}`, "",
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "not a valid template"}},
		{"unknown function", `{{ env "HOME" }}`, "",
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: `function "env" not defined`}},
		{"secret name from a variable", `{{ secret .Vars.user "key" }}`, "",
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "two string literals"}},
		{"secret name from a chained pipeline", `{{ (secret .Vars.user "key").x }}`, "",
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "two string literals"}},
		{"secret with bad namespace form", `{{ secret "a/b/c" "key" }}`, "",
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "namespace/name"}},
		{"range", `{{ range .Vars }}x{{ end }}`, "",
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "range"}},
		{"define", `{{ define "x" }}y{{ end }}{{ template "x" }}`, "",
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "define"}},
		{"huge padding", `{{ printf "%0999999d" 1 }}{{ printf "%0999999d" 1 }}`, "",
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "width"}},
		{"error after reading a secret", `{{ secret "app-creds" "key" }}{{ index .Vars.n 9 }}`, "",
			pt.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := httpprovider.RenderBody(tc.src, httpprovider.TemplateData{Vars: vars, LifetimeSeconds: 1800}, secrets)
			pt.CheckError(t, err, tc.err, secretValue)
			if err != nil {
				return
			}
			if json.Valid([]byte(tc.want)) && tc.want != "" {
				var a, b any
				if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(tc.want), &b) != nil || !reflect.DeepEqual(a, b) {
					t.Fatalf("rendered %s, want %s", got, tc.want)
				}
			} else if string(got) != tc.want {
				t.Fatalf("rendered %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBodySecretRefs(t *testing.T) {
	refs, err := httpprovider.BodySecretRefs(`{"a":"{{ secret "s1" "k1" }}",{{ if true }}"b":"{{ printf "%s" (secret "ns/s2" "k2") }}"{{ end }}}`)
	want := []v1alpha1.SecretKeySelector{{Name: "s1", Key: "k1"}, {Namespace: "ns", Name: "s2", Key: "k2"}}
	if err != nil || !reflect.DeepEqual(refs, want) {
		t.Fatalf("BodySecretRefs = %v, %v; want %v", refs, err, want)
	}
	if refs, err := httpprovider.BodySecretRefs(""); err != nil || refs != nil {
		t.Fatalf("empty body: %v, %v", refs, err)
	}
}

// FuzzRenderBody renders arbitrary templates (up to the CRD's 16384
// characters) and fails when one leaks a Secret, allocates more than
// maxRenderAlloc, or breaks the JSON escaping of a variable. The attacks of
// TestRenderBodyBounded are among its seeds.
func FuzzRenderBody(f *testing.F) {
	for _, seed := range []struct{ src, v string }{
		{`{"v":"{{ .Vars.v }}"}`, `he said "hi"\`},
		{`{{ secret "app-creds" "key" }}`, ""},
		{`{{ .Vars.missing }}`, "x"},
		{`{{ raw .Vars.v }}`, "\x00\xff"},
		{`{{ json .Vars.v }}`, "\u2028"},
		{`{{ if .Vars.v }}{{ else }}{{ end }}`, ""},
		{`{{ (secret "a" "b").x }}`, ""},
		{`{{`, ""},
		{`{{ printf .Vars.v 1 }}`, "%0999d"},
		{`{{ $a := printf "%01000d" 0 }}{{ $b := printf "%s%s%s%s%s%s%s%s%s%s" $a $a $a $a $a $a $a $a $a $a }}`, ""},
		{`{{ $a := println .Vars.v .Vars.v .Vars.v }}{{ $b := js $a $a $a $a }}{{ $c := html $b $b $b $b }}`, "<<<<<<<<"},
	} {
		f.Add(seed.src, seed.v)
	}
	for _, a := range attacks {
		if a.vars == nil {
			f.Add(a.src, "")
		}
	}
	f.Fuzz(func(t *testing.T, src, v string) {
		if len(src) > 16384 {
			return // the CRD refuses longer bodies
		}
		vars := map[string]string{"v": v}
		n, err := renderAllocated(src, vars)
		if n > maxRenderAlloc {
			t.Fatalf("rendering %q allocated %d MiB", src, n>>20)
		}
		if err != nil && !strings.Contains(src, secretValue) {
			pt.NoLeak(t, err.Error(), secretValue)
		}
		// Whatever the variable holds, a quoted interpolation stays valid
		// JSON and decodes back to it.
		data := httpprovider.TemplateData{Vars: vars}
		out, err := httpprovider.RenderBody(`{"v":"{{ .Vars.v }}"}`, data, secrets)
		var back struct{ V string }
		if err != nil || json.Unmarshal(out, &back) != nil {
			t.Fatalf("rendering %q: %s, %v", v, out, err)
		}
		if utf8.ValidString(v) && back.V != v {
			t.Fatalf("round trip of %q gave %q", v, back.V)
		}
	})
}
