package httpprovider_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/httpprovider"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// The provider is a ConfigValidator, so bad config shows on Ready.
var _ provider.ConfigValidator = httpprovider.New()

func validSpec() v1alpha1.HTTPProvider {
	return v1alpha1.HTTPProvider{URL: "https://vendor.example.com/token", TokenPath: ".token", ExpiresInPath: ".expires_in",
		Body: `{"user":"{{ .Vars.user }}","key":"{{ secret "thoughtspot-credentials" "secretKey" }}"}`}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *v1alpha1.HTTPProvider)
		creds  pt.Creds
		want   pt.Want
	}{
		{"valid", func(*v1alpha1.HTTPProvider) {}, creds, pt.Want{}},
		{"template Secret missing", func(*v1alpha1.HTTPProvider) {}, pt.Creds{},
			pt.Want{Reason: v1alpha1.ReasonCredentialsNotFound, Message: "thoughtspot-credentials"}},
		{"template does not parse", func(s *v1alpha1.HTTPProvider) { s.Body = `{{ .Vars.user ` }, creds,
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "not a valid template"}},
		{"bad token path", func(s *v1alpha1.HTTPProvider) { s.TokenPath = ".data[" }, creds,
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: `path ".data["`}},
		{"empty token path", func(s *v1alpha1.HTTPProvider) { s.TokenPath = "" }, creds,
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "path is empty"}},
		{"bad success path", func(s *v1alpha1.HTTPProvider) { s.SuccessPath = "a..b" }, creds,
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "empty key"}},
		{"no expiry source", func(s *v1alpha1.HTTPProvider) { s.ExpiresInPath = "" }, creds,
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "expiry is unknown"}},
		{"fromJWT false is no source", func(s *v1alpha1.HTTPProvider) {
			s.ExpiresInPath, s.Expiry = "", &v1alpha1.ExpiryFallback{FromJWT: ptr.To(false)}
		}, creds, pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true}},
		{"both expiry paths", func(s *v1alpha1.HTTPProvider) { s.ExpiresAtPath = ".at" }, creds,
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "mutually exclusive"}},
		{"format without path", func(s *v1alpha1.HTTPProvider) { s.ExpiresAtFormat = "RFC3339" }, creds,
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "needs expiresAtPath"}},
		{"unknown format", func(s *v1alpha1.HTTPProvider) {
			s.ExpiresInPath, s.ExpiresAtPath, s.ExpiresAtFormat = "", ".at", "Julian"
		}, creds,
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "Julian"}},
		{"zero duration", func(s *v1alpha1.HTTPProvider) {
			s.ExpiresInPath, s.Expiry = "", &v1alpha1.ExpiryFallback{Duration: &metav1.Duration{}}
		}, creds, pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "positive"}},
		{"successValue alone", func(s *v1alpha1.HTTPProvider) { s.SuccessValue = "true" }, creds,
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "needs successPath"}},
		{"bad method", func(s *v1alpha1.HTTPProvider) { s.Method = "DELETE" }, creds,
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "method"}},
		{"relative url", func(s *v1alpha1.HTTPProvider) { s.URL = "/token" }, creds,
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "url"}},
		{"bad header name", func(s *v1alpha1.HTTPProvider) { s.Headers = []v1alpha1.HTTPHeader{{Name: "X Key", Value: ptr.To("v")}} }, creds,
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "field name"}},
		{"header with both sources", func(s *v1alpha1.HTTPProvider) {
			s.Headers = []v1alpha1.HTTPHeader{{Name: "X-Key", Value: ptr.To("v"), ValueFrom: &v1alpha1.HTTPHeaderSource{}}}
		}, creds, pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "exactly one"}},
		{"secret name from a variable", func(s *v1alpha1.HTTPProvider) { s.Body = `{{ secret .Vars.name "key" }}` }, creds,
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "string literals"}},
		{"printf padding beyond the bound", func(s *v1alpha1.HTTPProvider) { s.Body = `{{ $a := printf "%01000000d" 0 }}` }, creds,
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "printf: a width or precision above 1024"}},
		{"range", func(s *v1alpha1.HTTPProvider) { s.Body = `{{ range .Vars }}{{ end }}` }, creds,
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "range"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := validSpec()
			tc.mutate(&s)
			err := httpprovider.New().Validate(context.Background(), &v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{HTTP: &s}}, tc.creds)
			pt.CheckError(t, err, tc.want, thoughtSpotKey)
		})
	}
	if err := httpprovider.New().Validate(context.Background(), &v1alpha1.EmbedProviderSpec{}, creds); err != nil {
		t.Errorf("Validate without an http block: %v", err)
	}
}

// TestRequests checks what is sent, and the failures found before sending.
func TestRequests(t *testing.T) {
	var got *http.Request
	var gotBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got, gotBody = r, string(b)
		_, _ = w.Write([]byte(`{"token":"` + tokenValue + `","expires_in":60}`))
	}))
	defer srv.Close()
	tests := []struct {
		name   string
		mutate func(s *v1alpha1.HTTPProvider)
		vars   map[string]string
		creds  pt.Creds
		want   pt.Want
		check  func(t *testing.T)
	}{
		{"headers and body", func(s *v1alpha1.HTTPProvider) {
			s.Headers = []v1alpha1.HTTPHeader{{Name: "X-Api-Key", ValueFrom: &v1alpha1.HTTPHeaderSource{SecretKeyRef: pt.Ref("qrvey-credentials/apiKey")}},
				{Name: "Accept", Value: ptr.To("application/vnd.vendor+json")}}
		}, map[string]string{"user": "alice"}, creds, pt.Want{}, func(t *testing.T) {
			if got.Method != http.MethodPost || got.Header.Get("X-Api-Key") != qrveyKey || got.Header.Get("Accept") != "application/vnd.vendor+json" ||
				got.Header.Get("Content-Type") != "application/json" || gotBody != `{"user":"alice","key":"`+thoughtSpotKey+`"}` {
				t.Errorf("sent %s %v %s", got.Method, got.Header, gotBody)
			}
		}},
		{"GET without body", func(s *v1alpha1.HTTPProvider) { s.Method, s.Body = http.MethodGet, "" }, nil, creds, pt.Want{}, func(t *testing.T) {
			if got.Method != http.MethodGet || got.Header.Get("Content-Type") != "" || gotBody != "" {
				t.Errorf("sent %s %v %q", got.Method, got.Header, gotBody)
			}
		}},
		{"missing variable", func(*v1alpha1.HTTPProvider) {}, nil, creds,
			pt.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true, Message: `no entry for key "user"`}, nil},
		{"missing template Secret", func(*v1alpha1.HTTPProvider) {}, map[string]string{"user": "a"}, pt.Creds{},
			pt.Want{Reason: v1alpha1.ReasonCredentialsNotFound}, nil},
		{"header Secret with a line break", func(s *v1alpha1.HTTPProvider) {
			s.Headers = []v1alpha1.HTTPHeader{{Name: "X-Api-Key", ValueFrom: &v1alpha1.HTTPHeaderSource{SecretKeyRef: pt.Ref("bad/key")}}}
		}, map[string]string{"user": "a"}, pt.Creds{"bad/key": "line1\nline2", "thoughtspot-credentials/secretKey": thoughtSpotKey},
			pt.Want{Reason: v1alpha1.ReasonInvalidCredentials, Permanent: true, Message: "X-Api-Key"}, nil},
		{"invalid config", func(s *v1alpha1.HTTPProvider) { s.TokenPath = "[" }, nil, creds,
			pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, gotBody = nil, ""
			s := validSpec()
			s.URL = srv.URL
			tc.mutate(&s)
			req := pt.Request(t, tc.creds, time.Second)
			req.Config.HTTP, req.Params.HTTP = &s, &v1alpha1.HTTPParams{Variables: tc.vars}
			tok, err := httpprovider.New().Issue(context.Background(), req)
			pt.CheckError(t, err, tc.want, qrveyKey, thoughtSpotKey, tokenValue, "line1")
			if tc.check != nil {
				tc.check(t)
			}
			if err == nil && tok.Value != tokenValue {
				t.Errorf("token = %v", tok)
			}
		})
	}
	req := pt.Request(t, creds, time.Second)
	_, err := httpprovider.New().Issue(context.Background(), req)
	pt.CheckError(t, err, pt.Want{Reason: v1alpha1.ReasonVendorMismatch, Permanent: true})
}

func TestSecretRefs(t *testing.T) {
	s := validSpec()
	s.Headers = []v1alpha1.HTTPHeader{{Name: "X-Key", ValueFrom: &v1alpha1.HTTPHeaderSource{SecretKeyRef: pt.Ref("h/k")}}}
	got := httpprovider.New().SecretRefs(&v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{HTTP: &s}})
	want := []v1alpha1.SecretKeySelector{pt.Ref("h/k"), pt.Ref("thoughtspot-credentials/secretKey")}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("SecretRefs = %v, want %v", got, want)
	}
}
