package load

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// The paths of the tenant's own vendor.
const (
	// pathShort grants one-second tokens, whatever lifetime is asked.
	pathShort = "/short"
	// pathBig answers a token of a mebibyte.
	pathBig = "/big"
	// pathAuth is an auth step's token URL answering a mebibyte access token.
	pathAuth = "/oauth/token"
	// pathAuthed is the token URL behind that auth step.
	pathAuthed = "/authed"
	// pathQuiet is the quiet namespace's vendor: hour-long tokens.
	pathQuiet = "/quiet"
)

// mebibyte is the size of the big tokens.
const mebibyte = 1 << 20

// vendor is a token endpoint on 127.0.0.1 that counts its calls per path.
type vendor struct {
	srv   *httptest.Server
	calls map[string]*atomic.Int64
	big   string
}

func startVendor() *vendor {
	v := &vendor{calls: map[string]*atomic.Int64{}, big: strings.Repeat("b", mebibyte)}
	for _, p := range []string{pathShort, pathBig, pathAuth, pathAuthed, pathQuiet} {
		v.calls[p] = &atomic.Int64{}
	}
	v.srv = httptest.NewServer(http.HandlerFunc(v.serve))
	return v
}

func (v *vendor) serve(w http.ResponseWriter, r *http.Request) {
	n := v.calls[r.URL.Path]
	if n == nil {
		http.NotFound(w, r)
		return
	}
	n.Add(1)
	w.Header().Set("Content-Type", "application/json")
	var body map[string]any
	switch r.URL.Path {
	case pathShort:
		body = map[string]any{"token": unique(), "expires_in": 1}
	case pathBig:
		body = map[string]any{"token": v.big + unique(), "expires_in": 3600}
	case pathAuth:
		body = map[string]any{"access_token": v.big + unique(), "token_type": "Bearer", "expires_in": 3600}
	default:
		body = map[string]any{"token": unique(), "expires_in": 3600}
	}
	_ = json.NewEncoder(w).Encode(body)
}

// count is how many calls path has had.
func (v *vendor) count(path string) int64 { return v.calls[path].Load() }

// hostPort is the vendor's address, as --allow-vendor-cidrs takes it.
func (v *vendor) hostPort() string { return strings.TrimPrefix(v.srv.URL, "http://") }

func unique() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// credentials is the Secret of the auth step's client secret.
func credentials(ns string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vendor-credentials"},
		StringData: map[string]string{"clientSecret": "load-client-secret"}}
}

// httpProvider is an EmbedProvider of the http vendor calling path.
func (v *vendor) httpProvider(ns, name, path string) *v1alpha1.EmbedProvider {
	return &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.EmbedProviderSpec{AllowInsecureHTTP: true, VendorConfig: v1alpha1.VendorConfig{HTTP: &v1alpha1.HTTPProvider{
			URL: v.srv.URL + path, TokenPath: ".token", ExpiresInPath: ".expires_in"}}}}
}

// authProvider is an http EmbedProvider whose auth step answers a mebibyte
// access token.
func (v *vendor) authProvider(ns, name string) *v1alpha1.EmbedProvider {
	p := v.httpProvider(ns, name, pathAuthed)
	p.Spec.HTTP.Auth = &v1alpha1.HTTPAuth{ClientCredentials: &v1alpha1.HTTPAuthClientCredentials{
		TokenURL: v.srv.URL + pathAuth, ClientID: name,
		ClientSecretSecretRef: v1alpha1.SecretKeySelector{Name: "vendor-credentials", Key: "clientSecret"}},
		Header: &v1alpha1.HTTPAuthHeader{Name: "Authorization", Prefix: "Bearer "}}
	return p
}

// request is an EmbedTokenRequest for provider asking for an hour.
func request(ns, name, provider string) *v1alpha1.EmbedTokenRequest {
	return &v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.EmbedTokenRequestSpec{ProviderRef: v1alpha1.ProviderRef{Name: provider},
			VendorParams: v1alpha1.VendorParams{HTTP: &v1alpha1.HTTPParams{Variables: map[string]string{"user": name}}},
			Lifetime:     &metav1.Duration{Duration: lifetime}}}
}

// expectVendorStarted fails when the vendor has not been called at all.
func expectVendorStarted(g Gomega, v *vendor, path string, atLeast int64) {
	g.Expect(v.count(path)).To(BeNumerically(">=", atLeast), "calls to %s", path)
}
