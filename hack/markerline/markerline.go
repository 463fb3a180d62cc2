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

// Package markerline keeps a generated admission rule in a hand-written Go
// file: the generators under hack/ write the rules they derive into the
// XValidation marker above a type, where controller-gen reads it, and leave
// the rest of the file alone.
package markerline

import (
	"bytes"
	"fmt"
	"strconv"
)

// Marker is the XValidation marker line of rule with message.
func Marker(rule, message string) string {
	return "// +kubebuilder:validation:XValidation:rule=" + strconv.Quote(rule) + ",message=" + strconv.Quote(message) + "\n"
}

// Set returns src with the XValidation marker whose message is message
// replaced by the one of rule, or, when src has none, with that marker
// added above the line that starts with anchor (e.g. "type T struct {").
// The message identifies the marker, so it must not change with the rule.
func Set(src []byte, anchor, rule, message string) ([]byte, error) {
	marker := []byte(Marker(rule, message))
	suffix := []byte(",message=" + strconv.Quote(message) + "\n")
	var out [][]byte
	replaced := false
	for _, line := range bytes.SplitAfter(src, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("// +kubebuilder:validation:XValidation:rule=")) && bytes.HasSuffix(line, suffix) {
			line, replaced = marker, true
		}
		if !replaced && bytes.HasPrefix(line, []byte(anchor)) {
			out, replaced = append(out, marker), true
		}
		out = append(out, line)
	}
	if !replaced {
		return nil, fmt.Errorf("no line starts with %q", anchor)
	}
	return bytes.Join(out, nil), nil
}
