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

// Every vendor lives in its own vendor_<name>_types.go: a Vendor* constant
// marked +embedtokens:vendor:doc and its <Name>Provider and <Name>Params
// blocks. hack/vendorunions reads those files and writes what names every
// vendor: the unions VendorConfig and VendorParams with their admission
// rules (zz_generated.vendors.go) and the namespace rule of
// ClusterEmbedProviderSpec; hack/templatepaths then writes the template
// path rule from the unions. Vendor() and Vendors() read the unions by
// reflection; vendors_test.go checks the generated CRDs against them.
//go:generate go run ../../hack/vendorunions
//go:generate go run ../../hack/templatepaths

import (
	"reflect"
	"strings"
)

// Vendors lists every vendor's name, sorted: the JSON names of
// VendorConfig's fields, which VendorParams repeats.
func Vendors() []string {
	t := reflect.TypeFor[VendorConfig]()
	names := make([]string, t.NumField())
	for i := range t.NumField() {
		names[i] = blockName(t.Field(i))
	}
	return names
}

// Vendor names the vendor whose block is set, or "" when none is.
func (c *VendorConfig) Vendor() string { return setBlock(c) }

// Vendor names the vendor whose parameter block is set, or "" when none is.
func (p *VendorParams) Vendor() string { return setBlock(p) }

// setBlock returns the JSON name of the first non-nil field of union, a
// pointer to a struct whose fields are all pointers (VendorConfig or
// VendorParams), or "" when every field is nil.
func setBlock(union any) string {
	v := reflect.ValueOf(union).Elem()
	for i := range v.NumField() {
		if !v.Field(i).IsNil() {
			return blockName(v.Type().Field(i))
		}
	}
	return ""
}

// blockName is a union field's JSON name, which is its vendor's name.
func blockName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}
