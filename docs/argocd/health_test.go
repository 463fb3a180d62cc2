package argocd

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// healthKey is the argocd-cm key Argo CD reads the check from.
const healthKey = "resource.customizations.health.embedtokens.io_EmbedTokenRequest"

// runHealth runs the check as Argo CD does: obj is a global holding the
// object, and the script returns a table with status and message.
func runHealth(t *testing.T, script string, obj map[string]any) (status, message string) {
	t.Helper()
	L := lua.NewState()
	defer L.Close()
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		t.Fatalf("running health.lua: %v", err)
	}
	ret, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("health.lua returned %s, want a table", L.Get(-1).Type())
	}
	return L.GetField(ret, "status").String(), L.GetField(ret, "message").String()
}

// toLua converts decoded JSON into Lua values, as Argo CD does.
func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case map[string]any:
		t := L.NewTable()
		for k, e := range v {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	case []any:
		t := L.NewTable()
		for _, e := range v {
			t.Append(toLua(L, e))
		}
		return t
	case string:
		return lua.LString(v)
	case float64:
		return lua.LNumber(v)
	case bool:
		return lua.LBool(v)
	}
	return lua.LNil
}

// request builds a sample EmbedTokenRequest from its status conditions
// (type, status, reason triples).
func request(t *testing.T, generation, observed int, suspend bool, conds ...[3]string) map[string]any {
	t.Helper()
	var conditions []map[string]any
	for _, c := range conds {
		conditions = append(conditions, map[string]any{"type": c[0], "status": c[1], "reason": c[2], "message": c[2] + " message"})
	}
	raw, err := json.Marshal(map[string]any{
		"apiVersion": "embedtokens.io/v1alpha1", "kind": "EmbedTokenRequest",
		"metadata": map[string]any{"name": "dash", "namespace": "shop", "generation": generation},
		"spec":     map[string]any{"suspend": suspend},
		"status":   map[string]any{"observedGeneration": observed, "conditions": conditions},
	})
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	if conds == nil {
		delete(obj, "status")
	}
	return obj
}

func TestHealth(t *testing.T) {
	script, err := os.ReadFile("health.lua")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		obj         map[string]any
		wantStatus  string
		wantMessage string
	}{
		{"new, no status", request(t, 1, 0, false), "Progressing", "Waiting for the operator"},
		{"fresh token", request(t, 1, 1, false, [3]string{"Ready", "True", "TokenIssued"}), "Healthy", "TokenIssued message"},
		{"refreshed", request(t, 2, 2, false, [3]string{"Ready", "True", "TokenRefreshed"}), "Healthy", "TokenRefreshed"},
		{"refresh failing, token still valid", request(t, 1, 1, false, [3]string{"Ready", "True", "VendorUnavailable"}), "Healthy", "VendorUnavailable"},
		{"spec changed, not observed yet", request(t, 3, 2, false, [3]string{"Ready", "True", "TokenIssued"}), "Progressing", "latest spec"},
		{"issuing the first token", request(t, 1, 1, false, [3]string{"Ready", "False", "Issuing"}, [3]string{"Reconciling", "True", "Issuing"}), "Progressing", "Issuing"},
		{"first token, vendor down", request(t, 1, 1, false, [3]string{"Ready", "False", "VendorUnavailable"}, [3]string{"Reconciling", "True", "VendorUnavailable"}), "Progressing", "VendorUnavailable"},
		{"rejected credentials", request(t, 1, 1, false, [3]string{"Ready", "False", "VendorUnauthorized"}, [3]string{"Stalled", "True", "VendorUnauthorized"}), "Degraded", "VendorUnauthorized"},
		{"secret conflict", request(t, 1, 1, false, [3]string{"Ready", "False", "SecretConflict"}, [3]string{"Stalled", "True", "SecretConflict"}), "Degraded", "SecretConflict"},
		{"token expired during an outage", request(t, 1, 1, false, [3]string{"Ready", "False", "TokenExpired"}, [3]string{"Reconciling", "True", "VendorUnavailable"}), "Degraded", "TokenExpired"},
		{"suspended with a valid token", request(t, 1, 1, true, [3]string{"Ready", "True", "Suspended"}), "Suspended", "Suspended message"},
		{"suspended, no token", request(t, 1, 1, true, [3]string{"Ready", "False", "Suspended"}), "Suspended", "Suspended"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, message := runHealth(t, string(script), tt.obj)
			if status != tt.wantStatus || !strings.Contains(message, tt.wantMessage) {
				t.Errorf("health = %s %q, want %s containing %q", status, message, tt.wantStatus, tt.wantMessage)
			}
		})
	}
}

// TestDocumentedConfigMapMatchesScript keeps the argocd-cm snippet in
// README.md identical to health.lua, so what users paste is what is tested.
func TestDocumentedConfigMapMatchesScript(t *testing.T) {
	script, err := os.ReadFile("health.lua")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no yaml block")
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict([]byte(block), &cm); err != nil {
		t.Fatalf("the documented ConfigMap does not parse: %v", err)
	}
	if got := cm.Data[healthKey]; got != string(script) {
		t.Errorf("argocd-cm %s differs from health.lua:\n%s", healthKey, got)
	}
}
