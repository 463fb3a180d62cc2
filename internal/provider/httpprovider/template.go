package httpprovider

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
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
}

// SecretFunc reads one Secret key for the template's secret function.
type SecretFunc func(ref v1alpha1.SecretKeySelector) (string, error)

// rawValue is template output that must not be escaped.
type rawValue string

// funcs are the template functions; secret is replaced per render.
func funcs(secret func(name, key string) (string, error)) template.FuncMap {
	return template.FuncMap{
		"secret":   secret,
		"raw":      func(v any) rawValue { return rawValue(fmt.Sprint(v)) },
		"json":     jsonValue,
		escapeFunc: escapeJSON,
	}
}

// parseBody parses a body template with the given secret function, rejects
// constructs a request body does not need (so rendering cost stays linear in
// the template's size), and appends the JSON escaper to every output.
func parseBody(src string, secret func(name, key string) (string, error)) (*template.Template, error) {
	t, err := template.New("body").Option("missingkey=error").Funcs(funcs(secret)).Parse(src)
	if err != nil {
		return nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "spec.http.body is not a valid template: %s", trimTemplateErr(err))
	}
	if len(t.Templates()) > 1 {
		return nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "spec.http.body must not define templates")
	}
	if t.Tree == nil { // an empty body
		return t, nil
	}
	var bad error
	walk(t.Tree.Root, func(n parse.Node) {
		switch n := n.(type) {
		case *parse.RangeNode, *parse.TemplateNode:
			bad = errors.New("range and template actions are not supported")
		case *parse.CommandNode:
			if _, err := secretCall(n); err != nil {
				bad = err
			}
		case *parse.ActionNode:
			if len(n.Pipe.Decl) == 0 {
				n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: n.Pos,
					Args: []parse.Node{parse.NewIdentifier(escapeFunc).SetTree(nil).SetPos(n.Pos)}})
			}
		}
	})
	if bad != nil {
		return nil, provider.Permanent(v1alpha1.ReasonProviderInvalid, "spec.http.body: %v", bad)
	}
	return t, nil
}

// noSecret stands in for the secret function when a template is only parsed.
func noSecret(string, string) (string, error) { return "", nil }

// checkBody parses a body template without rendering it, for validation.
func checkBody(src string) error {
	_, err := parseBody(src, noSecret)
	return err
}

// BodySecretRefs lists the Secret keys a body template reads, so the
// provider's Ready condition can report a missing one before any request.
func BodySecretRefs(src string) ([]v1alpha1.SecretKeySelector, error) {
	t, err := parseBody(src, noSecret)
	if err != nil || t.Tree == nil {
		return nil, err
	}
	var refs []v1alpha1.SecretKeySelector
	walk(t.Tree.Root, func(n parse.Node) {
		if c, ok := n.(*parse.CommandNode); ok {
			if ref, _ := secretCall(c); ref != nil {
				refs = append(refs, *ref)
			}
		}
	})
	return refs, nil
}

// RenderBody renders a body template. Every value printed is JSON-escaped
// as the inside of a string unless it passes through raw or json. Secret
// values never appear in errors: a failed secret read returns that read's
// own error, and other messages have the values read so far redacted.
func RenderBody(src string, data TemplateData, secret SecretFunc) ([]byte, error) {
	var readErr error
	var read []string
	t, err := parseBody(src, func(name, key string) (string, error) {
		ref, err := secretRef(name, key)
		if err == nil {
			var v string
			if v, err = secret(ref); err == nil {
				read = append(read, v)
				return v, nil
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
	out := &limitedBuffer{max: provider.MaxResponseBytes}
	if err := t.Execute(out, data); err != nil {
		if readErr != nil {
			return nil, readErr
		}
		return nil, provider.Redact(provider.Permanent(v1alpha1.ReasonInvalidRequest,
			"spec.http.body cannot be rendered with the request's variables: %s", trimTemplateErr(err)), read...)
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

// escapeJSON writes a value as the inside of a JSON string.
func escapeJSON(v any) string {
	if r, ok := v.(rawValue); ok {
		return string(r)
	}
	s, ok := v.(string)
	if !ok {
		s = fmt.Sprint(v)
	}
	b, _ := json.Marshal(s) // marshalling a string cannot fail
	return string(b[1 : len(b)-1])
}

// jsonValue writes a value as a complete JSON value (a quoted string, say),
// for templates that choose the quotes themselves.
func jsonValue(v any) (rawValue, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", errors.New("json: value cannot be encoded")
	}
	return rawValue(b), nil
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
		return 0, fmt.Errorf("rendered body exceeds %d bytes", l.max)
	}
	return l.Buffer.Write(p)
}
