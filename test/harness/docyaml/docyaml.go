// Package docyaml reads the YAML the project documents, the fenced yaml
// blocks of Markdown pages and whole YAML files, as single documents, so
// tests can check every documented manifest against the code.
package docyaml

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// block matches a fenced yaml block of a Markdown page.
var block = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// Documents returns, for each path, its YAML documents: those of a
// Markdown file's fenced yaml blocks, or of a YAML file as a whole, split
// at "---" lines.
func Documents(paths ...string) (map[string][][]byte, error) {
	out := make(map[string][][]byte, len(paths))
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		blocks := [][]byte{raw}
		if filepath.Ext(path) == ".md" {
			blocks = nil
			for _, m := range block.FindAllSubmatch(raw, -1) {
				blocks = append(blocks, m[1])
			}
		}
		for _, b := range blocks {
			r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
			for {
				doc, err := r.Read()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return nil, fmt.Errorf("%s: %w", path, err)
				}
				if len(bytes.TrimSpace(doc)) > 0 {
					out[path] = append(out[path], doc)
				}
			}
		}
	}
	return out, nil
}

// Glob is filepath.Glob of each pattern joined, in order; a bad pattern
// matches nothing.
func Glob(patterns ...string) []string {
	var out []string
	for _, p := range patterns {
		m, _ := filepath.Glob(p)
		out = append(out, m...)
	}
	return out
}
