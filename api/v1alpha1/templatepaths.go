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

// This file derives, from the Go types of the vendor parameter blocks, the
// grammar of an EmbedTokenTemplate parameter's path. hack/templatepaths
// writes TemplatePathRule into the admission rule on EmbedTokenTemplateSpec
// (go generate), and templatepaths_test.go fails when the generated CRD and
// the types disagree, so a new vendor field is a valid path at once.

import (
	"reflect"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// TemplatePathRuleMessage is the message of the admission rule that checks
// every parameter's path against the template's vendor block.
const TemplatePathRuleMessage = "each parameter's path must name a string field, a string list item, " +
	"or a key of a free-form object of the template's vendor block, e.g. jwt.subject, powerBI.identities[0].username, jwt.claims.tenant"

// Path grammar pieces. They avoid backslashes, which would need escaping
// once in the marker and again in the CEL string literal.
const (
	// PathIndexPattern is one list index, [0] to [99], without leading
	// zeros, so two spellings never name one item.
	PathIndexPattern = `[[]([0-9]|[1-9][0-9])]`
	// PathKeyPattern is one key of a free-form object or a string map.
	PathKeyPattern = `[A-Za-z_][A-Za-z0-9_-]*`
)

// jsonType is the free-form JSON value type: any key or index below it is
// a valid path.
var jsonType = reflect.TypeFor[apiextensionsv1.JSON]()

// TemplatePathPattern is the regular expression (RE2, anchored) of every
// path a parameter of a template whose vendor block is vendor may fill, or
// "" for an unknown vendor. It is derived from the block's Go type: a
// string field, a string list item, a key of a string map, or any key or
// index below a free-form JSON value.
func TemplatePathPattern(vendor string) string {
	t := reflect.TypeFor[VendorParams]()
	for i := range t.NumField() {
		if f := t.Field(i); blockName(f) == vendor {
			return "^" + vendor + pathGrammar(f.Type) + "$"
		}
	}
	return ""
}

// TemplatePathRule is the CEL admission rule on EmbedTokenTemplateSpec: each
// parameter's path matches TemplatePathPattern of the template's vendor
// block. A template with no vendor block or two is refused by
// VendorParams's own rule.
func TemplatePathRule() string {
	alts := make([]string, 0, len(Vendors()))
	for _, v := range Vendors() {
		alts = append(alts, "(has(self."+v+") && p.path.matches('"+TemplatePathPattern(v)+"'))")
	}
	return "!has(self.parameters) || self.parameters.all(p, " + strings.Join(alts, " || ") + ")"
}

// pathGrammar is the regular expression of the path suffixes that reach a
// string below a value of type t, or "" for t itself when t is a string;
// "-" when nothing below t may be filled (numbers, booleans).
func pathGrammar(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == jsonType:
		return "([.]" + PathKeyPattern + "|" + PathIndexPattern + ")*"
	case t.Kind() == reflect.String:
		return ""
	case t.Kind() == reflect.Slice:
		if inner := pathGrammar(t.Elem()); inner != "-" {
			return PathIndexPattern + inner
		}
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.String:
		return "[.]" + PathKeyPattern
	case t.Kind() == reflect.Struct:
		var alts []string
		for i := range t.NumField() {
			f := t.Field(i)
			name := blockName(f)
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			if inner := pathGrammar(f.Type); inner != "-" {
				alts = append(alts, name+inner)
			}
		}
		switch len(alts) {
		case 0:
		case 1:
			return "[.]" + alts[0]
		default:
			return "[.](" + strings.Join(alts, "|") + ")"
		}
	}
	return "-"
}
