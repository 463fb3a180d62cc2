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

// Command templatepaths writes the admission rule that checks an
// EmbedTokenTemplate parameter's path (v1alpha1.TemplatePathRule, derived
// from the vendor blocks' Go types) into the marker on
// EmbedTokenTemplateSpec. It runs through go generate in api/v1alpha1,
// before controller-gen turns the marker into the CRD.
//
// With -bounds FILE it writes instead internal/template's table of the
// vendor blocks' string bounds (MinLength, MaxLength, Pattern, Enum), read
// from the markers in -api's source, so a filled template is checked as
// admission checks a request.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/hack/markerline"
)

const (
	file   = "embedtokentemplate_types.go"
	anchor = "type EmbedTokenTemplateSpec struct {"
)

func main() {
	boundsFile := flag.String("bounds", "", "write the bounds table to this file instead of the path rule")
	apiDir := flag.String("api", ".", "the API package's directory")
	flag.Parse()
	err := error(nil)
	if *boundsFile != "" {
		var src []byte
		if src, err = boundsSource(*apiDir); err == nil {
			err = os.WriteFile(*boundsFile, src, 0o644)
		}
	} else {
		err = run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "templatepaths:", err)
		os.Exit(1)
	}
}

func run() error {
	src, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	out, err := markerline.Set(src, anchor, v1alpha1.TemplatePathRule(), v1alpha1.TemplatePathRuleMessage)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return os.WriteFile(file, out, 0o644)
}
