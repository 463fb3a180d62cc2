// Package config_test checks the deployment manifests users apply: the
// manager's hardening, that every RBAC rule it is granted is documented, and
// that its admission policy covers every workload spec field and names it.
package config_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// documents splits a multi-document YAML file.
func documents(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	for _, d := range strings.Split("\n"+string(raw), "\n---") {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, d)
		}
	}
	return docs
}

func managerDeployment(t *testing.T) appsv1.Deployment {
	t.Helper()
	for _, d := range documents(t, "manager/manager.yaml") {
		var dep appsv1.Deployment
		if err := yaml.Unmarshal([]byte(d), &dep); err != nil {
			t.Fatalf("manager.yaml: %v", err)
		}
		if dep.Kind == "Deployment" {
			return dep
		}
	}
	t.Fatal("manager.yaml holds no Deployment")
	return appsv1.Deployment{}
}

// TestManagerIsHardened asserts the restricted Pod Security Standard and
// more: non-root, read-only root filesystem, no privilege escalation, every
// capability dropped, the runtime's default seccomp profile.
func TestManagerIsHardened(t *testing.T) {
	spec := managerDeployment(t).Spec.Template.Spec
	pod := spec.SecurityContext
	if pod == nil || pod.RunAsNonRoot == nil || !*pod.RunAsNonRoot {
		t.Error("pod securityContext.runAsNonRoot must be true")
	}
	if pod == nil || pod.SeccompProfile == nil || pod.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("pod securityContext.seccompProfile.type must be RuntimeDefault")
	}
	if spec.AutomountServiceAccountToken != nil && !*spec.AutomountServiceAccountToken {
		t.Error("the manager needs its ServiceAccount token to reach the API server")
	}
	if len(spec.Containers) == 0 {
		t.Fatal("no containers")
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("container %s has no securityContext", c.Name)
			continue
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("container %s: readOnlyRootFilesystem must be true", c.Name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("container %s: allowPrivilegeEscalation must be false", c.Name)
		case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0:
			t.Errorf("container %s: capabilities must drop ALL and add none", c.Name)
		case sc.Privileged != nil && *sc.Privileged:
			t.Errorf("container %s must not be privileged", c.Name)
		case sc.RunAsUser != nil && *sc.RunAsUser == 0:
			t.Errorf("container %s must not run as UID 0", c.Name)
		}
		if c.Resources.Limits.Memory().IsZero() {
			t.Errorf("container %s has no memory limit", c.Name)
		}
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Error("the manager must not share host namespaces")
	}
}

// TestEveryRBACRuleIsDocumented fails when role.yaml (generated from the
// +kubebuilder:rbac markers) grants a rule docs/rbac.md does not explain,
// so a new permission is a reviewed decision.
func TestEveryRBACRuleIsDocumented(t *testing.T) {
	raw, err := os.ReadFile("../docs/rbac.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal([]byte(documents(t, "rbac/role.yaml")[0]), &role); err != nil {
		t.Fatal(err)
	}
	if len(role.Rules) == 0 {
		t.Fatal("role.yaml has no rules")
	}
	for _, rule := range role.Rules {
		for _, group := range rule.APIGroups {
			if group == "" {
				group = "core"
			}
			for _, res := range rule.Resources {
				row := documentedRow(doc, group, res)
				if row == "" {
					t.Errorf("docs/rbac.md has no row for %s %s", group, res)
					continue
				}
				for _, verb := range rule.Verbs {
					if !strings.Contains(row, verb) {
						t.Errorf("docs/rbac.md row for %s %s does not list verb %s", group, res, verb)
					}
				}
				if strings.Contains(strings.Join(rule.Verbs, ","), "*") {
					t.Errorf("%s %s is granted a wildcard verb", group, res)
				}
			}
		}
	}
}

// documentedRow returns the verbs cell of the table row naming group and
// resource (a resource cell may list several, comma-separated).
func documentedRow(doc, group, resource string) string {
	for _, line := range strings.Split(doc, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 || strings.TrimSpace(cells[1]) != group {
			continue
		}
		for _, r := range strings.Split(cells[2], ",") {
			if strings.TrimSpace(r) == resource {
				return cells[3]
			}
		}
	}
	return ""
}

// guardrailsPolicy reads the manager's ValidatingAdmissionPolicy.
func guardrailsPolicy(t *testing.T) admissionregistrationv1.ValidatingAdmissionPolicy {
	t.Helper()
	var policy admissionregistrationv1.ValidatingAdmissionPolicy
	if err := yaml.Unmarshal([]byte(documents(t, "admission/manager_guardrails_policy.yaml")[0]), &policy); err != nil {
		t.Fatal(err)
	}
	return policy
}

// TestGuardrailsCompareEveryWorkloadSpecField fails when the apps/v1 API
// grows a Deployment, StatefulSet or DaemonSet spec field that the admission
// policy does not hold unchanged for the manager (the pod template is
// compared on its own).
func TestGuardrailsCompareEveryWorkloadSpecField(t *testing.T) {
	var all strings.Builder
	for _, v := range guardrailsPolicy(t).Spec.Validations {
		all.WriteString(v.Expression + "\n")
	}
	for _, spec := range []any{appsv1.DeploymentSpec{}, appsv1.StatefulSetSpec{}, appsv1.DaemonSetSpec{}} {
		typ := reflect.TypeOf(spec)
		for i := range typ.NumField() {
			field, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if field == "template" {
				continue
			}
			if want := "variables.spec.?" + field + " == variables.oldSpec.?" + field; !strings.Contains(all.String(), want) {
				t.Errorf("%s.%s is not compared: the policy lacks %q", typ.Name(), field, want)
			}
		}
	}
}

// TestGuardrailsNameTheManager checks that the policy's matchCondition names
// the ServiceAccount config/default renders (kustomize rewrites no names
// inside CEL).
func TestGuardrailsNameTheManager(t *testing.T) {
	var kustomization struct {
		Namespace  string `json:"namespace"`
		NamePrefix string `json:"namePrefix"`
	}
	if err := yaml.Unmarshal([]byte(documents(t, "default/kustomization.yaml")[0]), &kustomization); err != nil {
		t.Fatal(err)
	}
	var sa corev1.ServiceAccount
	if err := yaml.Unmarshal([]byte(documents(t, "rbac/service_account.yaml")[0]), &sa); err != nil {
		t.Fatal(err)
	}
	want := "request.userInfo.username == 'system:serviceaccount:" + kustomization.Namespace + ":" + kustomization.NamePrefix + sa.Name + "'"
	conds := guardrailsPolicy(t).Spec.MatchConditions
	if len(conds) != 1 || conds[0].Expression != want {
		t.Errorf("matchConditions %+v, want the single expression %q", conds, want)
	}
}
