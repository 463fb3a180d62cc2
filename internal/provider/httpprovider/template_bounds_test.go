package httpprovider_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider/httpprovider"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// maxRenderAlloc is what one render may allocate in total, whatever the
// template: the 1 MiB the functions may build, the 1 MiB of output, their
// transient buffers and the parse, with room to spare.
const maxRenderAlloc = 16 << 20

// renderAllocated renders src and returns the bytes allocated meanwhile.
func renderAllocated(src string, vars map[string]string) (uint64, error) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := httpprovider.RenderBody(src, httpprovider.TemplateData{Vars: vars, LifetimeSeconds: 60}, secrets)
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, err
}

// chain declares $v0 from first, then each $vN as printf of n copies of
// $v(N-1): a template that prints nothing and, unbounded, allocates
// len(first's result) * n^levels bytes.
func chain(first string, n, levels int, fn string) string {
	var b strings.Builder
	b.WriteString("{{ $v0 := " + first + " }}")
	for i := 1; i <= levels; i++ {
		prev := " $v" + string(rune('0'+i-1))
		b.WriteString("{{ $v" + string(rune('0'+i)) + " := " + fn + strings.Repeat(prev, n) + " }}")
	}
	return b.String()
}

// nested is printf repeating the inner call's result n times, levels deep,
// without variables.
func nested(inner string, n, levels int) string {
	for range levels {
		inner = `(printf "` + strings.Repeat("%[1]s", n) + `" ` + inner + `)`
	}
	return inner
}

// attacks are templates that allocate gigabytes without the bounds; each is
// refused when parsed (ProviderInvalid) or when it runs out of budget
// (InvalidRequest), within maxRenderAlloc.
var attacks = []struct {
	name, src string
	vars      map[string]string
	want      pt.Want
}{
	{"printf padding chained through variables", `{{ $a := printf "%01000000d" 0 }}` +
		`{{ $b := printf "%s%s%s%s%s%s%s%s%s%s" $a $a $a $a $a $a $a $a $a $a }}` +
		`{{ $c := printf "%s%s%s%s%s%s%s%s%s%s" $b $b $b $b $b $b $b $b $b $b }}` +
		`{{ $d := printf "%s%s%s%s%s%s%s%s%s%s" $c $c $c $c $c $c $c $c $c $c }}`, nil, invalid("width")},
	{"printf precision", `{{ $a := printf "%.1000000f" 1.5 }}`, nil, invalid("precision")},
	{"printf width from an argument", `{{ $a := printf "%*d" 1000000 1 }}`, nil, invalid("(*)")},
	{"printf width from a variable's format", `{{ $a := printf .Vars.f 1 }}`, map[string]string{"f": "%01000000d"}, rejected("width")},
	{"printf chained through variables", chain(`printf "%01000d" 0`, 10, 5, "printf \""+strings.Repeat("%s", 10)+"\""), nil, rejected("more than")},
	{"printf repeating one argument by index", `{{ $a := printf "%01000d" 0 }}{{ $b := printf "` + strings.Repeat("%[1]s", 100) + `" $a }}` +
		`{{ $c := printf "` + strings.Repeat("%[1]s", 200) + `" $b }}`, nil, rejected("more than")},
	{"printf nested in if", "{{ if " + nested(`(printf "%01000d" 0)`, 10, 5) + " }}{{ end }}", nil, rejected("more than")},
	{"len of a nested printf", "{{ len " + nested(`"xxxxxxxxxxxxxxxxxxxx"`, 10, 6) + " }}", nil, rejected("more than")},
	{"eq of nested printfs", "{{ if eq " + nested(`"x"`, 100, 4) + " " + nested(`"y"`, 100, 4) + " }}{{ end }}", nil, rejected("more than")},
	{"print chained through variables", chain(`printf "%01000d" 0`, 10, 5, "print"), nil, rejected("more than")},
	{"println chained through variables", chain(`printf "%01000d" 0`, 10, 5, "println"), nil, rejected("more than")},
	{"html escaping amplifies", chain(`printf "%01000s" "<"`, 10, 5, "html"), nil, rejected("more than")},
	{"js escaping amplifies", chain(`printf "%01000s" "<"`, 10, 5, "js"), nil, rejected("more than")},
	{"urlquery escaping amplifies", chain(`printf "%01000s" "<"`, 10, 5, "urlquery"), nil, rejected("more than")},
	{"json of a large variable, many times", strings.Repeat(`{{ $x := json .Vars.big }}`, 50), map[string]string{"big": strings.Repeat("<", 100_000)}, rejected("more than")},
	{"escaped output of a large variable", strings.Repeat(`{{ .Vars.big }}`, 100), map[string]string{"big": strings.Repeat("<", 100_000)}, rejected("exceeds")},
	{"output of a large variable", strings.Repeat(`{{ .Vars.big }}`, 100), map[string]string{"big": strings.Repeat("x", 100_000)}, rejected("exceeds")},
	{"the escaper called by name", `{{ $x := _jsonEscape .Vars.big }}`, nil, invalid("_jsonEscape is not supported")},
	{"raw of the whole data", strings.Repeat(`{{ if raw . }}{{ end }}`, 100), map[string]string{"big": strings.Repeat("x", 200_000)}, rejected("more than")},
	{"range", `{{ range .Vars }}{{ range .Vars }}x{{ end }}{{ end }}`, nil, invalid("range")},
	{"block", `{{ block "b" . }}x{{ end }}`, nil, invalid("define")},
	{"call", `{{ call .Vars.f }}`, nil, invalid("call")},
	{"too many variables", strings.Repeat(`{{ $x := 1 }}`, 65), nil, invalid("variables")},
	{"too many Secrets", func() string {
		var b strings.Builder
		for i := range 17 {
			b.WriteString(`{{ secret "s` + string(rune('a'+i)) + `" "k" }}`)
		}
		return b.String()
	}(), nil, invalid("Secret keys")},
}

func invalid(msg string) pt.Want {
	return pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: msg}
}

func rejected(msg string) pt.Want {
	return pt.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true, Message: msg}
}

func TestRenderBodyBounded(t *testing.T) {
	for _, tc := range attacks {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.src) > 16384 {
				t.Fatalf("the attack is %d bytes, more than the CRD allows", len(tc.src))
			}
			n, err := renderAllocated(tc.src, tc.vars)
			if n > maxRenderAlloc {
				t.Errorf("rendering allocated %d MiB", n>>20)
			}
			pt.CheckError(t, err, tc.want, secretValue)
		})
	}
}

// TestRenderBodyWithinBounds checks what the bounds still allow: bodies far
// larger than any vendor needs, and printf with ordinary widths.
func TestRenderBodyWithinBounds(t *testing.T) {
	vars := map[string]string{"v": strings.Repeat("é", 100_000)}
	for _, src := range []string{
		`{"v":"{{ .Vars.v }}","n":"{{ printf "%08d|%-20s|%.3f" 42 "x" 1.5 }}"}`,
		`{{ $s := secret "app-creds" "key" }}` + strings.Repeat(`{{ $s }}{{ secret "app-creds" "key" }}`, 1000),
		`{{ $a := printf "%01000d" 0 }}` + strings.Repeat(`{{ printf "%s%s" $a $a }}`, 100),
		chain(`printf "%010d" 0`, 10, 3, "printf \""+strings.Repeat("%s", 10)+"\""),
	} {
		n, err := renderAllocated(src, vars)
		if err != nil || n > maxRenderAlloc {
			t.Errorf("rendering %.60q: %v, %d MiB allocated", src, err, n>>20)
		}
	}
}
