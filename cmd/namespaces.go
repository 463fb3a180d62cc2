package main

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// namespaceList is the value of --watch-namespaces: a comma-separated list of
// namespace names, validated at startup so a typo fails fast instead of
// leaving the operator silently watching nothing.
type namespaceList []string

// String implements flag.Value.
func (n *namespaceList) String() string { return strings.Join(*n, ",") }

// Set implements flag.Value. Blank entries are ignored; duplicates are kept
// once.
func (n *namespaceList) Set(value string) error {
	seen := map[string]bool{}
	var out namespaceList
	for _, ns := range strings.Split(value, ",") {
		ns = strings.TrimSpace(ns)
		if ns == "" || seen[ns] {
			continue
		}
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return fmt.Errorf("invalid namespace %q: %s", ns, strings.Join(errs, "; "))
		}
		seen[ns] = true
		out = append(out, ns)
	}
	*n = out
	return nil
}
