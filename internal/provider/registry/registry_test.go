package registry_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/registry"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

const root = "../../.."

// notSimulated are the vendors the simulator has no endpoint of their own
// for, and why. Keep it tiny: every vendor that calls a server is simulated.
var notSimulated = map[string]string{
	v1alpha1.VendorJWT:  "signs tokens locally: the simulator redeems its Tableau tokens as \"tableau\", a product, not a block",
	v1alpha1.VendorHTTP: "generic: its samples call the simulated products' own endpoints (thoughtspot, qrvey, boldBI, domo)",
}

// TestEveryVendorIsComplete fails when a vendor of the API (a block of the
// unions; api/v1alpha1/vendors_test.go checks the API's own lists) is
// missing from anything outside the API that must know it: the registry,
// the provider's Secret references, the simulator, the samples (a request,
// or for a vendor whose tokens are always single-use a template and no
// request), its guide under docs/vendors and its row in the README's vendor
// table.
func TestEveryVendorIsComplete(t *testing.T) {
	providers := registry.All()
	simulated := vendorsim.New(vendorsim.Options{}).Vendors()
	samples := sampleBlocks(t)
	readme := readFile(t, "README.md")
	for _, v := range v1alpha1.Vendors() {
		t.Run(v, func(t *testing.T) {
			spec := &v1alpha1.EmbedProviderSpec{}
			placed := fillBlock(reflect.ValueOf(&spec.VendorConfig).Elem().FieldByIndex(blockIndex(t, v)))
			if impl, ok := providers[v]; !ok {
				t.Errorf("internal/provider/registry has no provider for %s", v)
			} else if got := impl.SecretRefs(spec); !containsAll(got, placed) {
				t.Errorf("%T.SecretRefs = %v, misses some of the block's references %v", impl, got, placed)
			}
			if _, exempt := notSimulated[v]; !exempt && !slices.Contains(simulated, v) {
				t.Errorf("internal/vendorsim serves %v, not %s", simulated, v)
			}
			kinds := []string{"EmbedProvider", "EmbedTokenRequest"}
			if impl, ok := providers[v]; ok && provider.IsSingleUse(impl, spec) {
				kinds[1] = "EmbedTokenTemplate"
				if samples["EmbedTokenRequest"][v] {
					t.Errorf("an EmbedTokenRequest under config/samples sets %s, whose tokens are single-use and cannot be stored", v)
				}
			}
			for _, kind := range kinds {
				if !samples[kind][v] {
					t.Errorf("no %s under config/samples sets %s", kind, v)
				}
			}
			page := filepath.Join("docs", "vendors", strings.ToLower(v)+".md")
			if !strings.Contains(readFile(t, page), "\n  "+v+":\n") {
				t.Errorf("%s is missing or shows no manifest with a %s block", page, v)
			}
			if !strings.Contains(readme, "\n| `"+v+"` |") {
				t.Errorf("the README's vendor table has no row for `%s`", v)
			}
		})
	}
	for name := range providers {
		if !slices.Contains(v1alpha1.Vendors(), name) {
			t.Errorf("the registry has a provider for %q, which is no block of the API", name)
		}
	}
	for name := range notSimulated {
		if !slices.Contains(v1alpha1.Vendors(), name) {
			t.Errorf("notSimulated names %q, which is no vendor", name)
		}
	}
}

// TestSamplesAreListed fails when a file under config/samples is missing
// from its kustomization, which `kubectl apply -k` applies.
func TestSamplesAreListed(t *testing.T) {
	var k struct{ Resources []string }
	if err := yaml.Unmarshal([]byte(readFile(t, "config/samples/kustomization.yaml")), &k); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "config", "samples", "embedtokens_*.yaml"))
	for _, f := range files {
		if !slices.Contains(k.Resources, filepath.Base(f)) {
			t.Errorf("config/samples/kustomization.yaml does not list %s", filepath.Base(f))
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Error(err)
	}
	return string(raw)
}

// blockIndex is the index of the union field named v.
func blockIndex(t *testing.T, v string) []int {
	t.Helper()
	i := slices.Index(v1alpha1.Vendors(), v)
	if i < 0 {
		t.Fatalf("no block %s", v)
	}
	return []int{i}
}

// fillBlock sets every pointer, struct and list below v (one element per
// list) and gives each SecretKeySelector a distinct name, returning them.
func fillBlock(v reflect.Value) []v1alpha1.SecretKeySelector {
	var placed []v1alpha1.SecretKeySelector
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		switch {
		case v.Type() == reflect.TypeFor[v1alpha1.SecretKeySelector]():
			ref := v1alpha1.SecretKeySelector{Name: fmt.Sprintf("secret-%d", len(placed)), Key: "key"}
			v.Set(reflect.ValueOf(ref))
			placed = append(placed, ref)
		case v.Kind() == reflect.Pointer:
			v.Set(reflect.New(v.Type().Elem()))
			fill(v.Elem())
		case v.Kind() == reflect.Struct:
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					fill(v.Field(i))
				}
			}
		case v.Kind() == reflect.Slice && v.Type().Elem().Kind() != reflect.Uint8:
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
			fill(v.Index(0))
		}
	}
	fill(v)
	return placed
}

func containsAll(got, want []v1alpha1.SecretKeySelector) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

// sampleBlocks reads every object under config/samples and records, per kind
// (ClusterEmbedProvider counting as EmbedProvider), the vendor blocks set.
func sampleBlocks(t *testing.T) map[string]map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "config", "samples", "embedtokens_*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	out := map[string]map[string]bool{"EmbedProvider": {}, "EmbedTokenRequest": {}, "EmbedTokenTemplate": {}}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
		for {
			var obj struct {
				Kind string
				Spec map[string]any
			}
			if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			kind := strings.TrimPrefix(obj.Kind, "Cluster")
			for block := range obj.Spec {
				if out[kind] != nil {
					out[kind][block] = true
				}
			}
		}
	}
	return out
}
