package requestrules

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/test/harness/docyaml"
)

// documentedRules returns the requestValidations of every provider shown in
// the vendor guides, the README and config/samples, by provider name.
func documentedRules(t *testing.T) map[string][]v1alpha1.RequestValidation {
	t.Helper()
	root := filepath.Join("..", "..")
	docs, err := docyaml.Documents(docyaml.Glob(filepath.Join(root, "docs", "vendors", "*.md"), filepath.Join(root, "README.md"),
		filepath.Join(root, "config", "samples", "*.yaml"))...)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]v1alpha1.RequestValidation{}
	for path, objects := range docs {
		for _, doc := range objects {
			var obj struct {
				Kind     string
				Metadata metav1.ObjectMeta
				Spec     v1alpha1.EmbedProviderSpec
			}
			if err := yaml.Unmarshal(doc, &obj); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if len(obj.Spec.RequestValidations) > 0 {
				out[obj.Metadata.Name] = obj.Spec.RequestValidations
			}
		}
	}
	return out
}

func jsonValue(v any) *apiextensionsv1.JSON {
	raw, _ := json.Marshal(v)
	return &apiextensionsv1.JSON{Raw: raw}
}

// TestDocumentedRules compiles every documented rule and checks that each
// recipe admits and denies what its guide says.
func TestDocumentedRules(t *testing.T) {
	docs := documentedRules(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop",
		Labels:      map[string]string{"tenant": "acme", "thoughtspot-org": "7"},
		Annotations: map[string]string{"embedtokens.io/email-domain": "acme.com", "superset.embedtokens.io/d-1": "", "superset.embedtokens.io/d-2": ""}}}
	qrveyParams := func(clientID string) v1alpha1.VendorParams {
		return v1alpha1.VendorParams{Qrvey: &v1alpha1.QrveyParams{UserID: "alice", AppID: "app-1", ClientID: clientID}}
	}
	boldBI := func(email, tenant string) v1alpha1.VendorParams {
		return v1alpha1.VendorParams{BoldBI: &v1alpha1.BoldBIParams{Email: email,
			CustomAttributes: []v1alpha1.NameValue{{Name: "tenant", Value: *jsonValue(tenant)}}}}
	}
	jwtParams := func(sub string, claims map[string]any) v1alpha1.VendorParams {
		p := &v1alpha1.JWTParams{Subject: sub}
		if claims != nil {
			p.Claims = jsonValue(claims)
		}
		return v1alpha1.VendorParams{JWT: p}
	}
	httpVars := func(vars map[string]string) v1alpha1.VendorParams {
		return v1alpha1.VendorParams{HTTP: &v1alpha1.HTTPParams{Variables: vars}}
	}
	powerBI := func(edit func(*v1alpha1.PowerBIParams)) v1alpha1.VendorParams {
		p := &v1alpha1.PowerBIParams{
			Reports:    []v1alpha1.PowerBIReport{{ID: "5b218778-e7a5-4d73-8187-f10824047715"}},
			Datasets:   []v1alpha1.PowerBIDataset{{ID: "cfafbeb1-8037-4d0c-896e-a46fb27ff229"}},
			Identities: []v1alpha1.PowerBIIdentity{{Username: "alice@acme.com", Roles: []string{"Customer"}, Datasets: []string{"cfafbeb1-8037-4d0c-896e-a46fb27ff229"}}},
		}
		if edit != nil {
			edit(p)
		}
		return v1alpha1.VendorParams{PowerBI: p}
	}
	yes := true
	superset := func(username, dashboard string, rls ...v1alpha1.SupersetRLSRule) v1alpha1.VendorParams {
		return v1alpha1.VendorParams{Superset: &v1alpha1.SupersetParams{User: v1alpha1.SupersetGuestUser{Username: username},
			Resources: []v1alpha1.SupersetResource{{Type: "dashboard", ID: dashboard}}, RLS: rls}}
	}
	tenantRule := v1alpha1.SupersetRLSRule{Clause: "tenant_id = 'acme'"}
	dataset := int64(3)
	tests := []struct {
		provider string
		params   v1alpha1.VendorParams
		admit    bool
	}{
		{"qrvey-shared", qrveyParams("acme"), true},
		{"qrvey-shared", qrveyParams("globex"), false},
		{"qrvey-shared", qrveyParams(""), false},
		{"qrvey-shared", v1alpha1.VendorParams{Qrvey: &v1alpha1.QrveyParams{UserID: "a", AppID: "b", ClientID: "acme",
			Permissions: jsonValue([]any{map[string]any{"dataset_id": "all"}})}}, false},
		{"qlik-shared", qlik("acme/alice"), true},
		{"qlik-shared", qlik("globex/bob"), false},
		{"qlik-shared", v1alpha1.VendorParams{QlikCloud: &v1alpha1.QlikCloudParams{
			UserLookup: &v1alpha1.QlikUserLookup{Field: "email", Value: "acme/alice"}}}, false},
		{"qlik-shared", v1alpha1.VendorParams{QlikCloud: &v1alpha1.QlikCloudParams{}}, false},
		{"tableau-shared", jwtParams("alice@acme.example.com", map[string]any{"site": "acme", "scp": []string{"x"}}), true},
		{"tableau-shared", jwtParams("alice@acme.example.com", nil), true},
		{"tableau-shared", jwtParams("bob@globex.example.com", nil), false},
		{"tableau-shared", jwtParams("alice@acme.example.com", map[string]any{"site": "globex"}), false},
		{"tableau-shared", jwtParams("alice@acme.example.com", map[string]any{"admin": true}), false},
		{"oauth2-shared", v1alpha1.VendorParams{OAuth2: &v1alpha1.OAuth2Params{}}, true},
		{"oauth2-shared", v1alpha1.VendorParams{OAuth2: &v1alpha1.OAuth2Params{Scopes: []string{"dashboards:sales"},
			ExtraParameters: jsonValue(map[string]any{"context": map[string]any{"tenant": "acme"}})}}, true},
		{"oauth2-shared", v1alpha1.VendorParams{OAuth2: &v1alpha1.OAuth2Params{Scopes: []string{"admin"}}}, false},
		{"oauth2-shared", v1alpha1.VendorParams{OAuth2: &v1alpha1.OAuth2Params{Audience: "https://other"}}, false},
		{"oauth2-shared", v1alpha1.VendorParams{OAuth2: &v1alpha1.OAuth2Params{
			ExtraParameters: jsonValue(map[string]any{"context": map[string]any{"tenant": "globex"}})}}, false},
		{"boldbi-shared", boldBI("alice@acme.com", "acme"), true},
		{"boldbi-shared", boldBI("alice@evil.acme.com", "acme"), false},
		{"boldbi-shared", boldBI("alice@acme.com", "globex"), false},
		{"boldbi-shared", v1alpha1.VendorParams{BoldBI: &v1alpha1.BoldBIParams{Email: "alice@acme.com"}}, false},
		{"thoughtspot-shared", httpVars(map[string]string{"username": "alice", "orgID": "7"}), true},
		{"thoughtspot-shared", httpVars(map[string]string{"username": "alice", "orgID": "8"}), false},
		{"thoughtspot-shared", httpVars(map[string]string{"username": "alice\"}", "orgID": "7"}), false},
		{"thoughtspot-shared", httpVars(map[string]string{"username": "alice", "orgID": "7", "extra": "x"}), false},
		{"powerbi-shared", powerBI(nil), true},
		{"powerbi-shared", powerBI(func(p *v1alpha1.PowerBIParams) { p.Identities[0].CustomData = "acme" }), true},
		{"powerbi-shared", powerBI(func(p *v1alpha1.PowerBIParams) { p.Identities[0].Username = "bob@globex.com" }), false},
		{"powerbi-shared", powerBI(func(p *v1alpha1.PowerBIParams) { p.Identities[0].Username = "alice@evil.acme.com" }), false},
		{"powerbi-shared", powerBI(func(p *v1alpha1.PowerBIParams) { p.Identities[0].CustomData = "globex" }), false},
		{"powerbi-shared", powerBI(func(p *v1alpha1.PowerBIParams) { p.Identities = nil }), false},
		{"powerbi-shared", powerBI(func(p *v1alpha1.PowerBIParams) { p.Identities[0].Roles = []string{"Admin"} }), false},
		{"powerbi-shared", powerBI(func(p *v1alpha1.PowerBIParams) { p.Identities[0].Roles = append(p.Identities[0].Roles, "Admin") }), false},
		{"powerbi-shared", powerBI(func(p *v1alpha1.PowerBIParams) { p.Identities[0].Roles = nil }), false},
		{"powerbi-shared", powerBI(func(p *v1alpha1.PowerBIParams) { p.Reports[0].AllowEdit = &yes }), false},
		{"powerbi-shared", powerBI(func(p *v1alpha1.PowerBIParams) { p.Datasets[0].XMLAPermissions = "ReadOnly" }), false},
		{"powerbi-shared", powerBI(func(p *v1alpha1.PowerBIParams) {
			p.TargetWorkspaces = []v1alpha1.PowerBIWorkspace{{ID: "f089354e-8366-4e18-aea3-4cb4a3a50b48"}}
		}), false},
		{"superset-shared", superset("shop/alice", "d-2", tenantRule), true},
		{"superset-shared", superset("globex/alice", "d-2", tenantRule), false},
		{"superset-shared", superset("shop/alice", "d-3", tenantRule), false},
		{"superset-shared", superset("shop/alice", "d-1,d-2", tenantRule), false},
		{"superset-shared", superset("shop/alice", "d-1"), false},
		{"superset-shared", superset("shop/alice", "d-1", v1alpha1.SupersetRLSRule{Clause: "tenant_id = 'globex'"}), false},
		{"superset-shared", superset("shop/alice", "d-1", tenantRule, v1alpha1.SupersetRLSRule{Clause: "1=1) OR (1=1"}), false},
		{"superset-shared", superset("shop/alice", "d-1", v1alpha1.SupersetRLSRule{Clause: tenantRule.Clause, Dataset: &dataset}), false},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		rules, ok := docs[tt.provider]
		if !ok {
			t.Errorf("no documented provider %s", tt.provider)
			continue
		}
		seen[tt.provider] = true
		p, err := Compile(rules)
		if err != nil {
			t.Errorf("%s: %v", tt.provider, err)
			continue
		}
		d := p.Evaluate(context.Background(), request("shop", tt.params), ns)
		if (d == nil) != tt.admit {
			t.Errorf("%s with %+v: denial %v, want admitted %v", tt.provider, tt.params, d, tt.admit)
		}
	}
	for name, rules := range docs {
		if !seen[name] {
			if _, err := Compile(rules); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	if len(seen) < 6 {
		t.Errorf("only %d recipes checked", len(seen))
	}
}
