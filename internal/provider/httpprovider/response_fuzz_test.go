package httpprovider_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/httpprovider"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// responseSpecs are the ways a generic HTTP provider learns a token's expiry,
// each with the paths the seeds below use.
var responseSpecs = []*v1alpha1.HTTPProvider{
	{URL: "https://v.example.com", TokenPath: ".data.token", ExpiresInPath: ".data.expires_in"},
	{URL: "https://v.example.com", TokenPath: ".token", ExpiresAtPath: ".expiresAt"},
	{URL: "https://v.example.com", TokenPath: ".token", ExpiresAtPath: ".expiresAt", ExpiresAtFormat: "EpochMilliseconds"},
	{URL: "https://v.example.com", TokenPath: `["access token"]`, Expiry: &v1alpha1.ExpiryFallback{FromJWT: ptr.To(true)}},
	{URL: "https://v.example.com", TokenPath: ".list[1]", SuccessPath: ".ok", SuccessValue: "true",
		Expiry: &v1alpha1.ExpiryFallback{Duration: &metav1.Duration{Duration: time.Hour}}},
}

// FuzzParseResponse feeds bodies holding pt.Marker (standing for the token)
// to every expiry style: a success has a non-empty token and an expiry in
// (1970, 9999]; an expiresInPath expiry is at most ten years after now; a
// failure is a classified error that never quotes the marker.
func FuzzParseResponse(f *testing.F) {
	for _, seed := range [][2]string{
		{`{"data":{"token":"`, `","expires_in":3600}}`},
		{`{"data":{"token":"`, `","expires_in":"1e12"}}`},
		{`{"token":"`, `","expiresAt":"2030-01-02T03:04:05Z"}`},
		{`{"token":"`, `","expiresAt":1893553445123}`},
		{`{"token":"`, `","expiresAt":-1}`},
		{`{"access token":"eyJhbGciOiJIUzI1NiJ9.`, `.sig"}`},
		{`{"ok":true,"list":["a","`, `"]}`},
		{`{"ok":"false","message":"`, `"}`},
		{`{"token":{"nested":"`, `"}}`},
		{`<html>`, `</html>`},
		{`{"token":"`, `"} {"more":1}`},
	} {
		for i := range responseSpecs {
			f.Add(uint8(i), []byte(seed[0]), []byte(seed[1]))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, prefix, suffix []byte) {
		spec := responseSpecs[int(which)%len(responseSpecs)]
		body := append(append(append([]byte{}, prefix...), pt.Marker...), suffix...)
		tok, err := httpprovider.ParseResponse(spec, body, pt.Epoch)
		if err != nil {
			e := provider.Classify(err)
			if e.Reason != v1alpha1.ReasonInvalidResponse && e.Reason != v1alpha1.ReasonVendorRejected {
				t.Fatalf("ParseResponse(%q) error %v has reason %s", body, err, e.Reason)
			}
			if spec.SuccessPath == "" {
				pt.NoLeak(t, err.Error(), pt.Marker) // with a success check the vendor's own message is quoted
			}
			return
		}
		if tok.Value == "" || !tok.IssuedAt.Equal(pt.Epoch) {
			t.Fatalf("ParseResponse(%q) = %v: empty token or wrong issue time", body, tok)
		}
		if y := tok.ExpiresAt.Year(); y < 1970 || y > 9999 {
			t.Fatalf("ParseResponse(%q) expiry %v out of range", body, tok.ExpiresAt)
		}
		if spec.ExpiresInPath != "" && tok.ExpiresAt.Sub(pt.Epoch) > 10*366*24*time.Hour {
			t.Fatalf("ParseResponse(%q) accepted an expires_in over ten years: %v", body, tok.ExpiresAt)
		}
	})
}
