/*
Copyright 2026 The embed-token-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command vendorunions writes the parts of the API that name every vendor,
// so that a vendor is added in its own vendor_<name>_types.go alone:
//
//   - zz_generated.vendors.go: the unions VendorConfig and VendorParams, one
//     pointer per vendor, with their admission rules (exactly one block;
//     https:// for every URL field of a provider block);
//   - the admission rule on ClusterEmbedProviderSpec that every Secret and
//     ServiceAccount reference of a cluster-scoped provider names its
//     namespace, written into the marker line above that type.
//
// A vendor is a `const Vendor<Name> = "<block>"` whose doc comment carries
// the marker +embedtokens:vendor:doc="<the provider block's description>";
// its blocks are the types <Name>Provider and <Name>Params. The rules are
// derived from those types' source: a URL field is a string field with an
// isURL(self) rule, a reference is a struct with string fields name and
// namespace. The command reads the API's source only (go/ast), so it runs
// even while the package does not compile, and runs through go generate in
// api/v1alpha1 before hack/templatepaths and controller-gen.
package main

import (
	"bytes"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/embedtokens/embed-token-operator/hack/markerline"
)

// Output is the generated union file, in the API package's directory.
const Output = "zz_generated.vendors.go"

// Rule messages. Admission tests and users match on their leading words,
// so these keep their meaning when a vendor is added.
const (
	exactlyOneMessage       = "exactly one vendor block must be set: "
	exactlyOneParamsMessage = "exactly one vendor parameter block must be set: "
	httpsMessage            = "vendor URLs must use https:// unless allowInsecureHTTP is true"
	namespaceMessage        = "every Secret reference of a ClusterEmbedProvider must set namespace, and so must every ServiceAccount reference"
)

// docMarker introduces a vendor constant's description of its provider block.
const docMarker = "// +embedtokens:vendor:doc="

// clusterSpec is the type whose marker line carries the namespace rule.
const clusterSpec = "ClusterEmbedProviderSpec"

func main() {
	dir := flag.String("api", ".", "the API package's directory")
	flag.Parse()
	files, err := Generate(*dir)
	if err == nil {
		for path, src := range files {
			if err = os.WriteFile(path, src, 0o644); err != nil {
				break
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vendorunions:", err)
		os.Exit(1)
	}
}

// Generate returns the files to write, by path: the union file and the file
// declaring ClusterEmbedProviderSpec with its rule up to date. Tests compare
// them with the files on disk.
func Generate(dir string) (map[string][]byte, error) {
	a, err := load(dir)
	if err != nil {
		return nil, err
	}
	unions, err := a.unionFile()
	if err != nil {
		return nil, err
	}
	nsRule, err := a.namespaceRule()
	if err != nil {
		return nil, err
	}
	path, src, err := a.withMarker(clusterSpec, nsRule, namespaceMessage)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{filepath.Join(dir, Output): unions, path: src}, nil
}

// vendor is one vendor constant: its Go name (Vendor<Go>), block name and
// the description of its provider block.
type vendor struct {
	goName, block, doc string
}

// field is what the rules need of one struct field.
type field struct {
	json     string // "" for an inlined field
	typ      ast.Expr
	optional bool
	url      bool // a string field with an isURL(self) rule
}

// api is the parsed API package.
type api struct {
	fset    *token.FileSet
	files   map[string]*ast.File // by path, the generated union file left out
	structs map[string][]field
	vendors []vendor
}

// load parses the package in dir, without its tests and without the union
// file, which it rebuilds in memory from the vendor constants.
func load(dir string) (*api, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	a := &api{fset: token.NewFileSet(), files: map[string]*ast.File{}, structs: map[string][]field{}}
	for _, path := range paths {
		if strings.HasSuffix(path, "_test.go") || filepath.Base(path) == Output {
			continue
		}
		f, err := parser.ParseFile(a.fset, path, nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		a.files[path] = f
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, spec := range gd.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					if st, ok := s.Type.(*ast.StructType); ok {
						a.structs[s.Name.Name] = structFields(st)
					}
				case *ast.ValueSpec:
					v, ok, err := vendorOf(gd, s)
					if err != nil {
						return nil, fmt.Errorf("%s: %w", a.fset.Position(s.Pos()), err)
					}
					if ok {
						a.vendors = append(a.vendors, v)
					}
				}
			}
		}
	}
	if len(a.vendors) == 0 {
		return nil, fmt.Errorf("no constant in %s carries %s", dir, strings.TrimPrefix(docMarker, "// "))
	}
	slices.SortFunc(a.vendors, func(x, y vendor) int { return cmp.Compare(x.block, y.block) })
	for i, v := range a.vendors {
		if i > 0 && a.vendors[i-1].block == v.block {
			return nil, fmt.Errorf("two vendors have the block %q", v.block)
		}
		for _, suffix := range []string{"Provider", "Params"} {
			if _, ok := a.structs[v.goName+suffix]; !ok {
				return nil, fmt.Errorf("vendor %s has no struct type %s%s", v.block, v.goName, suffix)
			}
		}
	}
	a.structs["VendorConfig"] = a.union("Provider")
	a.structs["VendorParams"] = a.union("Params")
	return a, nil
}

// vendorOf reads a constant declaration: a vendor when its doc comment has
// the vendor marker, which needs the form const Vendor<Go> = "<block>".
func vendorOf(gd *ast.GenDecl, s *ast.ValueSpec) (vendor, bool, error) {
	doc := s.Doc
	if doc == nil && len(gd.Specs) == 1 {
		doc = gd.Doc
	}
	if gd.Tok != token.CONST || doc == nil {
		return vendor{}, false, nil
	}
	for _, c := range doc.List {
		quoted, ok := strings.CutPrefix(c.Text, docMarker)
		if !ok {
			continue
		}
		text, err := strconv.Unquote(quoted)
		if err != nil || text == "" {
			return vendor{}, false, fmt.Errorf("%s wants a non-empty double-quoted string, got %s", strings.TrimPrefix(docMarker, "// "), quoted)
		}
		var lit *ast.BasicLit
		if len(s.Names) == 1 && len(s.Values) == 1 {
			lit, _ = s.Values[0].(*ast.BasicLit)
		}
		goName, named := strings.CutPrefix(s.Names[0].Name, "Vendor")
		if lit == nil || lit.Kind != token.STRING || !named || goName == "" {
			return vendor{}, false, errors.New(`a vendor marker belongs on one constant Vendor<Name> = "<block>"`)
		}
		block, _ := strconv.Unquote(lit.Value)
		return vendor{goName: goName, block: block, doc: text}, true, nil
	}
	return vendor{}, false, nil
}

// structFields reads the fields of a struct type.
func structFields(st *ast.StructType) []field {
	var out []field
	for _, f := range st.Fields.List {
		var tag reflect.StructTag
		if f.Tag != nil {
			raw, _ := strconv.Unquote(f.Tag.Value)
			tag = reflect.StructTag(raw)
		}
		name, opts, _ := strings.Cut(tag.Get("json"), ",")
		opts = "," + opts + ","
		inline := strings.Contains(opts, ",inline,")
		if name == "-" || (len(f.Names) == 0 && !inline) {
			continue // not in the schema, or embedded without inline
		}
		if name == "" && !inline {
			name = f.Names[0].Name
		}
		fd := field{json: name, typ: f.Type}
		fd.optional = strings.Contains(opts, ",omitempty,") || strings.Contains(opts, ",omitzero,")
		if f.Doc != nil {
			for _, c := range f.Doc.List {
				switch {
				case c.Text == "// +optional" || c.Text == "// +kubebuilder:validation:Optional":
					fd.optional = true
				case c.Text == "// +required" || c.Text == "// +kubebuilder:validation:Required":
					fd.optional = false
				case strings.HasPrefix(c.Text, "// +kubebuilder:validation:XValidation:rule=\"isURL(self)"):
					fd.url = true
				}
			}
		}
		if inline {
			fd.json = ""
		}
		out = append(out, fd)
	}
	return out
}

// union is VendorConfig (suffix Provider) or VendorParams (suffix Params):
// one optional pointer per vendor.
func (a *api) union(suffix string) []field {
	out := make([]field, len(a.vendors))
	for i, v := range a.vendors {
		out[i] = field{json: v.block, typ: &ast.StarExpr{X: ast.NewIdent(v.goName + suffix)}, optional: true}
	}
	return out
}

// unionFile renders zz_generated.vendors.go.
func (a *api) unionFile() ([]byte, error) {
	https, err := a.conditions("VendorConfig", "self", isURL, 0)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("// Code generated by hack/vendorunions from the vendor constants of the vendor_*_types.go files. DO NOT EDIT.\n\n")
	b.WriteString("package v1alpha1\n\n")
	b.WriteString("// VendorConfig holds one pointer per vendor; exactly one is set. It is only\n")
	b.WriteString("// ever inlined into EmbedProviderSpec, whose allowInsecureHTTP its rules read.\n")
	b.WriteString(markerline.Marker(a.exactlyOne(), exactlyOneMessage+a.blockList()))
	if len(https) > 0 {
		b.WriteString(markerline.Marker("self.allowInsecureHTTP || "+and(https), httpsMessage))
	}
	b.WriteString("type VendorConfig struct {\n")
	for _, v := range a.vendors {
		writeField(&b, v.doc, v.goName, v.goName+"Provider", v.block)
	}
	b.WriteString("}\n\n")
	b.WriteString("// VendorParams holds one pointer per vendor; exactly one is set and it must\n")
	b.WriteString("// match the provider's vendor. It is only ever inlined into\n")
	b.WriteString("// EmbedTokenRequestSpec and EmbedTokenTemplateSpec.\n")
	b.WriteString(markerline.Marker(a.exactlyOne(), exactlyOneParamsMessage+a.blockList()))
	b.WriteString("type VendorParams struct {\n")
	for _, v := range a.vendors {
		writeField(&b, v.goName+" parameters.", v.goName, v.goName+"Params", v.block)
	}
	b.WriteString("}\n")
	return format.Source(b.Bytes())
}

// exactlyOne is the rule that exactly one vendor block is set.
func (a *api) exactlyOne() string {
	has := make([]string, len(a.vendors))
	for i, v := range a.vendors {
		has[i] = "has(self." + celName(v.block) + ")"
	}
	return "[" + strings.Join(has, ", ") + "].filter(x, x).size() == 1"
}

// blockList names every block for a message: "a, b or c".
func (a *api) blockList() string {
	names := make([]string, len(a.vendors))
	for i, v := range a.vendors {
		names[i] = v.block
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// namespaceRule is the rule on ClusterEmbedProviderSpec: every namespaced
// reference below it sets its namespace.
func (a *api) namespaceRule() (string, error) {
	conds, err := a.conditions(clusterSpec, "self", isNamespacedRef, 0)
	if err != nil {
		return "", err
	}
	if len(conds) == 0 {
		return "", fmt.Errorf("%s has no Secret or ServiceAccount reference", clusterSpec)
	}
	return strings.Join(conds, " && "), nil
}

// leaf returns the condition a field of type t at path must meet when the
// field is one the rule checks itself (a URL, a reference).
type leaf func(a *api, f field, t ast.Expr, path string) (string, bool)

// isURL checks a URL field's scheme.
func isURL(_ *api, f field, t ast.Expr, path string) (string, bool) {
	if id, ok := t.(*ast.Ident); ok && id.Name == "string" && f.url {
		return path + ".startsWith('https://')", true
	}
	return "", false
}

// isNamespacedRef checks that a reference (a struct with string fields name
// and namespace, as SecretKeySelector and ServiceAccountReference are)
// names its namespace.
func isNamespacedRef(a *api, _ field, t ast.Expr, path string) (string, bool) {
	id, ok := t.(*ast.Ident)
	if !ok {
		return "", false
	}
	strs := map[string]bool{}
	for _, f := range a.structs[id.Name] {
		if s, ok := f.typ.(*ast.Ident); ok && s.Name == "string" {
			strs[f.json] = true
		}
	}
	if strs["name"] && strs["namespace"] {
		return "has(" + path + "." + celName("namespace") + ")", true
	}
	return "", false
}

// maxDepth bounds how deep below a rule's type fields are followed; the API
// has no recursive types, so reaching it means one was added.
const maxDepth = 16

// conditions returns what every field below the struct named name, reached
// as path, must meet for check: one condition per checked field, an
// optional field's guarded by has(), a list's items checked by all().
func (a *api) conditions(name, path string, check leaf, depth int) ([]string, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%s: types nest deeper than %d", path, maxDepth)
	}
	var out []string
	for _, f := range a.structs[name] {
		p := path
		if f.json != "" {
			p = path + "." + celName(f.json)
		}
		conds, err := a.valueConditions(f, f.typ, p, check, depth)
		if err != nil {
			return nil, err
		}
		if f.optional && f.json != "" && len(conds) > 0 {
			conds = []string{"(!has(" + p + ") || " + and(conds) + ")"}
		}
		out = append(out, conds...)
	}
	return out, nil
}

// valueConditions returns what the value of type t at path must meet.
func (a *api) valueConditions(f field, t ast.Expr, path string, check leaf, depth int) ([]string, error) {
	if star, ok := t.(*ast.StarExpr); ok {
		t = star.X
	}
	if c, ok := check(a, f, t, path); ok {
		return []string{c}, nil
	}
	switch t := t.(type) {
	case *ast.Ident:
		if _, ok := a.structs[t.Name]; ok {
			return a.conditions(t.Name, path, check, depth+1)
		}
	case *ast.ArrayType:
		// The item is named by the list's initial, as in headers.all(h, ...);
		// an item's conditions name their own item only, so an inner list
		// may shadow an outer one's name.
		item := strings.ToLower(path[strings.LastIndex(path, ".")+1:][:1])
		inner, err := a.valueConditions(field{typ: t.Elt, url: f.url}, t.Elt, item, check, depth+1)
		if err != nil || len(inner) == 0 {
			return nil, err
		}
		return []string{path + ".all(" + item + ", " + and(inner) + ")"}, nil
	case *ast.MapType:
		inner, err := a.valueConditions(field{typ: t.Value, url: f.url}, t.Value, "v", check, depth+1)
		if err != nil || len(inner) == 0 {
			return nil, err
		}
		return nil, fmt.Errorf("%s: a map whose values need checking is not supported; use a list", path)
	}
	return nil, nil // another package's type, or a scalar
}

// and joins conditions that must all hold.
func and(conds []string) string {
	if len(conds) == 1 {
		return conds[0]
	}
	return "(" + strings.Join(conds, " && ") + ")"
}

// celKeywords are the property names Kubernetes escapes as __name__ in CEL.
var celKeywords = map[string]bool{
	"true": true, "false": true, "null": true, "in": true, "as": true, "break": true, "const": true,
	"continue": true, "else": true, "for": true, "function": true, "if": true, "import": true, "let": true,
	"loop": true, "package": true, "namespace": true, "return": true, "var": true, "void": true, "while": true,
}

// celName is how a rule names a property.
func celName(json string) string {
	if celKeywords[json] {
		return "__" + json + "__"
	}
	r := strings.NewReplacer("__", "__underscores__", ".", "__dot__", "-", "__dash__", "/", "__slash__")
	return r.Replace(json)
}

// writeField writes one optional union field with its doc comment.
func writeField(b *bytes.Buffer, doc, name, typ, block string) {
	for _, line := range wrap(doc, 72) {
		b.WriteString("\t// " + line + "\n")
	}
	fmt.Fprintf(b, "\t// +optional\n\t%s *%s `json:%q`\n", name, typ, block+",omitempty")
}

// wrap breaks text into lines of at most width bytes where it can.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len(line)+1+len(word) > width {
			lines, line = append(lines, line), ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	return append(lines, line)
}

// withMarker returns the file declaring typeName with the rule marker whose
// message is message replaced by rule, or added above the type.
func (a *api) withMarker(typeName, rule, message string) (string, []byte, error) {
	anchor := "type " + typeName + " struct {"
	paths := slices.Sorted(maps.Keys(a.files))
	for _, path := range paths {
		src, err := os.ReadFile(path)
		if err != nil {
			return "", nil, err
		}
		if bytes.Contains(src, []byte(anchor)) {
			out, err := markerline.Set(src, anchor, rule, message)
			return path, out, err
		}
	}
	return "", nil, fmt.Errorf("no file declares %s", typeName)
}
