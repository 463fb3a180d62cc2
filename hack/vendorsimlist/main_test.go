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

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedListIsCurrent fails when the simulator's checked-in list of
// vendors differs from its vendor functions: run `make manifests` after
// adding or removing a vendor's file.
func TestGeneratedListIsCurrent(t *testing.T) {
	dir := filepath.Join("..", "..", "internal", "vendorsim")
	want, err := Generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, Output)); err != nil || string(got) != string(want) {
		t.Errorf("internal/vendorsim/%s is stale (%v); run make manifests", Output, err)
	}
}

func TestGenerateListsVendorFunctionsOnly(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"b_acme.go": "package vendorsim\n\nfunc acmeVendor() vendor { return vendor{} }\n",
		"a_zeta.go": "package vendorsim\n\nfunc zetaVendor() vendor { return vendor{} }\n\n" +
			"// Not vendors: a method, a parameter, another result, another name.\n" +
			"func (s *Server) serverVendor() vendor { return vendor{} }\n" +
			"func optionVendor(o Options) vendor { return vendor{} }\n" +
			"func nameVendor() string { return \"\" }\n" +
			"func vendorOf() vendor { return vendor{} }\n",
		"a_zeta_test.go": "package vendorsim\n\nfunc testVendor() vendor { return vendor{} }\n",
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src, err := Generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := "return []vendor{\n\t\tzetaVendor(),\n\t\tacmeVendor(),\n\t}"; !strings.Contains(string(src), want) {
		t.Errorf("want the vendors of a_zeta.go, then b_acme.go:\n%s", src)
	}
}
