package providertest

import (
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// samplesDir is config/samples seen from a vendor package's directory
// (internal/provider/<vendor>), where go test runs.
var samplesDir = filepath.Join("..", "..", "..", "config", "samples")

// Sample reads a config/samples file holding one provider and one request
// or template (whose vendor block and lifetime a request's spec holds too),
// so vendor tests run the documented samples themselves and the docs cannot
// drift from working configuration.
func Sample(t testing.TB, file string) (v1alpha1.EmbedProviderSpec, v1alpha1.EmbedTokenRequestSpec) {
	t.Helper()
	f, err := os.Open(filepath.Join(samplesDir, file))
	if err != nil {
		t.Fatalf("open sample: %v", err)
	}
	defer f.Close() //nolint:errcheck // read-only
	var prov v1alpha1.EmbedProviderSpec
	var req v1alpha1.EmbedTokenRequestSpec
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		var doc struct {
			Kind string          `json:"kind"`
			Spec json.RawMessage `json:"spec"`
		}
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("sample %s: %v", file, err)
		}
		var dst any = &prov
		if doc.Kind == "EmbedTokenRequest" || doc.Kind == "EmbedTokenTemplate" {
			dst = &req
		}
		if err := json.Unmarshal(doc.Spec, dst); err != nil {
			t.Fatalf("sample %s, %s spec: %v", file, doc.Kind, err)
		}
	}
	return prov, req
}

// Rebase points rawURL at base's scheme and host, keeping its path, so a
// sample's vendor URL can address the simulator.
func Rebase(t testing.TB, rawURL, base string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	b, berr := url.Parse(base)
	if err != nil || berr != nil {
		t.Fatalf("rebase %q on %q: %v %v", rawURL, base, err, berr)
	}
	u.Scheme, u.Host = b.Scheme, b.Host
	return u.String()
}
