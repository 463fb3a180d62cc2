package docs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/test/harness"
)

// yamlBlock matches a fenced yaml code block of a Markdown page.
var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// TestGuideManifestsAreAccepted sends every complete object (one with
// apiVersion and kind) in the vendor guides, the token endpoint's guide, the
// README and the example manifests under docs/examples to a real API
// server with the operator's CRDs, as a server-side dry-run apply, so a guide
// never shows a manifest that admission would refuse.
func TestGuideManifestsAreAccepted(t *testing.T) {
	pages, err := filepath.Glob(filepath.Join(root, "docs", "vendors", "*.md"))
	if err != nil || len(pages) < 6 {
		t.Fatalf("vendor guides: %v %v", pages, err)
	}
	pages = append(pages, filepath.Join(root, "README.md"), filepath.Join(root, "docs", "token-endpoint.md"))
	examples, err := filepath.Glob(filepath.Join(root, "docs", "examples", "*", "*.yaml"))
	if err != nil || len(examples) == 0 {
		t.Fatalf("example manifests: %v %v", examples, err)
	}
	pages = append(pages, examples...)

	_, _, c := harness.StartEnvironment(t, root)

	ctx := context.Background()
	checked := 0
	for _, page := range pages {
		raw, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		blocks := [][]byte{raw}
		if filepath.Ext(page) == ".md" {
			blocks = blocks[:0]
			for _, m := range yamlBlock.FindAllSubmatch(raw, -1) {
				blocks = append(blocks, m[1])
			}
		}
		for _, block := range blocks {
			for _, obj := range decodeAll(t, page, block) {
				if obj.GetAPIVersion() == "" || obj.GetKind() == "" {
					continue // a fragment, not an object
				}
				ns := obj.GetNamespace()
				if ns == "" {
					ns = "default"
				}
				if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
					t.Fatal(err)
				}
				obj.SetNamespace(ns)
				if obj.GetKind() == "ClusterEmbedProvider" || obj.GetKind() == "Namespace" {
					obj.SetNamespace("")
				}
				if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner("docs-test"),
					client.DryRunAll, client.ForceOwnership); err != nil {
					t.Errorf("%s: %s %s is refused: %v", filepath.Base(page), obj.GetKind(), obj.GetName(), err)
				}
				checked++
			}
		}
	}
	if checked < 10 {
		t.Errorf("checked only %d manifests", checked)
	}
}

// decodeAll splits a YAML block into objects.
func decodeAll(t *testing.T, page string, block []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(block), 4096)
	var out []*unstructured.Unstructured
	for {
		obj := map[string]any{}
		if err := dec.Decode(&obj); err != nil {
			if err.Error() != "EOF" {
				t.Errorf("%s: a yaml block does not parse: %v", filepath.Base(page), err)
			}
			return out
		}
		if len(obj) > 0 {
			out = append(out, &unstructured.Unstructured{Object: obj})
		}
	}
}
