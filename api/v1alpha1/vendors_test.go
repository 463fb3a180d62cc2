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

package v1alpha1

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// The tests in this file fail when the places of the API that must list
// every vendor disagree: the two unions (generated from the Vendor*
// constants by hack/vendorunions), the Vendor* constants and the admission
// rules of the generated CRDs (run `make manifests` after editing a vendor
// file).

// TestUnionsHaveOnePointerPerVendor checks that VendorParams has a block for
// exactly the vendors of VendorConfig, in the same order, each an optional
// pointer, which Vendor() relies on.
func TestUnionsHaveOnePointerPerVendor(t *testing.T) {
	config, params := reflect.TypeFor[VendorConfig](), reflect.TypeFor[VendorParams]()
	if config.NumField() != params.NumField() {
		t.Fatalf("VendorConfig has %d blocks, VendorParams %d", config.NumField(), params.NumField())
	}
	for i := range config.NumField() {
		for _, f := range []reflect.StructField{config.Field(i), params.Field(i)} {
			tag := f.Tag.Get("json")
			if f.Type.Kind() != reflect.Pointer || f.Type.Elem().Kind() != reflect.Struct || !strings.HasSuffix(tag, ",omitempty") {
				t.Errorf("%s: every union field must be a pointer to a struct tagged omitempty, got %s `json:%q`", f.Name, f.Type, tag)
			}
		}
		if a, b := blockName(config.Field(i)), blockName(params.Field(i)); a != b {
			t.Errorf("block %d is %q in VendorConfig but %q in VendorParams", i, a, b)
		}
	}
}

// TestVendorNamesTheSetBlock sets each block alone and expects Vendor() to
// name it.
func TestVendorNamesTheSetBlock(t *testing.T) {
	for _, union := range []interface{ Vendor() string }{&VendorConfig{}, &VendorParams{}} {
		v := reflect.ValueOf(union).Elem()
		if got := union.Vendor(); got != "" {
			t.Errorf("%T with no block: Vendor() = %q", union, got)
		}
		for i, want := range Vendors() {
			v.Field(i).Set(reflect.New(v.Field(i).Type().Elem()))
			if got := union.Vendor(); got != want {
				t.Errorf("%T with %s set: Vendor() = %q", union, want, got)
			}
			v.Field(i).SetZero()
		}
	}
}

// TestEveryVendorHasAConstant parses the package for Vendor* constants and
// expects exactly one per block, equal to the block's name.
func TestEveryVendorHasAConstant(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var consts []string
	for _, path := range files {
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, name := range vs.Names {
				if lit, ok := valueAt(vs, i).(*ast.BasicLit); ok && strings.HasPrefix(name.Name, "Vendor") && lit.Kind == token.STRING {
					v, _ := strconv.Unquote(lit.Value)
					consts = append(consts, v)
				}
			}
			return true
		})
	}
	slices.Sort(consts)
	want := slices.Sorted(slices.Values(Vendors()))
	if !slices.Equal(consts, want) {
		t.Errorf("Vendor* constants are %v, the unions' blocks %v: mark each with +embedtokens:vendor:doc and run make manifests", consts, want)
	}
}

func valueAt(vs *ast.ValueSpec, i int) ast.Expr {
	if i < len(vs.Values) {
		return vs.Values[i]
	}
	return nil
}

// TestAdmissionRulesNameEveryVendor reads the generated CRDs and expects
// every rule that must list the vendors to name each block: exactly one
// block per provider and per request, https for every URL field, and a
// namespace on every Secret reference of a ClusterEmbedProvider.
func TestAdmissionRulesNameEveryVendor(t *testing.T) {
	provider := specSchema(t, "embedtokens.io_embedproviders.yaml")
	cluster := specSchema(t, "embedtokens.io_clusterembedproviders.yaml")
	request := specSchema(t, "embedtokens.io_embedtokenrequests.yaml")
	exactlyOne := ruleWith(t, provider, "exactly one vendor block")
	exactlyOneParams := ruleWith(t, request, "exactly one vendor parameter block")
	https := ruleWith(t, provider, "https://")
	namespaces := ruleWith(t, cluster, "must set namespace")
	for _, v := range Vendors() {
		for _, rule := range []string{exactlyOne, exactlyOneParams} {
			if !strings.Contains(rule, "has(self."+v+")") {
				t.Errorf("%s is missing from the rule %q", v, rule)
			}
		}
		block := provider.Properties[v]
		for _, path := range urlPaths(block, "self."+v) {
			if !strings.Contains(https, path+".startsWith('https://')") {
				t.Errorf("%s is a URL but the https rule does not check it", path)
			}
		}
		for _, path := range secretRefPaths(block, "self."+v) {
			if !strings.Contains(namespaces, path) {
				t.Errorf("the ClusterEmbedProvider namespace rule does not check %s", path)
			}
		}
	}
}

// specSchema is the spec schema of the generated CRD file.
func specSchema(t *testing.T, file string) apiextensionsv1.JSONSchemaProps {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", file))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatal(err)
	}
	return crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
}

// ruleWith is the one rule of s whose message contains text.
func ruleWith(t *testing.T, s apiextensionsv1.JSONSchemaProps, text string) string {
	t.Helper()
	var found []string
	for _, r := range s.XValidations {
		if strings.Contains(r.Message, text) {
			found = append(found, r.Rule)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one spec rule whose message has %q, found %d", text, len(found))
	}
	return found[0]
}

func hasRule(s apiextensionsv1.JSONSchemaProps, text string) bool {
	return slices.ContainsFunc(s.XValidations, func(r apiextensionsv1.ValidationRule) bool { return strings.Contains(r.Rule, text) })
}

// urlPaths is the path of every URL field below s, at any depth outside
// lists, as the https rule must name it: "self.http.auth.login.url".
func urlPaths(s apiextensionsv1.JSONSchemaProps, path string) []string {
	var out []string
	for name, prop := range s.Properties {
		if hasRule(prop, "isURL(self)") {
			out = append(out, path+"."+name)
		}
		out = append(out, urlPaths(prop, path+"."+name)...)
	}
	return out
}

// secretRefPaths is how the namespace rule must reach each Secret or
// ServiceAccount reference below s: "has(self.qrvey.apiKeySecretRef.__namespace__)" for a field, and
// for one inside a list the list's path and the element's path, as in
// "self.http.headers.all(h, ... has(h.valueFrom.secretKeyRef.__namespace__))".
func secretRefPaths(s apiextensionsv1.JSONSchemaProps, path string) []string {
	_, key := s.Properties["key"]
	if (key || strings.HasSuffix(path, ".serviceAccountRef")) && s.Properties["namespace"].Type == "string" && s.Properties["name"].Type == "string" {
		return []string{"has(" + path + ".__namespace__)"}
	}
	var out []string
	for name, prop := range s.Properties {
		out = append(out, secretRefPaths(prop, path+"."+name)...)
	}
	if s.Items != nil && s.Items.Schema != nil {
		for _, inner := range secretRefPaths(*s.Items.Schema, "") {
			out = append(out, path+".all(", strings.Replace(inner, "has(.", ".", 1))
		}
	}
	return out
}
