package httpprovider

import (
	"fmt"
	"strconv"
	"strings"
)

// maxIndex bounds array indexes in paths; no token response is that long.
const maxIndex = 1 << 20

// Path locates one value in a decoded JSON response. It is a small subset
// of JSONPath, enough for token responses without pulling in a JSONPath
// engine: see ParsePath for the syntax.
type Path struct {
	expr  string
	steps []step
}

// step is one object key or one array index.
type step struct {
	key     string
	index   int
	isIndex bool
}

// ParsePath parses a path expression:
//
//	.data.token        object keys, separated by dots
//	data.token         the leading dot is optional
//	$.data.token       so is a leading $ (JSONPath style)
//	.items[0].token    array index (from 0)
//	.Data[".expires"]  quoted key (double or single quotes) for keys with
//	                   dots, brackets or spaces; \" \' and \\ escape
//	. or $             the whole response
//
// Errors name the expression, which is configuration and never a secret.
func ParsePath(expr string) (Path, error) {
	s := strings.TrimPrefix(strings.TrimSpace(expr), "$")
	p := Path{expr: expr}
	if s == "" && strings.TrimSpace(expr) == "" {
		return p, fmt.Errorf("path is empty")
	}
	if s == "" || s == "." {
		return p, nil
	}
	if s[0] != '.' && s[0] != '[' {
		s = "." + s // a bare first key: "data.token"
	}
	for i := 0; i < len(s); {
		var st step
		var n int
		var err error
		switch s[i] {
		case '.':
			st, n, err = parseKey(s[i+1:])
			n++
		case '[':
			st, n, err = parseBracket(s[i:])
		default:
			err = fmt.Errorf("unexpected %q", s[i])
		}
		if err != nil {
			return Path{}, fmt.Errorf("path %q: %w at offset %d", expr, err, i)
		}
		p.steps = append(p.steps, st)
		i += n
	}
	return p, nil
}

// parseKey reads a dotted key up to the next '.' or '['.
func parseKey(s string) (step, int, error) {
	end := strings.IndexAny(s, ".[")
	if end < 0 {
		end = len(s)
	}
	key := s[:end]
	switch {
	case key == "":
		return step{}, 0, fmt.Errorf("empty key")
	case strings.ContainsAny(key, `]"' `):
		return step{}, 0, fmt.Errorf("key %q needs brackets and quotes, like [\"key\"]", key)
	}
	return step{key: key}, end, nil
}

// parseBracket reads [N], ["key"] or ['key'], returning the bytes consumed.
func parseBracket(s string) (step, int, error) {
	if len(s) > 1 && (s[1] == '"' || s[1] == '\'') {
		key, n, err := parseQuoted(s[1:])
		if err != nil {
			return step{}, 0, err
		}
		if 1+n >= len(s) || s[1+n] != ']' {
			return step{}, 0, fmt.Errorf("missing ] after quoted key")
		}
		return step{key: key}, n + 2, nil
	}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return step{}, 0, fmt.Errorf("missing ]")
	}
	idx, err := strconv.Atoi(s[1:end])
	if err != nil || idx < 0 || idx > maxIndex || strings.TrimLeft(s[1:end], "0123456789") != "" {
		return step{}, 0, fmt.Errorf("[%s] is neither an index like [0] nor a quoted key like [\"k\"]", s[1:end])
	}
	return step{index: idx, isIndex: true}, end + 1, nil
}

// parseQuoted reads a quoted key starting at s[0], the quote character.
func parseQuoted(s string) (string, int, error) {
	quote := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == quote:
			return b.String(), i + 1, nil
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("unterminated quoted key")
}

// String returns the expression as written, for messages.
func (p Path) String() string { return p.expr }

// Lookup returns the value at the path in a document decoded by
// encoding/json, and whether it exists. A JSON null counts as existing.
func (p Path) Lookup(doc any) (any, bool) {
	cur := doc
	for _, st := range p.steps {
		if st.isIndex {
			list, ok := cur.([]any)
			if !ok || st.index >= len(list) {
				return nil, false
			}
			cur = list[st.index]
			continue
		}
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[st.key]; !ok {
			return nil, false
		}
	}
	return cur, true
}
