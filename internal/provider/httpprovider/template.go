package httpprovider

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// escapeFunc is appended to every output action so values are JSON-escaped
// by default, the way html/template escapes for HTML.
const escapeFunc = "_jsonEscape"

// TemplateData is what a body template sees as its dot.
type TemplateData struct {
	// Vars are the request's spec.http.variables, as {{ .Vars.name }}.
	// A missing variable is an error, never an empty string.
	Vars map[string]string
	// LifetimeSeconds is the requested token lifetime in whole seconds, for
	// vendors that take a validity in the request body.
	LifetimeSeconds int64
	// Auth is the result of spec.http.auth, as {{ .Auth.AccessToken }}, for
	// vendors that want the access token in the body; nil without auth.
	Auth *AuthData
}

// AuthData is what the body template sees of the auth step.
type AuthData struct {
	// AccessToken is the auth step's token, cached per provider.
	AccessToken string
}

// Field names of TemplateData, which checkFields looks for.
const (
	fieldVars     = "Vars"
	fieldLifetime = "LifetimeSeconds"
	fieldAuth     = "Auth"
)

// SecretFunc reads one Secret key for the template's secret function.
type SecretFunc func(ref v1alpha1.SecretKeySelector) (string, error)

// rawValue is template output that must not be escaped.
type rawValue string

// Limits of a body template beyond its length (the CRD caps it at 16384
// characters), checked when it is parsed so a provider's Ready condition
// reports them. No real body comes near them.
const (
	// maxSecretRefs bounds the distinct Secret keys a template reads: each
	// is an API read per token.
	maxSecretRefs = 16
	// maxVariables bounds variable declarations and assignments.
	maxVariables = 64
)

// funcs are the template functions for one render: the bounded built-ins,
// raw and json (charged to b like every function that builds a string), the
// escaper that ends every output, and secret, which is replaced per render.
func funcs(b *budget, secret func(name, key string) (string, error)) template.FuncMap {
	fm := boundedFuncs(b)
	fm["secret"] = secret
	fm["raw"] = func(v any) (rawValue, error) {
		return build(b, sizeOf(v, 0), func() rawValue { return rawValue(fmt.Sprint(v)) })
	}
	fm["json"] = func(v any) (rawValue, error) { return jsonValue(b, v) }
	fm[escapeFunc] = func(v any) (string, error) { return escapeJSON(b, v) }
	return fm
}

// parseBody parses a body template with the given secret function, rejects
// constructs a request body does not need, and appends the JSON escaper to
// every output. Without range, define, template or block every action runs
// at most once, and every function result is charged to the render's budget,
// so rendering is bounded in memory and time whatever the template does.
// field names the template in messages (spec.http.body, say).
func parseBody(src, field string, b *budget, secret func(name, key string) (string, error)) (*template.Template, error) {
	t, err := template.New("body").Option("missingkey=error").Funcs(funcs(b, secret)).Parse(src)
	if err != nil {
		return nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "%s is not a valid template: %s", field, trimTemplateErr(err))
	}
	if len(t.Templates()) > 1 {
		return nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "%s must not define templates", field)
	}
	if t.Tree == nil { // an empty body
		return t, nil
	}
	if err := check(t.Root); err != nil {
		return nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "%s: %v", field, err)
	}
	walk(t.Root, func(n parse.Node) {
		if a, ok := n.(*parse.ActionNode); ok && len(a.Pipe.Decl) == 0 {
			a.Pipe.Cmds = append(a.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: a.Pos,
				Args: []parse.Node{parse.NewIdentifier(escapeFunc).SetTree(nil).SetPos(a.Pos)}})
		}
	})
	return t, nil
}

// check rejects what a body template may not do: loops and sub-templates,
// call (and the escaper, which is the operator's), secret with computed arguments or too many Secrets, printf formats
// with computed or oversized widths, and too many variables.
func check(root parse.Node) error {
	var bad error
	refs := map[v1alpha1.SecretKeySelector]bool{}
	vars := 0
	walk(root, func(n parse.Node) {
		switch n := n.(type) {
		case *parse.RangeNode, *parse.TemplateNode:
			bad = cmp.Or(bad, errors.New("range and template actions are not supported"))
		case *parse.PipeNode:
			vars += len(n.Decl)
		case *parse.IdentifierNode:
			if n.Ident == "call" || n.Ident == escapeFunc {
				bad = cmp.Or(bad, fmt.Errorf("%s is not supported", n.Ident))
			}
		case *parse.CommandNode:
			ref, err := secretCall(n)
			if ref != nil {
				refs[*ref] = true
			}
			bad = cmp.Or(bad, err, checkCommand(n))
		}
	})
	switch {
	case bad != nil:
		return bad
	case len(refs) > maxSecretRefs:
		return fmt.Errorf("a template may read at most %d Secret keys, not %d", maxSecretRefs, len(refs))
	case vars > maxVariables:
		return fmt.Errorf("a template may declare or assign at most %d variables, not %d", maxVariables, vars)
	}
	return nil
}

// checkCommand refuses a literal printf format that printf would refuse
// when rendering, so the mistake shows before any request.
func checkCommand(c *parse.CommandNode) error {
	if id, ok := c.Args[0].(*parse.IdentifierNode); ok && id.Ident == "printf" && len(c.Args) > 1 {
		if f, ok := c.Args[1].(*parse.StringNode); ok {
			_, _, err := formatVerbs(f.Text)
			return err
		}
	}
	return nil
}

// noSecret stands in for the secret function when a template is only parsed.
func noSecret(string, string) (string, error) { return "", nil }

// checkBody parses a body template without rendering it, for validation,
// and returns the fields of TemplateData it reads: a name printed as .Name
// or $.Name anywhere (inside a with too, so it may over-report).
func checkBody(src, field string) (map[string]bool, error) {
	t, err := parseBody(src, field, newBudget(), noSecret)
	if err != nil || t.Tree == nil {
		return nil, err
	}
	fields := map[string]bool{}
	walk(t.Root, func(n parse.Node) {
		switch n := n.(type) {
		case *parse.FieldNode:
			fields[n.Ident[0]] = true
		case *parse.VariableNode:
			if n.Ident[0] == "$" && len(n.Ident) > 1 {
				fields[n.Ident[1]] = true
			}
		}
	})
	return fields, nil
}

// BodySecretRefs lists the Secret keys a body template reads, so the
// provider's Ready condition can report a missing one before any request.
func BodySecretRefs(src string) ([]v1alpha1.SecretKeySelector, error) {
	t, err := parseBody(src, "spec.http.body", newBudget(), noSecret)
	if err != nil || t.Tree == nil {
		return nil, err
	}
	var refs []v1alpha1.SecretKeySelector
	walk(t.Root, func(n parse.Node) {
		if c, ok := n.(*parse.CommandNode); ok {
			if ref, _ := secretCall(c); ref != nil {
				refs = append(refs, *ref)
			}
		}
	})
	return refs, nil
}

// RenderBody renders a body template. Every value printed is JSON-escaped
// as the inside of a string unless it passes through raw or json. Each
// Secret key is read once per render and charged to its budget. Secret
// values never appear in errors: a failed secret read returns that read's
// own error, and other messages have the values read so far redacted.
func RenderBody(src string, data TemplateData, secret SecretFunc) ([]byte, error) {
	return renderBody(src, "spec.http.body", data, secret)
}

// renderBody is RenderBody for the template named field.
func renderBody(src, field string, data TemplateData, secret SecretFunc) ([]byte, error) {
	var readErr error
	read := map[v1alpha1.SecretKeySelector]string{}
	b := newBudget()
	t, err := parseBody(src, field, b, func(name, key string) (string, error) {
		ref, err := secretRef(name, key)
		if v, ok := read[ref]; ok && err == nil {
			return v, nil
		}
		if err == nil {
			var v string
			if v, err = secret(ref); err == nil {
				read[ref] = v
				if err = b.reserve(len(v)); err == nil {
					b.charge(len(v))
					return v, nil
				}
			}
		}
		readErr = cmp.Or(readErr, err)
		return "", err
	})
	if err != nil {
		return nil, err
	}
	if data.Vars == nil {
		data.Vars = map[string]string{}
	}
	out := b.out
	if err := t.Execute(out, data); err != nil {
		if readErr != nil && !errors.Is(readErr, errBudget) {
			return nil, readErr
		}
		return nil, provider.Redact(provider.Permanent(v1alpha1.ReasonInvalidRequest,
			"%s cannot be rendered with the request's variables: %s", field, trimTemplateErr(err)), slices.Collect(maps.Values(read))...)
	}
	return out.Bytes(), nil
}

// secretRef reads the arguments of {{ secret "name" "key" }}; the name may
// be "namespace/name", which a ClusterEmbedProvider needs.
func secretRef(name, key string) (v1alpha1.SecretKeySelector, error) {
	ns, n, hasNS := strings.Cut(name, "/")
	if !hasNS {
		ns, n = "", name
	}
	if n == "" || key == "" || (hasNS && ns == "") || strings.Contains(n, "/") {
		return v1alpha1.SecretKeySelector{}, provider.Permanent(v1alpha1.ReasonProviderInvalid,
			"secret %q %q: want secret \"name\" \"key\" or secret \"namespace/name\" \"key\"", name, key)
	}
	return v1alpha1.SecretKeySelector{Namespace: ns, Name: n, Key: key}, nil
}

// secretCall checks a call of the secret function: its two arguments must be
// string literals, so a request's variables can never choose which Secret is
// read. It returns nil, nil for any other command.
func secretCall(c *parse.CommandNode) (*v1alpha1.SecretKeySelector, error) {
	if id, ok := c.Args[0].(*parse.IdentifierNode); !ok || id.Ident != "secret" {
		return nil, nil
	}
	var args []string
	for _, a := range c.Args[1:] {
		if s, ok := a.(*parse.StringNode); ok {
			args = append(args, s.Text)
		}
	}
	if len(args) != 2 || len(c.Args) != 3 {
		return nil, errors.New(`secret takes two string literals: {{ secret "name" "key" }}`)
	}
	ref, err := secretRef(args[0], args[1])
	if err != nil {
		return nil, err
	}
	return &ref, nil
}

// walk visits every node of a template tree.
func walk(n parse.Node, fn func(parse.Node)) {
	fn(n)
	switch n := n.(type) {
	case *parse.ListNode:
		for _, c := range n.Nodes {
			walk(c, fn)
		}
	case *parse.ActionNode:
		walk(n.Pipe, fn)
	case *parse.PipeNode:
		for _, c := range n.Cmds {
			walk(c, fn)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			walk(a, fn)
		}
	case *parse.ChainNode:
		walk(n.Node, fn)
	case *parse.IfNode:
		walkBranch(&n.BranchNode, fn)
	case *parse.WithNode:
		walkBranch(&n.BranchNode, fn)
	case *parse.RangeNode:
		walkBranch(&n.BranchNode, fn)
	}
}

// walkBranch visits an if, with or range; only its else list may be nil.
func walkBranch(b *parse.BranchNode, fn func(parse.Node)) {
	walk(b.Pipe, fn)
	walk(b.List, fn)
	if b.ElseList != nil {
		walk(b.ElseList, fn)
	}
}

// escapeJSON writes a value as the inside of a JSON string. It ends every
// output action, so its result is bounded by the room left in the output.
func escapeJSON(b *budget, v any) (string, error) {
	if r, ok := v.(rawValue); ok {
		return string(r), nil
	}
	s, ok := v.(string)
	if !ok {
		var err error
		if s, err = build(b, sizeOf(v, 0), func() string { return fmt.Sprint(v) }); err != nil {
			return "", err
		}
	}
	if bound := jsonStringBound(s); bound > b.out.max-b.out.Len() {
		return "", b.out.exceeded()
	}
	out, _ := json.Marshal(s) // marshalling a string cannot fail
	return string(out[1 : len(out)-1]), nil
}

// jsonValue writes a value as a complete JSON value (a quoted string, say),
// for templates that choose the quotes themselves; charged to b.
func jsonValue(b *budget, v any) (rawValue, error) {
	bound := maxExpansion * sizeOf(v, 0)
	if s, ok := v.(string); ok {
		bound = jsonStringBound(s)
	}
	if err := b.reserve(bound); err != nil {
		return "", err
	}
	out, err := json.Marshal(v)
	if err != nil {
		return "", errors.New("json: value cannot be encoded")
	}
	b.charge(len(out))
	return rawValue(out), nil
}

// trimTemplateErr drops text/template's "template: " prefix.
func trimTemplateErr(err error) string {
	return strings.TrimPrefix(err.Error(), "template: ")
}

// limitedBuffer fails writes beyond max, so a template cannot build an
// unbounded body.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.Len()+len(p) > l.max {
		return 0, l.exceeded()
	}
	return l.Buffer.Write(p)
}

func (l *limitedBuffer) exceeded() error {
	return fmt.Errorf("rendered body exceeds %d bytes", l.max)
}
