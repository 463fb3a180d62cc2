package requestrules

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// The example rules of docs/vendors/*.md.
const (
	qrveyTenantRule = "object.spec.qrvey.clientID == namespaceObject.metadata.labels['tenant']"
	qlikPrefixRule  = "has(object.spec.qlikCloud.userLookup) && " +
		"object.spec.qlikCloud.userLookup.value.startsWith(namespaceObject.metadata.labels['tenant'] + '/')"
)

func rules(exprs ...string) []v1alpha1.RequestValidation {
	out := make([]v1alpha1.RequestValidation, len(exprs))
	for i, e := range exprs {
		out[i] = v1alpha1.RequestValidation{Expression: e}
	}
	return out
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name  string
		rules []v1alpha1.RequestValidation
		want  []string // substrings of the error
	}{
		{"syntax error", rules("object.spec.qrvey.clientID =="),
			[]string{"spec.requestValidations[0].expression: compilation failed", "Syntax error"}},
		{"undeclared variable", rules("params.tenant == 'a'"),
			[]string{"undeclared reference to 'params'"}},
		{"unknown function", rules("object.spec.qrvey.clientID.frobnicate()"),
			[]string{"undeclared reference to 'frobnicate'"}},
		{"string result", rules("object.metadata.name"),
			[]string{"must evaluate to bool but got dyn"}},
		{"int result", rules("1 + 1"),
			[]string{"must evaluate to bool but got int"}},
		{"bad regex literal", rules("object.spec.qrvey.clientID.matches('(')"),
			[]string{"compilation failed", "invalid matches argument"}},
		{"nested comprehension over request fields",
			rules("object.metadata.annotations.all(a, object.metadata.annotations.all(b, a == b))"),
			[]string{"estimated worst-case cost", "exceeds the limit 10000000"}},
		{"every bad rule is named by index", rules("true", "1", "object.x =="),
			[]string{"spec.requestValidations[1].expression: must evaluate to bool", "spec.requestValidations[2].expression: compilation failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.rules)
			if err == nil {
				t.Fatalf("Compile succeeded, want an error containing %q", tt.want)
			}
			if p != nil {
				t.Errorf("Compile returned a policy with its error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestCompileAcceptsKubernetesLibraries(t *testing.T) {
	for _, expr := range []string{
		qrveyTenantRule,
		qlikPrefixRule,
		"object.spec.oauth2.scopes.all(s, s.matches('^reports:[a-z]+$'))",
		"sets.contains(['read', 'write'], object.spec.oauth2.scopes)",
		"url(object.spec.http.variables['callback']).getHost() == 'example.com'",
		"object.spec.boldBI.email.lowerAscii().endsWith('@example.com')",
		"namespaceObject.metadata.labels[?'tenant'].orValue('none') != 'none'",
		"object.spec.http.variables.all(k, v, size(v) <= 64)",
		"object.spec.oauth2.scopes.isSorted()",
		"object.spec.jwt.claims.site in ['a', 'b'] && object.spec.jwt.claims.level <= 3",
	} {
		if _, err := Compile(rules(expr)); err != nil {
			t.Errorf("Compile(%q): %v", expr, err)
		}
	}
}

func request(ns string, params v1alpha1.VendorParams) *v1alpha1.EmbedTokenRequest {
	return &v1alpha1.EmbedTokenRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dash", Labels: map[string]string{"app": "web"}},
		Spec:       v1alpha1.EmbedTokenRequestSpec{ProviderRef: v1alpha1.ProviderRef{Name: "shared"}, VendorParams: params},
	}
}

func namespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func qrvey(clientID string) v1alpha1.VendorParams {
	return v1alpha1.VendorParams{Qrvey: &v1alpha1.QrveyParams{UserID: "u", AppID: "app", ClientID: clientID}}
}

func qlik(value string) v1alpha1.VendorParams {
	return v1alpha1.VendorParams{QlikCloud: &v1alpha1.QlikCloudParams{UserLookup: &v1alpha1.QlikUserLookup{Field: "subject", Value: value}}}
}

func TestEvaluate(t *testing.T) {
	tenantA := namespace("team-a", map[string]string{"tenant": "a"})
	tests := []struct {
		name    string
		rules   []v1alpha1.RequestValidation
		etr     *v1alpha1.EmbedTokenRequest
		ns      *corev1.Namespace
		deny    string // substring of the denial; "" admits
		index   int
		evalErr bool
	}{
		{name: "qrvey tenant admits its own clientID", rules: rules(qrveyTenantRule),
			etr: request("team-a", qrvey("a")), ns: tenantA},
		{name: "qrvey tenant denies another clientID, showing the expression without a message", rules: rules(qrveyTenantRule),
			etr: request("team-a", qrvey("b")), ns: tenantA, deny: "failed rule: " + qrveyTenantRule},
		{name: "the rule's message is shown", etr: request("team-a", qrvey("b")), ns: tenantA,
			rules: []v1alpha1.RequestValidation{{Expression: qrveyTenantRule, Message: "clientID must be the namespace's tenant"}},
			deny:  "clientID must be the namespace's tenant"},
		{name: "a missing label denies with the key named", rules: rules(qrveyTenantRule),
			etr: request("team-x", qrvey("a")), ns: namespace("team-x", map[string]string{"other": "x"}),
			deny: "could not be evaluated: no such key: tenant", evalErr: true},
		{name: "a namespace without labels denies with the key named", rules: rules(qrveyTenantRule),
			etr: request("team-x", qrvey("a")), ns: namespace("team-x", nil),
			deny: "no such key: tenant", evalErr: true},
		{name: "a field the request lacks denies", rules: rules(qrveyTenantRule),
			etr: request("team-a", qlik("a/alice")), ns: tenantA, deny: "no such key: qrvey", evalErr: true},
		{name: "qlik impersonates under the tenant's prefix", rules: rules(qlikPrefixRule),
			etr: request("team-a", qlik("a/alice")), ns: tenantA},
		{name: "qlik refuses another tenant's user", rules: rules(qlikPrefixRule),
			etr: request("team-a", qlik("b/bob")), ns: tenantA, deny: "failed rule"},
		{name: "qlik refuses the service account (no user lookup)", rules: rules(qlikPrefixRule),
			etr: request("team-a", v1alpha1.VendorParams{QlikCloud: &v1alpha1.QlikCloudParams{}}), ns: tenantA, deny: "failed rule"},
		{name: "the first failing rule is reported", rules: rules("true", "object.metadata.labels['app'] == 'api'", "false"),
			etr: request("team-a", qrvey("a")), ns: tenantA, deny: "labels['app'] == 'api'", index: 1},
		{name: "object carries apiVersion, kind and metadata",
			rules: rules("object.apiVersion == 'embedtokens.io/v1alpha1' && object.kind == 'EmbedTokenRequest' && " +
				"object.metadata.name == 'dash' && object.metadata.namespace == namespaceObject.metadata.name && " +
				"object.spec.providerRef.name == 'shared' && namespaceObject.kind == 'Namespace'"),
			etr: request("team-a", qrvey("a")), ns: tenantA},
		{name: "JSON claims are unstructured values, integers as int",
			rules: rules("object.spec.jwt.claims.site == 'a' && object.spec.jwt.claims.level == 3 && object.spec.jwt.claims.ratio > 0.5"),
			etr: request("team-a", v1alpha1.VendorParams{JWT: &v1alpha1.JWTParams{Subject: "s",
				Claims: &apiextensionsv1.JSON{Raw: []byte(`{"site":"a","level":3,"ratio":0.75}`)}}}), ns: tenantA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.rules)
			if err != nil {
				t.Fatal(err)
			}
			d := p.Evaluate(context.Background(), tt.etr, tt.ns)
			switch {
			case tt.deny == "" && d != nil:
				t.Fatalf("denied: %v", d)
			case tt.deny == "":
				return
			case d == nil:
				t.Fatalf("admitted, want a denial containing %q", tt.deny)
			}
			if !strings.Contains(d.Error(), tt.deny) {
				t.Errorf("denial %q does not contain %q", d, tt.deny)
			}
			if d.Index != tt.index {
				t.Errorf("denied by rule %d, want %d", d.Index, tt.index)
			}
			if (d.Err != nil) != tt.evalErr {
				t.Errorf("evaluation error %v, want one: %v", d.Err, tt.evalErr)
			}
		})
	}
}

func TestEvaluateEmptyPolicyAdmits(t *testing.T) {
	var p *RuleSet
	if !p.Empty() || p.Evaluate(context.Background(), request("a", qrvey("a")), nil) != nil {
		t.Fatal("a nil policy must be empty and admit")
	}
	p, err := Compile(nil)
	if err != nil || !p.Empty() {
		t.Fatalf("Compile(nil) = %v, %v; want an empty policy", p, err)
	}
}

// manyLongVariables is an HTTP request whose variables are large enough to
// make a linear rule expensive: n values of size characters.
func manyLongVariables(n, size int) *v1alpha1.EmbedTokenRequest {
	vars := make(map[string]string, n)
	for i := range n {
		vars[fmt.Sprintf("v%d", i)] = "reports:" + strings.Repeat("x", size)
	}
	return request("team-a", v1alpha1.VendorParams{HTTP: &v1alpha1.HTTPParams{Variables: vars}})
}

func TestEvaluateCostLimits(t *testing.T) {
	const linear = "object.spec.http.variables.all(k, v, v.matches('^reports:[a-z]+$'))"
	ns := namespace("team-a", map[string]string{"tenant": "a"})

	t.Run("an ordinary request stays within the limit", func(t *testing.T) {
		p, err := Compile(rules(linear))
		if err != nil {
			t.Fatal(err)
		}
		if d := p.Evaluate(context.Background(), manyLongVariables(20, 40), ns); d != nil {
			t.Fatalf("denied: %v", d)
		}
	})

	t.Run("a huge request hits the per-call limit and is denied", func(t *testing.T) {
		p, err := Compile(rules(linear))
		if err != nil {
			t.Fatal(err)
		}
		d := p.Evaluate(context.Background(), manyLongVariables(1000, 4000), ns)
		if d == nil || d.Err == nil || !strings.Contains(d.Error(), "exceeded its cost limit") {
			t.Fatalf("got %v, want a cost-limit denial", d)
		}
	})

	t.Run("rules share one budget", func(t *testing.T) {
		p, err := compile(rules(linear, linear, linear), StaticCostLimit, PerCallCostLimit, 100)
		if err != nil {
			t.Fatal(err)
		}
		d := p.Evaluate(context.Background(), manyLongVariables(20, 40), ns)
		if d == nil || !strings.Contains(d.Error(), "exceed the cost budget 100") {
			t.Fatalf("got %v, want a budget denial", d)
		}
	})

	t.Run("a lower static limit rejects at compile time", func(t *testing.T) {
		if _, err := compile(rules(linear), 1000, PerCallCostLimit, RuntimeCostBudget); err == nil ||
			!strings.Contains(err.Error(), "exceeds the limit 1000") {
			t.Fatalf("got %v, want a static cost error", err)
		}
	})
}

func TestCacheCompilesOncePerGeneration(t *testing.T) {
	c := NewCache()
	key := Key{Kind: "ClusterEmbedProvider", Name: "shared"}
	v1 := rules(qrveyTenantRule)

	var wg sync.WaitGroup
	got := make([]*RuleSet, 8)
	for i := range got {
		wg.Go(func() {
			p, err := c.Get(key, "uid-1", 1, v1)
			if err != nil {
				t.Error(err)
			}
			got[i] = p
		})
	}
	wg.Wait()
	first, _ := c.Get(key, "uid-1", 1, v1)
	if again, _ := c.Get(key, "uid-1", 1, v1); again != first {
		t.Error("the same generation was compiled again")
	}

	bad := rules("object.spec ==")
	if _, err := c.Get(key, "uid-1", 2, bad); err == nil {
		t.Fatal("a new generation with a bad rule compiled")
	}
	if _, err := c.Get(key, "uid-1", 2, v1); err == nil {
		t.Error("the cached compile error of generation 2 was lost")
	}
	if p, err := c.Get(key, "uid-2", 1, v1); err != nil || p == nil {
		t.Errorf("a recreated provider (new UID) reused the old entry: %v, %v", p, err)
	}
	c.Forget(key)
	if len(c.entries) != 0 {
		t.Errorf("Forget left %d entries", len(c.entries))
	}
}

func TestUsesNamespace(t *testing.T) {
	tests := []struct {
		rules []v1alpha1.RequestValidation
		want  bool
	}{
		{rules(qrveyTenantRule), true},
		{rules("object.spec.qrvey.clientID.startsWith(object.metadata.namespace)"), false},
		{rules("true", "has(namespaceObject.metadata.labels.tenant)"), true},
		{nil, false},
	}
	for _, tt := range tests {
		p, err := Compile(tt.rules)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.UsesNamespace(); got != tt.want {
			t.Errorf("UsesNamespace(%v) = %v, want %v", tt.rules, got, tt.want)
		}
	}
}

func TestEvaluateStopsWhenItsContextEnds(t *testing.T) {
	p, err := Compile(rules("object.spec.http.variables.all(k, v, v.startsWith('reports:'))"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d := p.Evaluate(ctx, manyLongVariables(500, 10), namespace("team-a", nil))
	if d == nil || d.Err == nil || !strings.Contains(d.Error(), "took longer than") {
		t.Fatalf("got %v, want a denial for the interrupted evaluation", d)
	}
}
