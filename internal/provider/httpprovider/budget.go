package httpprovider

import (
	"errors"
	"fmt"
	"reflect"
	"text/template"
	"unicode/utf8"

	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// maxBuiltBytes bounds what the functions of one render may build in total
// (printf results, escaped values, Secret values, ...). Output is bounded
// separately by limitedBuffer; values a template only stores in variables or
// passes to if, with or len are bounded by this budget alone.
const maxBuiltBytes = provider.MaxResponseBytes

// maxFormatWidth bounds a printf width or precision: padding is the cheapest
// way to turn a short template into a large string, and no body needs more.
const maxFormatWidth = 1024

// maxExpansion is the most bytes any function writes per byte of its input:
// "%# x" writes "0xhh " (5) per byte, json and js write \u003c (6) for <.
const maxExpansion = 6

// errBudget is returned by a function whose result might not fit in what
// the render may still build; nothing has been allocated for it.
var errBudget = fmt.Errorf("the body template would build more than %d bytes", maxBuiltBytes)

// budget is what one render may still build. Functions ask it before they
// allocate, with an upper bound of their result, and are charged the result's
// real length afterwards, so a render allocates at most maxBuiltBytes (plus
// the bounded output) whatever the template does.
// The escaper appended to every output action is instead bounded by the
// room left in the output, which its result goes to at once.
type budget struct {
	left int
	out  *limitedBuffer
}

func newBudget() *budget {
	return &budget{left: maxBuiltBytes, out: &limitedBuffer{max: provider.MaxResponseBytes}}
}

// reserve fails when a result of up to bound bytes might not fit.
func (b *budget) reserve(bound int) error {
	if bound < 0 || bound > b.left {
		return errBudget
	}
	return nil
}

// charge takes a built result's length from the budget.
func (b *budget) charge(n int) { b.left -= min(n, b.left) }

// build runs f if a result of up to bound bytes fits, and charges its length.
func build[T ~string](b *budget, bound int, f func() T) (T, error) {
	if err := b.reserve(bound); err != nil {
		return "", err
	}
	s := f()
	b.charge(len(s))
	return s, nil
}

// boundedFuncs replaces every built-in function that can build a string
// larger than its arguments (printf, print, println, html, js, urlquery) by
// one that asks b first, and refuses call, which a body has no use for.
// index, slice, len, and, or, not and the comparisons allocate nothing
// beyond their arguments and stay built in.
func boundedFuncs(b *budget) template.FuncMap {
	return template.FuncMap{
		"printf": func(format string, args ...any) (string, error) {
			bound, err := printfBound(format, args)
			if err != nil {
				return "", err
			}
			return build(b, bound, func() string { return fmt.Sprintf(format, args...) })
		},
		"print": func(args ...any) (string, error) {
			return build(b, sumSize(args), func() string { return fmt.Sprint(args...) })
		},
		"println": func(args ...any) (string, error) {
			return build(b, sumSize(args)+1, func() string { return fmt.Sprintln(args...) })
		},
		"html":     escaper(b, template.HTMLEscaper),
		"js":       escaper(b, template.JSEscaper),
		"urlquery": escaper(b, template.URLQueryEscaper),
		"call": func(any, ...any) (any, error) {
			return nil, errors.New("call is not supported")
		},
	}
}

// escaper bounds one of text/template's escapers, which print their
// arguments and escape the result.
func escaper(b *budget, escape func(...any) string) func(...any) (string, error) {
	return func(args ...any) (string, error) {
		return build(b, maxExpansion*sumSize(args), func() string { return escape(args...) })
	}
}

// printfBound is an upper bound of len(fmt.Sprintf(format, args...)),
// computed without formatting: every verb may print the largest argument,
// expanded, and padded to the largest width and precision; arguments left
// over are printed as %!(EXTRA ...). Widths taken from arguments (*) and
// widths above maxFormatWidth are refused.
func printfBound(format string, args []any) (int, error) {
	verbs, width, err := formatVerbs(format)
	if err != nil {
		return 0, err
	}
	largest := 0
	for _, a := range args {
		largest = max(largest, sizeOf(a, 0))
	}
	perVerb := satAdd(2*width+512, satMul(maxExpansion, largest))
	return satAdd(satAdd(len(format), satMul(verbs, perVerb)), satMul(maxExpansion, sumSize(args))), nil
}

// formatVerbs counts the verbs of a printf format and returns its largest
// width or precision.
func formatVerbs(format string) (verbs, width int, err error) {
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		verbs++
		for i++; i < len(format); i++ {
			c := format[i]
			switch {
			case c == '*':
				return 0, 0, errors.New("printf: widths and precisions taken from arguments (*) are not supported")
			case c >= '0' && c <= '9':
				n := 0
				for ; i < len(format) && format[i] >= '0' && format[i] <= '9'; i++ {
					n = min(n*10+int(format[i]-'0'), maxFormatWidth+1)
				}
				i--
				if n > maxFormatWidth {
					return 0, 0, fmt.Errorf("printf: a width or precision above %d is not supported", maxFormatWidth)
				}
				width = max(width, n)
			case c == '[' || c == ']' || c == '.' || c == '+' || c == '-' || c == '#' || c == ' ':
			default: // the verb (or %%); a multi-byte verb's other bytes are plain text
				c = 0
			}
			if c == 0 {
				break
			}
		}
	}
	return verbs, width, nil
}

// sumSize bounds the printed length of a list of values, with a separator each.
func sumSize(args []any) int {
	n := 16
	for _, a := range args {
		n = satAdd(n, sizeOf(a, 0)+2)
	}
	return n
}

// sizeOf bounds the length of a value printed with any verb but before any
// escaping (which maxExpansion covers): strings by their length, numbers by
// the longest %f of a float64, containers by their elements plus generous
// room for type names and punctuation (%#v).
func sizeOf(v any, depth int) int {
	if v == nil {
		return 16
	}
	return sizeOfValue(reflect.ValueOf(v), depth)
}

func sizeOfValue(v reflect.Value, depth int) int {
	if depth > 8 { // TemplateData is two levels deep; nothing reachable nests further
		return 1 << 30
	}
	switch v.Kind() {
	case reflect.Invalid:
		return 16
	case reflect.String:
		return v.Len() + 64
	case reflect.Bool:
		return 8
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return 80
	case reflect.Float32, reflect.Float64:
		return 400
	case reflect.Complex64, reflect.Complex128:
		return 800
	case reflect.Map:
		n := 128
		for it := v.MapRange(); it.Next(); {
			n = satAdd(n, satAdd(sizeOfValue(it.Key(), depth+1), sizeOfValue(it.Value(), depth+1)))
		}
		return n
	case reflect.Struct:
		n := 128
		for i := range v.NumField() {
			n = satAdd(n, 64+sizeOfValue(v.Field(i), depth+1))
		}
		return n
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return 16
		}
		return satAdd(64, sizeOfValue(v.Elem(), depth+1))
	case reflect.Slice, reflect.Array:
		n := 128
		for i := range v.Len() {
			n = satAdd(n, 8+sizeOfValue(v.Index(i), depth+1))
		}
		return n
	}
	return 128 // funcs and channels print as addresses
}

// jsonStringBound is the exact worst case of escaping s inside a JSON string
// (json.Marshal's rules), computed without allocating: most values are
// printed through it, so it should not refuse what fits.
func jsonStringBound(s string) int {
	n := 2
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029':
			n += 6
		case r < 0x20 || r == '<' || r == '>' || r == '&':
			n += 6
		case r == '"' || r == '\\':
			n += 2
		default:
			n += size
		}
		i += size
	}
	return n
}

// satAdd and satMul saturate instead of overflowing; budgets are far below.
func satAdd(a, b int) int {
	if a > 1<<40 || b > 1<<40 {
		return 1 << 41
	}
	return a + b
}

func satMul(a, b int) int {
	if a != 0 && b > (1<<41)/a {
		return 1 << 41
	}
	return a * b
}
