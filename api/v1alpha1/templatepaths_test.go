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
	"reflect"
	"regexp"
	"testing"
)

// TestTemplatePathRuleIsGenerated fails when the CRD's rule on parameter
// paths is not the one the vendor blocks' Go types give: run `make
// manifests` (which runs go generate) after changing a vendor block.
func TestTemplatePathRuleIsGenerated(t *testing.T) {
	template := specSchema(t, "embedtokens.io_embedtokentemplates.yaml")
	if got, want := ruleWith(t, template, TemplatePathRuleMessage), TemplatePathRule(); got != want {
		t.Errorf("the CRD's path rule is stale; run make manifests.\n got: %s\nwant: %s", got, want)
	}
	for _, v := range Vendors() {
		if pattern := TemplatePathPattern(v); pattern == "" || !regexp.MustCompile(pattern).MatchString(examplePath(t, v)) {
			t.Errorf("%s: pattern %q does not admit its own example", v, pattern)
		}
	}
}

// TestEveryStringFieldIsAPath walks every vendor block's type and expects
// the pattern to admit a path to each string below it, and nothing to the
// numbers and booleans.
func TestEveryStringFieldIsAPath(t *testing.T) {
	params := reflect.TypeFor[VendorParams]()
	for i := range params.NumField() {
		vendor := blockName(params.Field(i))
		re := regexp.MustCompile(TemplatePathPattern(vendor))
		walkPaths(params.Field(i).Type, vendor, func(path string, fillable bool) {
			if re.MatchString(path) != fillable {
				t.Errorf("%s: pattern admits %s: %v, want %v", vendor, path, !fillable, fillable)
			}
		})
	}
}

// walkPaths calls visit with the path of every leaf below t, and whether a
// parameter may fill it.
func walkPaths(t reflect.Type, path string, visit func(string, bool)) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == jsonType:
		visit(path, true)
		visit(path+".tenant", true)
		visit(path+"[0].x_y-z", true)
	case t.Kind() == reflect.String:
		visit(path, true)
	case t.Kind() == reflect.Slice:
		walkPaths(t.Elem(), path+"[12]", visit)
	case t.Kind() == reflect.Map:
		visit(path+".someKey", true)
	case t.Kind() == reflect.Struct:
		for i := range t.NumField() {
			walkPaths(t.Field(i).Type, path+"."+blockName(t.Field(i)), visit)
		}
		visit(path+".noSuchField", false)
	default:
		visit(path, false)
	}
}

// examplePath is a path to the first string a parameter may fill in the
// vendor's block, found by walking its type as TestEveryStringFieldIsAPath
// does, so a new vendor needs no example of its own.
func examplePath(t *testing.T, vendor string) string {
	t.Helper()
	params := reflect.TypeFor[VendorParams]()
	for i := range params.NumField() {
		if blockName(params.Field(i)) != vendor {
			continue
		}
		example := ""
		walkPaths(params.Field(i).Type, vendor, func(path string, fillable bool) {
			if example == "" && fillable {
				example = path
			}
		})
		if example != "" {
			return example
		}
	}
	t.Fatalf("vendor %s has no block with a string a parameter may fill", vendor)
	return ""
}

// TestTemplatePathPattern admits and refuses paths as the API reference
// documents them.
func TestTemplatePathPattern(t *testing.T) {
	tests := []struct {
		name, vendor, path string
		admit              bool
	}{
		{"a Qlik user lookup value is a string field", VendorQlikCloud, "qlikCloud.userLookup.value", true},
		{"a Power BI identity's username is reached through a list index", VendorPowerBI, "powerBI.identities[0].username", true},
		{"a Power BI identity's role is a string list item", VendorPowerBI, "powerBI.identities[3].roles[1]", true},
		{"a JWT claim is a key of a free-form object", VendorJWT, "jwt.claims.tenant", true},
		{"a nested key of a free-form value is a path", VendorQrvey, "qrvey.permissions[0].dataset_id", true},
		{"an HTTP variable is a key of a string map", VendorHTTP, "http.variables.user-name", true},
		{"a path of another vendor's block is refused", VendorJWT, "boldBI.email", false},
		{"an unknown field is refused", VendorBoldBI, "boldBI.emails", false},
		{"a list without an index is refused", VendorPowerBI, "powerBI.identities.username", false},
		{"a struct is not a string", VendorQlikCloud, "qlikCloud.userLookup", false},
		{"a number is not a string", VendorSuperset, "superset.rls[0].dataset", false},
		{"a boolean is not a string", VendorPowerBI, "powerBI.reports[0].allowEdit", false},
		{"an index of three digits is refused", VendorPowerBI, "powerBI.identities[100].username", false},
		{"an index with a leading zero is refused", VendorPowerBI, "powerBI.identities[01].username", false},
		{"a nested key of a string map is refused", VendorHTTP, "http.variables.a.b", false},
		{"the block itself is refused", VendorJWT, "jwt", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := regexp.MustCompile(TemplatePathPattern(tt.vendor)).MatchString(tt.path); got != tt.admit {
				t.Errorf("%s: admitted %v, want %v", tt.path, got, tt.admit)
			}
		})
	}
}
