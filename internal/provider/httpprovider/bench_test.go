package httpprovider_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider/httpprovider"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// These benchmarks cover the generic HTTP provider's pure code, run on every
// token it issues: path expressions, the request body template and reading
// the answer. `make bench` runs them; compare runs with benchstat.

// benchOpaque is the opaque token in benchResponse.
const benchOpaque = "opaque-t0ken-9f8e7d6c5b4a3210-0123456789abcdef"

// benchResponse is a vendor answer of about 1 KB: a success flag, the token
// in two forms with its expiry in two forms, and the user, permissions and
// metadata vendors echo around them.
func benchResponse(b *testing.B, jwtToken string) []byte {
	b.Helper()
	answer := map[string]any{
		"success": true,
		"data": map[string]any{
			"token":      benchOpaque,
			"jwt":        jwtToken,
			"expires_in": 3600,
			"expiresAt":  pt.Epoch.Add(time.Hour).Format(time.RFC3339),
			"Data":       map[string]any{".expires": "1/2/2030 4:04:05 AM"},
			"user": map[string]any{
				"id": "f3b1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "email": "analytics-embed@acme.example.com",
				"displayName": "Analytics Embed", "locale": "en-GB", "timezone": "Europe/London",
			},
			"permissions": []any{
				map[string]any{"resource": "dashboard", "id": "sales-overview", "actions": []any{"view", "filter", "export"}},
				map[string]any{"resource": "dashboard", "id": "finance-kpis", "actions": []any{"view"}},
				map[string]any{"resource": "dataset", "id": "orders-2030", "actions": []any{"query"}},
			},
		},
		"meta": map[string]any{
			"requestId": "req-7d6e5a4b3c2d-b7e2c9f1-0a3d-4e5b-9c8f", "region": "eu-west-1",
			"apiVersion": "2030-01-01", "rateLimit": map[string]any{"limit": 600, "remaining": 599, "reset": 60},
			"links": map[string]any{
				"self":    "https://vendor.example.com/api/v1/embed/token?tenant=acme-corp-eu-west-1",
				"refresh": "https://vendor.example.com/api/v1/embed/token/refresh",
			},
		},
	}
	body, err := json.Marshal(answer)
	if err != nil {
		b.Fatal(err)
	}
	if len(body) < 900 || len(body) > 1400 {
		b.Fatalf("benchmark body is %d bytes, want about 1 KB", len(body))
	}
	return body
}

// benchPaths are path expressions in each syntax ParsePath accepts, with
// what they find in benchResponse.
var benchPaths = []struct {
	name, expr string
	want       any
}{
	{"dotted", ".data.token", benchOpaque},
	{"dollar_index", "$.data.permissions[1].actions[0]", "view"},
	{"quoted_key", `.data.Data[".expires"]`, "1/2/2030 4:04:05 AM"},
}

// BenchmarkParsePath measures parsing a path expression, which Issue does
// for every configured path on every call.
func BenchmarkParsePath(b *testing.B) {
	for _, tc := range benchPaths {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if p, err := httpprovider.ParsePath(tc.expr); err != nil || p.String() != tc.expr {
					b.Fatalf("ParsePath(%s) = %v, %v", tc.expr, p, err)
				}
			}
		})
	}
}

// BenchmarkLookup measures finding a value in a decoded ~1 KB answer with
// an already parsed path.
func BenchmarkLookup(b *testing.B) {
	doc := decode(b, string(benchResponse(b, pt.JWTWithExp(b, pt.Epoch.Add(time.Hour)))))
	for _, tc := range benchPaths {
		b.Run(tc.name, func(b *testing.B) {
			p, err := httpprovider.ParsePath(tc.expr)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if v, ok := p.Lookup(doc); !ok || v != tc.want {
					b.Fatalf("Lookup(%s) = %v, %v; want %v", tc.expr, v, ok, tc.want)
				}
			}
		})
	}
}

// benchBodyTemplate is a request body as a vendor preset writes one: escaped
// variables, a Secret, the lifetime, a JSON-encoded value, a pass-through
// JSON fragment and an optional field.
const benchBodyTemplate = `{
  "userId": "{{ .Vars.user }}",
  "clientId": "{{ .Vars.client }}",
  "apiKey": "{{ secret "app-creds" "key" }}",
  "expiresIn": {{ .LifetimeSeconds }},
  "displayName": {{ json .Vars.name }},
  "filters": {{ raw .Vars.filters }},
  {{- with index .Vars "org" }}
  "org": "{{ . }}",
  {{- end }}
  "dashboards": ["sales-overview", "finance-kpis"]
}`

// BenchmarkRenderBody measures rendering the request body, which Issue does
// (parse, check and execute the template) on every call.
func BenchmarkRenderBody(b *testing.B) {
	data := httpprovider.TemplateData{
		Vars: map[string]string{
			"user": "alice@acme.example.com", "client": "embed-portal", "name": `Alice "Al" O'Neil`,
			"filters": `{"region":["EMEA","APAC"],"year":2030}`, "org": "acme-corp",
		},
		LifetimeSeconds: 3600,
	}
	b.ReportAllocs()
	for b.Loop() {
		body, err := httpprovider.RenderBody(benchBodyTemplate, data, secrets)
		if err != nil || !json.Valid(body) || !strings.Contains(string(body), `"apiKey": "`+secretValue+`"`) {
			b.Fatalf("RenderBody = %s, %v", body, err)
		}
	}
}

// BenchmarkParseResponse measures reading a ~1 KB answer as Issue does on
// every call: compile the spec's paths, decode, check success, find the
// token and work out its expiry, in each way an expiry can be learnt.
func BenchmarkParseResponse(b *testing.B) {
	body := benchResponse(b, pt.JWTWithExp(b, pt.Epoch.Add(time.Hour)))
	for _, tc := range []struct {
		name string
		spec v1alpha1.HTTPProvider
	}{
		{"expires_in", v1alpha1.HTTPProvider{TokenPath: ".data.token", ExpiresInPath: ".data.expires_in",
			SuccessPath: ".success", SuccessValue: "true"}},
		{"expires_at_rfc3339", v1alpha1.HTTPProvider{TokenPath: ".data.token", ExpiresAtPath: ".data.expiresAt"}},
		{"from_jwt", v1alpha1.HTTPProvider{TokenPath: ".data.jwt", Expiry: &v1alpha1.ExpiryFallback{FromJWT: ptr.To(true)}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			spec := tc.spec
			spec.URL = "https://vendor.example.com/api/v1/embed/token"
			want := pt.Epoch.Add(time.Hour)
			b.ReportAllocs()
			for b.Loop() {
				tok, err := httpprovider.ParseResponse(&spec, body, pt.Epoch)
				if err != nil || tok.Value == "" || !tok.ExpiresAt.Equal(want) {
					b.Fatalf("ParseResponse = %v, %v; want a token expiring at %v", tok.ExpiresAt, err, want)
				}
			}
		})
	}
}
