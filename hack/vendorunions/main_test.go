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

// TestGeneratedFilesAreCurrent fails when the checked-in unions or the
// ClusterEmbedProviderSpec rule differ from what the vendor files give: run
// `make manifests` after adding or changing a vendor.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	files, err := Generate(filepath.Join("..", "..", "api", "v1alpha1"))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range files {
		got, err := os.ReadFile(path)
		if err != nil || string(got) != string(want) {
			t.Errorf("%s is stale (%v); run make manifests", path, err)
		}
	}
}

// fixture is a minimal API package: the shared types the rules reach and
// one vendor, acme, whose blocks the cases replace.
const fixture = `package v1alpha1

type SecretKeySelector struct {
	Name      string ` + "`json:\"name\"`" + `
	Key       string ` + "`json:\"key\"`" + `
	Namespace string ` + "`json:\"namespace,omitempty\"`" + `
}

type EmbedProviderSpec struct {
	VendorConfig ` + "`json:\",inline\"`" + `
	// +optional
	CABundleSecretRef *SecretKeySelector ` + "`json:\"caBundleSecretRef,omitempty\"`" + `
}

type ClusterEmbedProviderSpec struct {
	EmbedProviderSpec ` + "`json:\",inline\"`" + `
}
`

// acme declares the vendor acme with the given blocks.
func acme(blocks string) string {
	return `package v1alpha1

// +embedtokens:vendor:doc="Acme issues tokens."
const VendorAcme = "acme"

` + blocks
}

func TestRules(t *testing.T) {
	tests := []struct {
		name      string
		vendor    string
		https     string // the https rule's conditions, after "self.allowInsecureHTTP || "
		namespace string
		err       string
	}{
		{
			name: "a required URL and a required reference are checked without a guard",
			vendor: acme(`type AcmeProvider struct {
	// +kubebuilder:validation:XValidation:rule="isURL(self)",message="url must be a URL"
	URL string ` + "`json:\"url\"`" + `
	KeyRef SecretKeySelector ` + "`json:\"keyRef\"`" + `
}
type AcmeParams struct{}
`),
			https:     "(!has(self.acme) || self.acme.url.startsWith('https://'))",
			namespace: "(!has(self.acme) || has(self.acme.keyRef.__namespace__)) && (!has(self.caBundleSecretRef) || has(self.caBundleSecretRef.__namespace__))",
		},
		{
			name: "an optional block's fields are guarded by has()",
			vendor: acme(`type AcmeProvider struct {
	// +optional
	Auth *AcmeAuth ` + "`json:\"auth,omitempty\"`" + `
}
type AcmeAuth struct {
	// +optional
	// +kubebuilder:validation:XValidation:rule="isURL(self) && self.matches('^https?://')",message="tokenURL must be a URL"
	TokenURL string ` + "`json:\"tokenURL,omitempty\"`" + `
	// +optional
	SecretRef *SecretKeySelector ` + "`json:\"secretRef,omitempty\"`" + `
}
type AcmeParams struct{}
`),
			https:     "(!has(self.acme) || (!has(self.acme.auth) || (!has(self.acme.auth.tokenURL) || self.acme.auth.tokenURL.startsWith('https://'))))",
			namespace: "(!has(self.acme) || (!has(self.acme.auth) || (!has(self.acme.auth.secretRef) || has(self.acme.auth.secretRef.__namespace__)))) && (!has(self.caBundleSecretRef) || has(self.caBundleSecretRef.__namespace__))",
		},
		{
			name: "a list's references are checked item by item",
			vendor: acme(`type AcmeProvider struct {
	Headers []AcmeHeader ` + "`json:\"headers,omitempty\"`" + `
}
type AcmeHeader struct {
	ValueRef SecretKeySelector ` + "`json:\"valueRef\"`" + `
}
type AcmeParams struct{}
`),
			namespace: "(!has(self.acme) || (!has(self.acme.headers) || self.acme.headers.all(h, has(h.valueRef.__namespace__)))) && (!has(self.caBundleSecretRef) || has(self.caBundleSecretRef.__namespace__))",
		},
		{
			name:   "a vendor without a parameter block is refused",
			vendor: acme("type AcmeProvider struct{}\n"),
			err:    "vendor acme has no struct type AcmeParams",
		},
		{
			name: "a map whose values hold a reference is refused",
			vendor: acme(`type AcmeProvider struct {
	Refs map[string]SecretKeySelector ` + "`json:\"refs\"`" + `
}
type AcmeParams struct{}
`),
			err: "self.acme.refs: a map whose values need checking is not supported",
		},
		{
			name:   "the marker on a constant of another name is refused",
			vendor: strings.Replace(acme("type AcmeProvider struct{}\ntype AcmeParams struct{}\n"), "const VendorAcme", "const Acme", 1),
			err:    `a vendor marker belongs on one constant Vendor<Name> = "<block>"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, src := range map[string]string{"provider_types.go": fixture, "vendor_acme_types.go": tc.vendor} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			files, err := Generate(dir)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Generate() error = %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			unions := string(files[filepath.Join(dir, Output)])
			for _, want := range []string{
				`rule="[has(self.acme)].filter(x, x).size() == 1",message="exactly one vendor block must be set: acme"`,
				"\t// Acme issues tokens.\n\t// +optional\n\tAcme *AcmeProvider `json:\"acme,omitempty\"`",
				"\t// Acme parameters.\n\t// +optional\n\tAcme *AcmeParams `json:\"acme,omitempty\"`",
			} {
				if !strings.Contains(unions, want) {
					t.Errorf("the unions lack %s:\n%s", want, unions)
				}
			}
			switch https := "self.allowInsecureHTTP || " + tc.https; {
			case tc.https == "" && strings.Contains(unions, "vendor URLs must use https://"):
				t.Errorf("a rule checks URLs where there are none:\n%s", unions)
			case tc.https != "" && !strings.Contains(unions, `rule="`+https+`",message="vendor URLs must use https://`):
				t.Errorf("https rule: want %s in\n%s", https, unions)
			}
			spec := string(files[filepath.Join(dir, "provider_types.go")])
			if !strings.Contains(spec, `rule="`+tc.namespace+`",message="every Secret reference`) {
				t.Errorf("namespace rule: want %s in\n%s", tc.namespace, spec)
			}
		})
	}
}
