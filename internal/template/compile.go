// Package template checks an EmbedTokenTemplate's parameters and fills them
// in: each parameter's path must name a string of the template's vendor
// block (by the block's Go type, and an index the template holds), and its
// CEL validation compiles in requestValidations' environment under the same
// bounds. Filling a template never changes it: each call gets a copy of the
// vendor block with the caller's values at their paths.
package template

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/requestrules"
)

// Variables a parameter's validation sees.
const (
	// ValueVar is the string the caller sent.
	ValueVar = "value"
	// CallerVar is who called: username, namespace, serviceAccount and
	// podName, each a string ("" when the token review does not say).
	CallerVar = "caller"
	// NamespaceVar is the template's Namespace, as requestValidations see
	// it.
	NamespaceVar = requestrules.NamespaceVar
)

// Bounds of what a template's author or a caller controls.
const (
	// MaxPathLength bounds a parameter's path, as admission does.
	MaxPathLength = 256
	// MaxIndex bounds a list index in a path, as admission's two digits do.
	MaxIndex = 99
	// DefaultMaxLength is a parameter's maxLength when the template built
	// in code leaves it unset (the API server defaults it).
	DefaultMaxLength = 256
	// MaxParameters bounds a template's parameters, as admission does.
	MaxParameters = 32
)

// env is the validations' CEL environment, built once.
var env = sync.OnceValues(func() (*cel.Env, error) {
	return requestrules.NewEnv(
		cel.Variable(ValueVar, cel.StringType),
		cel.Variable(CallerVar, cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable(NamespaceVar, cel.DynType),
	)
})

// pathKey is one name of a path, as admission's grammar allows it.
var pathKey = regexp.MustCompile("^" + v1alpha1.PathKeyPattern + "$")

// jsonType is the free-form JSON value type: a path may go on below it by
// keys and indexes, and a string may replace it.
var jsonType = reflect.TypeFor[apiextensionsv1.JSON]()

// Error is a template or a call the parameters refuse. Its message names
// the parameter and the problem, never the value sent, so it is safe in
// conditions, logs and answers to callers.
type Error struct {
	// Reason is v1alpha1.ReasonInvalidParameters.
	Reason string
	// Parameter is the parameter's name, or "" when the problem is not
	// one parameter's.
	Parameter string
	// Message explains the refusal.
	Message string
}

// Error implements error.
func (e *Error) Error() string { return e.Message }

// invalid is an *Error for parameter name.
func invalid(name, format string, args ...any) *Error {
	return &Error{Reason: v1alpha1.ReasonInvalidParameters, Parameter: name, Message: fmt.Sprintf(format, args...)}
}

// Compiled is a template's checked parameters and compiled validations, for
// one generation of its spec. It is immutable and safe for concurrent use.
type Compiled struct {
	// block is the template's vendor block, copied; Fill copies it again.
	block  *v1alpha1.VendorParams
	params []*param
	byName map[string]*param
	// usesNamespace is true when a validation reads namespaceObject.
	usesNamespace bool
}

// param is one compiled parameter.
type param struct {
	name      string
	maxLength int
	steps     []step
	bounds    *Bounds
	rule      *requestrules.Rule
	// text is the validation's message, or its expression.
	text string
}

// stepKind is how one step of a path moves below a value.
type stepKind int

const (
	// stepField enters a struct field (through a pointer, allocated when nil).
	stepField stepKind = iota
	// stepIndex enters a list item the template holds.
	stepIndex
	// stepMapKey sets a key of a string map; always the last step.
	stepMapKey
	// stepJSON enters a free-form JSON value; the path's rest is in json.
	stepJSON
)

// step is one resolved step of a path.
type step struct {
	kind  stepKind
	field int
	index int
	key   string
	json  []jsonStep
}

// jsonStep is a key (index < 0) or an index of a free-form JSON value.
type jsonStep struct {
	key   string
	index int
}

// Compile checks every parameter of spec against its vendor block and
// compiles its validation. Errors are *Error, reason InvalidParameters,
// naming each bad parameter, for the template's Ready condition.
func Compile(spec *v1alpha1.EmbedTokenTemplateSpec) (*Compiled, error) {
	vendor := spec.Vendor()
	if vendor == "" {
		return nil, invalid("", "the template sets no vendor block")
	}
	if len(spec.Parameters) > MaxParameters {
		return nil, invalid("", "the template declares %d parameters, more than %d", len(spec.Parameters), MaxParameters)
	}
	e, err := env()
	if err != nil {
		return nil, fmt.Errorf("building the CEL environment: %w", err)
	}
	c := &Compiled{block: spec.VendorParams.DeepCopy(), byName: make(map[string]*param, len(spec.Parameters))}
	paths := map[string]string{}
	var problems []string
	for i, tp := range spec.Parameters {
		p, err := compileParam(e, vendor, c.block, tp)
		if err == nil && c.byName[tp.Name] != nil {
			err = errors.New("the name is declared twice")
		}
		if other, ok := paths[tp.Path]; err == nil && ok {
			err = fmt.Errorf("parameter %s fills the same path", other)
		}
		if err == nil {
			err = overlap(paths, tp.Path)
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("spec.parameters[%d] (%s): %v", i, truncate(tp.Name), err))
			continue
		}
		paths[tp.Path] = tp.Name
		c.params = append(c.params, p)
		c.byName[p.name] = p
		c.usesNamespace = c.usesNamespace || p.rule.Reads(NamespaceVar)
	}
	if len(problems) > 0 {
		return nil, invalid("", "%s", strings.Join(problems, "; "))
	}
	return c, nil
}

// overlap refuses a path below or above another parameter's (jwt.claims.a
// and jwt.claims.a.b): one value would overwrite or break the other.
// Paths are compared as written; parsePath refuses the spellings (leading
// zeros in an index) that would make two strings name one place.
func overlap(paths map[string]string, path string) error {
	for other, name := range paths {
		for _, sep := range []string{".", "["} {
			if strings.HasPrefix(path, other+sep) || strings.HasPrefix(other, path+sep) {
				return fmt.Errorf("the path overlaps parameter %s's", truncate(name))
			}
		}
	}
	return nil
}

// compileParam resolves tp's path in block and compiles its validation.
func compileParam(e *cel.Env, vendor string, block *v1alpha1.VendorParams, tp v1alpha1.TemplateParameter) (*param, error) {
	if tp.Name == "" {
		return nil, errors.New("the name is empty")
	}
	p := &param{name: tp.Name, maxLength: int(tp.MaxLength)}
	if p.maxLength <= 0 {
		p.maxLength = DefaultMaxLength
	}
	steps, bounds, err := resolve(vendor, block, tp.Path)
	if err != nil {
		return nil, fmt.Errorf("path %s: %w", truncate(tp.Path), err)
	}
	p.steps, p.bounds = steps, bounds
	if v := tp.Validation; v != nil {
		if p.rule, err = requestrules.CompileRule(e, v.Expression); err != nil {
			return nil, fmt.Errorf("validation: %w", err)
		}
		p.text = v.Message
		if p.text == "" {
			p.text = "failed rule: " + v.Expression
		}
	}
	return p, nil
}

// segment is one dot-separated part of a path: a name and its indexes.
type segment struct {
	name    string
	indexes []int
}

// parsePath splits a path into segments: "powerBI.identities[0].username".
func parsePath(path string) ([]segment, error) {
	if len(path) > MaxPathLength {
		return nil, fmt.Errorf("longer than %d bytes", MaxPathLength)
	}
	parts := strings.Split(path, ".")
	out := make([]segment, 0, len(parts))
	for _, part := range parts {
		name, rest := part, ""
		if i := strings.IndexByte(part, '['); i >= 0 {
			name, rest = part[:i], part[i:]
		}
		if name == "" {
			return nil, errors.New("a part has no name")
		}
		if !pathKey.MatchString(name) {
			return nil, fmt.Errorf("%s is no field name or key: write letters, digits, '_' or '-', starting with a letter or '_'", truncate(name))
		}
		s := segment{name: name}
		for rest != "" {
			digits, after, ok := strings.Cut(strings.TrimPrefix(rest, "["), "]")
			if !strings.HasPrefix(rest, "[") || !ok || len(digits) == 0 || len(digits) > 2 || strings.Trim(digits, "0123456789") != "" ||
				len(digits) > 1 && digits[0] == '0' {
				return nil, fmt.Errorf("%s has a bad index: write [0] to [%d]", truncate(name), MaxIndex)
			}
			i, _ := strconv.Atoi(digits)
			s.indexes = append(s.indexes, i)
			rest = after
		}
		out = append(out, s)
	}
	return out, nil
}

// resolve turns path into steps below block, checking it against the
// block's Go type and the template's values: each field exists, each index
// is held, and the target is a string, a string list item, a string map's
// key or a free-form JSON value that is absent, null or a string. It also
// returns the target field's admission bounds, if any.
func resolve(vendor string, block *v1alpha1.VendorParams, path string) ([]step, *Bounds, error) {
	segs, err := parsePath(path)
	if err != nil {
		return nil, nil, err
	}
	if segs[0].name != vendor || len(segs[0].indexes) > 0 {
		return nil, nil, fmt.Errorf("must start with %s., the template's vendor block", vendor)
	}
	if len(segs) < 2 {
		return nil, nil, errors.New("names the vendor block itself, not a string in it")
	}
	v := reflect.ValueOf(block).Elem()
	var steps []step
	var bounds *Bounds
	for si, seg := range segs {
		v = deref(v)
		switch {
		case v.Type() == jsonType:
			return jsonTarget(steps, v, segs[si:])
		case v.Kind() == reflect.Map && v.Type().Key().Kind() == reflect.String && v.Type().Elem().Kind() == reflect.String:
			if si != len(segs)-1 || len(seg.indexes) > 0 {
				return nil, nil, fmt.Errorf("%s is a key of a string map, so it must end the path", truncate(seg.name))
			}
			return append(steps, step{kind: stepMapKey, key: seg.name}), bounds, nil
		case v.Kind() != reflect.Struct:
			return nil, nil, fmt.Errorf("%s is below a %s, which has no fields", truncate(seg.name), kindName(v.Type()))
		}
		holder := v.Type()
		f, ok := fieldByJSONName(holder, seg.name)
		if !ok {
			return nil, nil, fmt.Errorf("%s has no field %s", holder.Name(), truncate(seg.name))
		}
		bounds = lookupBounds(holder, seg.name, false)
		steps = append(steps, step{kind: stepField, field: f})
		v = v.Field(f)
		for k, i := range seg.indexes {
			v = deref(v)
			if v.Type() == jsonType {
				return jsonTarget(steps, v, append([]segment{{indexes: seg.indexes[k:]}}, segs[si+1:]...))
			}
			if v.Kind() != reflect.Slice {
				return nil, nil, fmt.Errorf("%s is a %s, not a list", truncate(seg.name), kindName(v.Type()))
			}
			if i >= v.Len() {
				return nil, nil, fmt.Errorf("%s[%d] is not in the template, whose list holds %d items", truncate(seg.name), i, v.Len())
			}
			bounds = lookupBounds(holder, seg.name, true)
			steps = append(steps, step{kind: stepIndex, index: i})
			v = v.Index(i)
		}
	}
	v = deref(v)
	switch {
	case v.Type() == jsonType:
		return jsonTarget(steps, v, nil)
	case v.Kind() == reflect.String:
		return steps, bounds, nil
	}
	return nil, nil, fmt.Errorf("names a %s, not a string", kindName(v.Type()))
}

// jsonTarget ends steps with the rest of the path, segs, below the
// free-form JSON value v.
func jsonTarget(steps []step, v reflect.Value, segs []segment) ([]step, *Bounds, error) {
	js, err := resolveJSON(v.Interface().(apiextensionsv1.JSON), segs)
	if err != nil {
		return nil, nil, err
	}
	return append(steps, step{kind: stepJSON, json: js}), nil, nil
}

// resolveJSON checks the path's rest (segments below a free-form value)
// against the template's value raw: every index is held, every key it
// passes through holds an object or nothing, and the target holds nothing,
// null or a string, so a caller's string never replaces a structure.
func resolveJSON(raw apiextensionsv1.JSON, segs []segment) ([]jsonStep, error) {
	var steps []jsonStep
	for _, s := range segs {
		if s.name != "" {
			steps = append(steps, jsonStep{key: s.name, index: -1})
		}
		for _, idx := range s.indexes {
			steps = append(steps, jsonStep{index: idx})
		}
	}
	doc, err := decodeJSON(raw.Raw)
	if err != nil {
		return nil, fmt.Errorf("the template's value does not parse: %w", err)
	}
	for _, s := range steps {
		switch cur := doc.(type) {
		case nil:
			if s.index >= 0 {
				return nil, fmt.Errorf("[%d] is not in the template", s.index)
			}
			doc = nil
		case map[string]any:
			if s.index >= 0 {
				return nil, fmt.Errorf("[%d] indexes an object, not a list", s.index)
			}
			doc = cur[s.key]
		case []any:
			if s.index < 0 {
				return nil, fmt.Errorf("%s is a key of a list, not an object", truncate(s.key))
			}
			if s.index >= len(cur) {
				return nil, fmt.Errorf("[%d] is not in the template, whose list holds %d items", s.index, len(cur))
			}
			doc = cur[s.index]
		default:
			return nil, errors.New("goes below a value that is neither an object nor a list")
		}
	}
	switch doc.(type) {
	case nil, string:
		return steps, nil
	}
	return nil, errors.New("names a value of the template that is not a string: a parameter may only fill a string")
}

// decodeJSON parses raw keeping numbers as written; empty raw is nil.
func decodeJSON(raw []byte) (any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// deref follows pointers; a nil pointer gives its element type's zero value.
func deref(v reflect.Value) reflect.Value {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return reflect.New(v.Type().Elem()).Elem()
		}
		v = v.Elem()
	}
	return v
}

// fieldByJSONName is the index of t's field whose JSON name is name.
func fieldByJSONName(t reflect.Type, name string) (int, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if n, _, _ := strings.Cut(f.Tag.Get("json"), ","); f.IsExported() && n == name {
			return i, true
		}
	}
	return 0, false
}

// kindName says what a value of type t is, for messages.
func kindName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		return "object"
	case reflect.Slice:
		return "list"
	case reflect.Map:
		return "map"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "number"
	}
	return t.Kind().String()
}

// truncate bounds a name or path an author or caller wrote before it is
// quoted in a message.
func truncate(s string) string {
	const limit = 64
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return strconv.Quote(s)
}
