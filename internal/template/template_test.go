package template

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/test/harness/docyaml"
)

const datasetID = "cfafbeb1-8037-4d0c-896e-a46fb27ff229"

func raw(s string) *apiextensionsv1.JSON { return &apiextensionsv1.JSON{Raw: []byte(s)} }

// blocks are vendor blocks with placeholders, one per path kind.
func blocks() map[string]v1alpha1.VendorParams {
	return map[string]v1alpha1.VendorParams{
		"qlik":     {QlikCloud: &v1alpha1.QlikCloudParams{UserLookup: &v1alpha1.QlikUserLookup{Field: "email", Value: "placeholder"}}},
		"qlikNone": {QlikCloud: &v1alpha1.QlikCloudParams{}},
		"boldBI": {BoldBI: &v1alpha1.BoldBIParams{Email: "x@example.com",
			CustomAttributes: []v1alpha1.NameValue{{Name: "tenant", Value: apiextensionsv1.JSON{Raw: []byte(`"x"`)}}}}},
		"powerBI": {PowerBI: &v1alpha1.PowerBIParams{Datasets: []v1alpha1.PowerBIDataset{{ID: datasetID}},
			Identities: []v1alpha1.PowerBIIdentity{{Username: "x", Roles: []string{"Viewer"}, Datasets: []string{datasetID}}}}},
		"superset": {Superset: &v1alpha1.SupersetParams{User: v1alpha1.SupersetGuestUser{Username: "x"},
			Resources: []v1alpha1.SupersetResource{{Type: "dashboard", ID: "d-1"}}, RLS: []v1alpha1.SupersetRLSRule{{Clause: "tenant = 'x'"}}}},
		"jwt":    {JWT: &v1alpha1.JWTParams{Subject: "x", Claims: raw(`{"site":"acme","id":12345678901234567890,"nested":{"a":"b"},"list":["p"]}`)}},
		"jwtNo":  {JWT: &v1alpha1.JWTParams{}},
		"http":   {HTTP: &v1alpha1.HTTPParams{Variables: map[string]string{"orgID": "7"}}},
		"httpNo": {HTTP: &v1alpha1.HTTPParams{}},
		"qrvey":  {Qrvey: &v1alpha1.QrveyParams{UserID: "x", AppID: "a", Permissions: raw(`[{"dataset_id":"d1","value":"v"}]`)}},
	}
}

// spec is a template spec with block and one parameter per path.
func spec(block string, paths ...string) *v1alpha1.EmbedTokenTemplateSpec {
	s := &v1alpha1.EmbedTokenTemplateSpec{ProviderRef: v1alpha1.ProviderRef{Name: "p"}, VendorParams: blocks()[block]}
	for i, p := range paths {
		s.Parameters = append(s.Parameters, v1alpha1.TemplateParameter{Name: "p" + string(rune('a'+i)), Path: p})
	}
	return s
}

// asJSON is v's JSON form, for comparing what a fill wrote.
func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFillWritesEveryPathKind(t *testing.T) {
	tests := []struct {
		name, block, path, value string
		want                     func(*v1alpha1.VendorParams) any
		wantJSON                 string
	}{
		{name: "a string field below a pointer is replaced", block: "qlik", path: "qlikCloud.userLookup.value", value: "alice",
			want: func(p *v1alpha1.VendorParams) any { return p.QlikCloud.UserLookup.Value }, wantJSON: `"alice"`},
		{name: "an optional block the template leaves unset is created", block: "qlikNone", path: "qlikCloud.userLookup.value", value: "alice",
			want: func(p *v1alpha1.VendorParams) any { return p.QlikCloud.UserLookup }, wantJSON: `{"value":"alice"}`},
		{name: "a top-level string field is replaced", block: "boldBI", path: "boldBI.email", value: "alice@acme.com",
			want: func(p *v1alpha1.VendorParams) any { return p.BoldBI.Email }, wantJSON: `"alice@acme.com"`},
		{name: "a field of a list item is replaced", block: "powerBI", path: "powerBI.identities[0].username", value: "alice@acme.com",
			want: func(p *v1alpha1.VendorParams) any { return p.PowerBI.Identities[0].Username }, wantJSON: `"alice@acme.com"`},
		{name: "a string list item is replaced", block: "powerBI", path: "powerBI.identities[0].roles[0]", value: "Customer",
			want: func(p *v1alpha1.VendorParams) any { return p.PowerBI.Identities[0].Roles }, wantJSON: `["Customer"]`},
		{name: "a field of a nested struct is replaced", block: "superset", path: "superset.user.username", value: "alice",
			want: func(p *v1alpha1.VendorParams) any { return p.Superset.User }, wantJSON: `{"username":"alice"}`},
		{name: "a list item's string is replaced", block: "superset", path: "superset.rls[0].clause", value: "tenant = 'acme'",
			want: func(p *v1alpha1.VendorParams) any { return p.Superset.RLS[0].Clause }, wantJSON: `"tenant = 'acme'"`},
		{name: "a new key of a free-form object gets a JSON string and the rest is kept as written", block: "jwt", path: "jwt.claims.tenant",
			value: "acme", want: func(p *v1alpha1.VendorParams) any { return p.JWT.Claims },
			wantJSON: `{"id":12345678901234567890,"list":["p"],"nested":{"a":"b"},"site":"acme","tenant":"acme"}`},
		{name: "an existing string key of a free-form object is replaced", block: "jwt", path: "jwt.claims.site", value: "globex",
			want:     func(p *v1alpha1.VendorParams) any { return string(p.JWT.Claims.Raw) },
			wantJSON: `"{\"id\":12345678901234567890,\"list\":[\"p\"],\"nested\":{\"a\":\"b\"},\"site\":\"globex\"}"`},
		{name: "a nested key below a free-form object is written", block: "jwt", path: "jwt.claims.nested.c", value: "d",
			want: func(p *v1alpha1.VendorParams) any { return p.JWT.Claims }, wantJSON: `{"id":12345678901234567890,"list":["p"],"nested":{"a":"b","c":"d"},"site":"acme"}`},
		{name: "a free-form object the template leaves unset is created", block: "jwtNo", path: "jwt.claims.tenant", value: "acme",
			want: func(p *v1alpha1.VendorParams) any { return p.JWT.Claims }, wantJSON: `{"tenant":"acme"}`},
		{name: "an item of a free-form list is reached by index", block: "qrvey", path: "qrvey.permissions[0].value", value: "acme",
			want: func(p *v1alpha1.VendorParams) any { return p.Qrvey.Permissions }, wantJSON: `[{"dataset_id":"d1","value":"acme"}]`},
		{name: "a free-form value that holds a string is replaced by one", block: "boldBI", path: "boldBI.customAttributes[0].value", value: "acme",
			want: func(p *v1alpha1.VendorParams) any { return p.BoldBI.CustomAttributes[0].Value }, wantJSON: `"acme"`},
		{name: "a key of a string map is set", block: "http", path: "http.variables.username", value: "alice",
			want: func(p *v1alpha1.VendorParams) any { return p.HTTP.Variables }, wantJSON: `{"orgID":"7","username":"alice"}`},
		{name: "a string map the template leaves unset is created", block: "httpNo", path: "http.variables.username", value: "alice",
			want: func(p *v1alpha1.VendorParams) any { return p.HTTP.Variables }, wantJSON: `{"username":"alice"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := spec(tt.block, tt.path)
			before := asJSON(t, s)
			c, err := Compile(s)
			if err != nil {
				t.Fatal(err)
			}
			filled, err := c.Fill(map[string]string{"pa": tt.value}, Caller{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := asJSON(t, tt.want(filled)); got != tt.wantJSON {
				t.Errorf("got %s, want %s", got, tt.wantJSON)
			}
			if after := asJSON(t, s); after != before {
				t.Errorf("the template changed:\n%s\n%s", before, after)
			}
			again, err := c.Fill(map[string]string{"pa": tt.value + "2"}, Caller{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if asJSON(t, tt.want(filled)) == asJSON(t, tt.want(again)) {
				t.Errorf("two fills share their vendor block")
			}
		})
	}
}

func TestCompileRefusesBadPaths(t *testing.T) {
	tests := []struct {
		name, block, path, want string
	}{
		{"a path of another vendor's block is refused", "jwt", "boldBI.email", "must start with jwt."},
		{"the vendor block itself is refused", "jwt", "jwt", "names the vendor block itself"},
		{"an unknown field is refused", "boldBI", "boldBI.emails", `BoldBIParams has no field "emails"`},
		{"a struct is not a string", "qlik", "qlikCloud.userLookup", "names a object, not a string"},
		{"a list without an index is refused", "powerBI", "powerBI.identities", "names a list, not a string"},
		{"a number is refused", "superset", "superset.rls[0].dataset", "names a number, not a string"},
		{"an index the template does not hold is refused", "powerBI", "powerBI.identities[1].username", "is not in the template, whose list holds 1 items"},
		{"an index of a field that is no list is refused", "boldBI", "boldBI.email[0]", "not a list"},
		{"an index of three digits is refused", "powerBI", "powerBI.identities[100].username", "bad index"},
		{"a malformed index is refused", "powerBI", "powerBI.identities[a].username", "bad index"},
		{"an empty part is refused", "jwt", "jwt..subject", "a part has no name"},
		{"a key outside admission's grammar is refused", "jwt", "jwt.claims.a\xffb", "is no field name or key"},
		{"a field below a string is refused", "boldBI", "boldBI.email.x", "below a string"},
		{"a key of a string map must end the path", "http", "http.variables.a.b", "must end the path"},
		{"a free-form key holding an object is refused", "jwt", "jwt.claims.nested", "not a string"},
		{"a free-form key holding a number is refused", "jwt", "jwt.claims.id", "not a string"},
		{"a free-form object itself is refused", "jwt", "jwt.claims", "not a string"},
		{"an index of a free-form object is refused", "jwt", "jwt.claims[0]", "indexes an object"},
		{"a key of a free-form list is refused", "qrvey", "qrvey.permissions.x", "key of a list"},
		{"an index a free-form list does not hold is refused", "qrvey", "qrvey.permissions[3].value", "holds 1 items"},
		{"a path longer than 256 bytes is refused", "jwt", "jwt.claims." + strings.Repeat("a", 260), "longer than 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(spec(tt.block, tt.path))
			var e *Error
			if !errors.As(err, &e) || e.Reason != v1alpha1.ReasonInvalidParameters || !strings.Contains(e.Message, tt.want) {
				t.Errorf("got %v, want an InvalidParameters error containing %q", err, tt.want)
			}
		})
	}
}

func TestCompileRefusesBadTemplates(t *testing.T) {
	twoOnOnePath := spec("jwt", "jwt.subject", "jwt.subject")
	duplicate := spec("jwt", "jwt.subject", "jwt.claims.tenant")
	duplicate.Parameters[1].Name = "pa"
	badRule := spec("jwt", "jwt.subject")
	badRule.Parameters[0].Validation = &v1alpha1.ParameterValidation{Expression: "value.size()"}
	unknownVar := spec("jwt", "jwt.subject")
	unknownVar.Parameters[0].Validation = &v1alpha1.ParameterValidation{Expression: "object.spec == 1"}
	costly := spec("jwt", "jwt.subject")
	costly.Parameters[0].Validation = &v1alpha1.ParameterValidation{
		Expression: "namespaceObject.metadata.labels.all(a, namespaceObject.metadata.labels.all(b, namespaceObject.metadata.labels.all(c, a != b || b != c)))"}
	tooMany := spec("http")
	for i := range MaxParameters + 1 {
		tooMany.Parameters = append(tooMany.Parameters, v1alpha1.TemplateParameter{Name: "p" + string(rune('a'+i)), Path: "http.variables.v" + string(rune('a'+i))})
	}
	tests := []struct {
		name string
		spec *v1alpha1.EmbedTokenTemplateSpec
		want string
	}{
		{"a template without a vendor block is refused", &v1alpha1.EmbedTokenTemplateSpec{}, "sets no vendor block"},
		{"two parameters on one path are refused", twoOnOnePath, "fills the same path"},
		{"a name declared twice is refused", duplicate, "declared twice"},
		{"a path below another parameter's is refused", spec("jwtNo", "jwt.claims.a", "jwt.claims.a.b"), `overlaps parameter "pa"'s`},
		{"a path above another parameter's is refused", spec("jwtNo", "jwt.claims.a.b", "jwt.claims.a"), `overlaps parameter "pa"'s`},
		{"an index with a leading zero is refused", spec("powerBI", "powerBI.identities[0].roles[0]", "powerBI.identities[00].roles[0]"), "bad index"},
		{"a validation that does not return a bool is refused", badRule, "must evaluate to bool"},
		{"a validation reading an undeclared variable is refused", unknownVar, "undeclared reference to 'object'"},
		{"a validation over the cost limit is refused", costly, "exceeds the limit"},
		{"more than 32 parameters are refused", tooMany, "more than 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.spec)
			var e *Error
			if !errors.As(err, &e) || !strings.Contains(e.Message, tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestFillRefusals(t *testing.T) {
	s := spec("powerBI", "powerBI.identities[0].username", "powerBI.identities[0].datasets[0]")
	s.Parameters[0].MaxLength = 20
	s.Parameters[0].Validation = &v1alpha1.ParameterValidation{
		Expression: "value.endsWith('@' + namespaceObject.metadata.labels['domain'])", Message: "users must be of the namespace's domain"}
	s.Parameters[1].Validation = &v1alpha1.ParameterValidation{Expression: "caller.serviceAccount == 'web'"}
	c, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	if !c.UsesNamespace() {
		t.Error("a validation reads namespaceObject, but UsesNamespace is false")
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"domain": "acme.com"}}}
	web := Caller{Username: "system:serviceaccount:shop:web", Namespace: "shop", ServiceAccount: "web", PodName: "web-1"}
	tests := []struct {
		name   string
		params map[string]string
		caller Caller
		ns     *corev1.Namespace
		param  string
		want   string
	}{
		{"a parameter the template does not declare is refused", map[string]string{"pa": "a@acme.com", "pb": datasetID, "zz": "x"}, web, ns,
			"zz", `parameter "zz" is not declared by the template (it declares pa, pb)`},
		{"more parameters than a template may declare are refused", manyParams(), web, ns, "", "more than the 32"},
		{"a missing parameter is refused", map[string]string{"pa": "a@acme.com"}, web, ns, "pb", `parameter "pb" is missing`},
		{"an empty value is refused", map[string]string{"pa": "", "pb": datasetID}, web, ns, "pa", "is empty"},
		{"a value over the parameter's maxLength is refused", map[string]string{"pa": strings.Repeat("a", 21), "pb": datasetID}, web, ns,
			"pa", "longer than its maxLength, 20 bytes"},
		{"a value that is not UTF-8 is refused", map[string]string{"pa": "a\xffb@acme.com", "pb": datasetID}, web, ns, "pa", "not valid UTF-8"},
		{"a value breaking its field's pattern is refused", map[string]string{"pa": "a@acme.com", "pb": "not-a-guid"}, web, ns,
			"pb", "does not match its field's pattern"},
		{"a value failing its validation gets the validation's message", map[string]string{"pa": "a@globex.com", "pb": datasetID}, web, ns,
			"pa", `parameter "pa": users must be of the namespace's domain`},
		{"a validation without a message shows its expression", map[string]string{"pa": "a@acme.com", "pb": datasetID}, Caller{ServiceAccount: "batch"}, ns,
			"pb", "failed rule: caller.serviceAccount == 'web'"},
		{"a validation that cannot be evaluated refuses the value", map[string]string{"pa": "a@acme.com", "pb": datasetID}, web,
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, "pa", "could not be evaluated: no such key: domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Fill(tt.params, tt.caller, tt.ns)
			var e *Error
			if !errors.As(err, &e) || e.Reason != v1alpha1.ReasonInvalidParameters || e.Parameter != tt.param || !strings.Contains(e.Message, tt.want) {
				t.Fatalf("got %#v, want parameter %s refused with %q", err, tt.param, tt.want)
			}
			for _, v := range tt.params {
				if len(v) > 3 && strings.Contains(e.Message, v) {
					t.Errorf("the message %q quotes the value %q", e.Message, v)
				}
			}
		})
	}
	if _, err := c.Fill(map[string]string{"pa": "a@acme.com", "pb": datasetID}, web, nil); err == nil {
		t.Error("a template whose validation reads namespaceObject filled without the Namespace")
	}
	filled, err := c.Fill(map[string]string{"pa": "a@acme.com", "pb": datasetID}, web, ns)
	if err != nil {
		t.Fatal(err)
	}
	if got := filled.PowerBI.Identities[0]; got.Username != "a@acme.com" || got.Datasets[0] != datasetID {
		t.Errorf("filled %+v", got)
	}
}

func TestToRequestIsWhatRequestValidationsSee(t *testing.T) {
	tmpl := &v1alpha1.EmbedTokenTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "dash", Labels: map[string]string{"team": "a"},
		Annotations: map[string]string{"note": "b"}}, Spec: *spec("jwt", "jwt.subject")}
	tmpl.Spec.Lifetime = &metav1.Duration{Duration: 600e9}
	c, err := Compile(&tmpl.Spec)
	if err != nil {
		t.Fatal(err)
	}
	filled, err := c.Fill(map[string]string{"pa": "alice"}, Caller{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	etr := ToRequest(tmpl, filled)
	if etr.Kind != "EmbedTokenRequest" || etr.Name != "dash" || etr.Namespace != "shop" || etr.Labels["team"] != "a" ||
		etr.Annotations["note"] != "b" || etr.Spec.ProviderRef != tmpl.Spec.ProviderRef || etr.Spec.Lifetime.Duration != 600e9 ||
		etr.Spec.JWT.Subject != "alice" {
		t.Errorf("ToRequest = %+v", etr)
	}
	etr.Labels["team"] = "changed"
	if tmpl.Labels["team"] != "a" {
		t.Error("the request shares the template's labels")
	}
}

func TestCacheCompilesEachGenerationOnce(t *testing.T) {
	c := NewCache(2)
	tmpl := &v1alpha1.EmbedTokenTemplate{ObjectMeta: metav1.ObjectMeta{UID: "u1", Generation: 1}, Spec: *spec("jwt", "jwt.subject")}
	first, err := c.Get(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := c.Get(tmpl); again != first {
		t.Error("the same generation compiled twice")
	}
	tmpl.Generation, tmpl.Spec.Parameters[0].Path = 2, "jwt.nope"
	if _, err := c.Get(tmpl); err == nil {
		t.Error("a new generation served the old compilation")
	}
	for _, uid := range []string{"u2", "u3"} {
		other := tmpl.DeepCopy()
		other.UID = types.UID(uid)
		_, _ = c.Get(other)
	}
	if c.Len() != 2 {
		t.Errorf("the cache holds %d templates, more than its size 2", c.Len())
	}
	c.Forget("u3")
	if c.Len() != 1 {
		t.Errorf("Forget left %d templates", c.Len())
	}
}

// TestBoundsAreGenerated fails when zz_generated.bounds.go no longer
// matches the API's markers: run go generate ./internal/template.
func TestBoundsAreGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the generator")
	}
	out := filepath.Join(t.TempDir(), "bounds.go")
	cmd := exec.Command("go", "run", "../../hack/templatepaths", "-api", "../../api/v1alpha1", "-bounds", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	want, _ := os.ReadFile(out)
	got, _ := os.ReadFile("zz_generated.bounds.go")
	if string(got) != string(want) {
		t.Error("zz_generated.bounds.go is stale: run go generate ./internal/template")
	}
}

// TestEveryBoundNamesAField checks the table against the types: each entry
// names a string field, or a list of strings for items.
func TestEveryBoundNamesAField(t *testing.T) {
	byName := map[string]reflect.Type{}
	var collect func(reflect.Type)
	collect = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || byName[t.Name()] != nil || t == jsonType {
			return
		}
		byName[t.Name()] = t
		for i := range t.NumField() {
			collect(t.Field(i).Type)
		}
	}
	collect(reflect.TypeFor[v1alpha1.VendorParams]())
	for k := range fieldBounds {
		typ, ok := byName[k.typeName]
		if !ok {
			t.Errorf("%s is not a vendor block type", k.typeName)
			continue
		}
		i, ok := fieldByJSONName(typ, k.field)
		if !ok {
			t.Errorf("%s has no field %s", k.typeName, k.field)
			continue
		}
		ft := typ.Field(i).Type
		if k.item {
			ft = ft.Elem()
		}
		if ft.Kind() != reflect.String {
			t.Errorf("%s.%s (item %v) is a %s, not a string", k.typeName, k.field, k.item, ft)
		}
	}
}

// documentedTemplates are the EmbedTokenTemplates of config/samples and of
// the YAML blocks of the README and docs pages, by file.
func documentedTemplates(t *testing.T) map[string][]v1alpha1.EmbedTokenTemplate {
	t.Helper()
	root := filepath.Join("..", "..")
	docs, err := docyaml.Documents(docyaml.Glob(filepath.Join(root, "config", "samples", "*.yaml"), filepath.Join(root, "docs", "*.md"),
		filepath.Join(root, "docs", "vendors", "*.md"), filepath.Join(root, "README.md"))...)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]v1alpha1.EmbedTokenTemplate{}
	for path, objects := range docs {
		for _, doc := range objects {
			var meta struct{ Kind string }
			if yaml.Unmarshal(doc, &meta) != nil || meta.Kind != "EmbedTokenTemplate" {
				continue
			}
			var ett v1alpha1.EmbedTokenTemplate
			if err := yaml.UnmarshalStrict(doc, &ett); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			out[path] = append(out[path], ett)
		}
	}
	return out
}

// TestDocumentedTemplatesCompile compiles every documented template, and
// fills the samples with a value their validations admit.
func TestDocumentedTemplatesCompile(t *testing.T) {
	docs := documentedTemplates(t)
	samples := 0
	for path, templates := range docs {
		for _, ett := range templates {
			c, err := Compile(&ett.Spec)
			if err != nil {
				t.Errorf("%s: %s: %v", path, ett.Name, err)
				continue
			}
			if !strings.Contains(path, "samples") {
				continue
			}
			samples++
			params := map[string]string{}
			for _, name := range c.Parameters() {
				params[name] = "alice"
				if name == "email" { // Sigma's sub must be an address
					params[name] = "alice@acme.example"
				}
			}
			if _, err := c.Fill(params, Caller{Namespace: "shop"}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		}
	}
	if samples == 0 {
		t.Error("no EmbedTokenTemplate sample under config/samples")
	}
}

// manyParams is a call with one parameter more than any template declares.
func manyParams() map[string]string {
	params := map[string]string{}
	for i := range MaxParameters + 1 {
		params[fmt.Sprintf("p%d", i)] = "x"
	}
	return params
}
