// Package docs checks the user documentation against the code: every
// condition reason is explained in docs/troubleshooting.md, and every CRD
// field has a description for `kubectl explain`.
package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

const root = "../.."

// conditionReasons returns the value of every Reason* constant declared in
// api/v1alpha1/conditions.go, so a reason added there must be documented.
func conditionReasons(t *testing.T) []string {
	t.Helper()
	file, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, "api", "v1alpha1", "conditions.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, decl := range file.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Reason") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("%s is not a string literal", name.Name)
				}
				v, _ := strconv.Unquote(lit.Value)
				reasons = append(reasons, v)
			}
		}
	}
	if len(reasons) < 10 {
		t.Fatalf("found only %d reasons in conditions.go: %v", len(reasons), reasons)
	}
	return reasons
}

// TestTroubleshootingListsEveryReason fails when a condition reason has no
// "### Reason" section with its meaning and fix in docs/troubleshooting.md.
func TestTroubleshootingListsEveryReason(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(root, "docs", "troubleshooting.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{}
	for _, part := range strings.Split(string(doc), "\n### ")[1:] {
		heading, body, _ := strings.Cut(part, "\n")
		sections[strings.Trim(heading, "` ")] = body
	}
	for _, reason := range conditionReasons(t) {
		body, ok := sections[reason]
		switch {
		case !ok:
			t.Errorf("docs/troubleshooting.md has no \"### %s\" section", reason)
		case !strings.Contains(body, "**Meaning**") || !strings.Contains(body, "**Fix**"):
			t.Errorf("the %s section lacks a **Meaning** or a **Fix**", reason)
		}
	}
}

// TestEveryCRDFieldIsDescribed walks the generated CRD schemas and fails on
// any property without a description, which `kubectl explain` would show
// empty. Fix it with a doc comment on the Go field.
func TestEveryCRDFieldIsDescribed(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no CRDs: %v", err)
	}
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(raw, &crd); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, v := range crd.Spec.Versions {
			var missing []string
			walk(v.Schema.OpenAPIV3Schema, crd.Spec.Names.Kind, &missing)
			sort.Strings(missing)
			for _, m := range missing {
				t.Errorf("%s %s: %s has no description", crd.Spec.Names.Kind, v.Name, m)
			}
		}
	}
}

// walk records the path of every property below s that lacks a description.
func walk(s *apiextensionsv1.JSONSchemaProps, path string, missing *[]string) {
	if s == nil {
		return
	}
	for name, prop := range s.Properties {
		p := path + "." + name
		if strings.TrimSpace(prop.Description) == "" && !inherited(path, name) {
			*missing = append(*missing, p)
		}
		walk(&prop, p, missing)
	}
	if s.Items != nil {
		walk(s.Items.Schema, path+"[]", missing)
	}
	if s.AdditionalProperties != nil {
		walk(s.AdditionalProperties.Schema, path+"{}", missing)
	}
}

// inherited reports the top-level fields every Kubernetes object has, whose
// descriptions kubectl explain takes from the API machinery.
func inherited(path, name string) bool {
	return !strings.Contains(path, ".") && (name == "apiVersion" || name == "kind" || name == "metadata")
}

// TestREADMEListsEveryReason fails when the README's list of reasons (the
// paragraph after its conditions table) misses a condition reason.
func TestREADMEListsEveryReason(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, list, ok := strings.Cut(string(readme), "Reasons (also used as Event reasons):")
	if !ok {
		t.Fatal("README.md has no \"Reasons (also used as Event reasons):\" paragraph")
	}
	list, _, _ = strings.Cut(list, "\n\n")
	for _, reason := range conditionReasons(t) {
		if !strings.Contains(list, "`"+reason+"`") {
			t.Errorf("README.md's reason list lacks `%s`", reason)
		}
	}
}

// TestLayoutNamesEveryPackage fails when a package directly under internal/
// is missing from the README's layout list, or the list names one that is
// gone, and when internal/controller's doc.go does not name a step the
// reconciler runs.
func TestLayoutNamesEveryPackage(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(readme), "Layout, one package per concern:")
	if !ok {
		t.Fatal(`README.md has no "Layout, one package per concern:" list`)
	}
	layout, _, _ = strings.Cut(layout, "\n\n")
	entries, err := os.ReadDir(filepath.Join(root, "internal"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && !strings.Contains(layout, "`internal/"+e.Name()+"`") {
			t.Errorf("README.md's layout does not name `internal/%s`", e.Name())
		}
	}
	for _, named := range regexp.MustCompile("`internal/([a-z0-9]+)`").FindAllStringSubmatch(layout, -1) {
		if _, err := os.Stat(filepath.Join(root, "internal", named[1])); err != nil {
			t.Errorf("README.md's layout names `internal/%s`, which does not exist", named[1])
		}
	}

	src, err := os.ReadFile(filepath.Join(root, "internal", "controller", "embedtokenrequest_controller.go"))
	if err != nil {
		t.Fatal(err)
	}
	_, list, ok := strings.Cut(string(src), "return []step{")
	if !ok {
		t.Fatal("embedtokenrequest_controller.go has no step list")
	}
	list, _, _ = strings.Cut(list, "}")
	doc, err := os.ReadFile(filepath.Join(root, "internal", "controller", "doc.go"))
	if err != nil {
		t.Fatal(err)
	}
	steps := regexp.MustCompile(`r\.(\w+),`).FindAllStringSubmatch(list, -1)
	if len(steps) < 5 {
		t.Fatalf("found only %d steps in the step list", len(steps))
	}
	for i, st := range steps {
		if want := strconv.Itoa(i+1) + ". " + st[1]; !strings.Contains(string(doc), want) {
			t.Errorf("internal/controller/doc.go does not list step %q", want)
		}
	}
}
