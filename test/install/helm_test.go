//go:build helm

package install

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// TestHelmChart applies the chart as `make helm-lint` rendered it (into
// RENDERED_CHART_DIR) to a fresh API server: cluster-wide with the default
// values, then in namespaced mode, and checks what each identity may do (and,
// cluster-wide, that the admission policy confines the manager). It
// is built only with -tags helm because it needs the rendered files.
func TestHelmChart(t *testing.T) {
	dir := os.Getenv("RENDERED_CHART_DIR")
	if dir == "" {
		t.Fatal("RENDERED_CHART_DIR is not set; run `make helm-lint`")
	}
	ctx := context.Background()
	c, cfg := startAPIServer(t)

	t.Run("cluster-wide", func(t *testing.T) {
		objs := readManifests(t, filepath.Join(dir, "default.yaml"))
		for _, u := range objs {
			if u.GetKind() == "CustomResourceDefinition" && u.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
				t.Errorf("CRD %s lacks helm.sh/resource-policy: keep", u.GetName())
			}
		}
		ensureNamespaces(ctx, t, c, objs)
		applyAll(ctx, t, c, objs)
		waitEstablished(ctx, t, c, objs)
		user, _, args := deploymentIdentity(t, objs)
		for _, flag := range []string{"--watch-namespaces", "--allow-vendor-cidrs"} {
			if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, flag) }) {
				t.Errorf("default values set %s: %v", flag, args)
			}
		}
		for _, res := range []string{"embedtokenrequests", "embedproviders", "clusterembedproviders"} {
			if !canI(ctx, t, c, user, "watch", "embedtokens.io", res, "") {
				t.Errorf("%s may not watch %s cluster-wide", user, res)
			}
		}
		checkGuardrails(ctx, t, c, cfg, objs)
	})

	t.Run("namespaced", func(t *testing.T) {
		objs := readManifests(t, filepath.Join(dir, "namespaced.yaml"))
		kinds := countKinds(objs)
		if n := kinds["CustomResourceDefinition"] + kinds["ClusterRole"] + kinds["ClusterRoleBinding"] +
			kinds["ValidatingAdmissionPolicy"] + kinds["ValidatingAdmissionPolicyBinding"]; n != 0 {
			t.Errorf("namespaced mode renders %d cluster-scoped objects, want none (kinds %v)", n, kinds)
		}
		ensureNamespaces(ctx, t, c, objs)
		applyAll(ctx, t, c, objs)
		user, ns, args := deploymentIdentity(t, objs)
		if !slices.Contains(args, "--watch-namespaces=team-a,team-b") || !slices.Contains(args, "--leader-elect") ||
			!slices.Contains(args, "--allow-vendor-cidrs=10.96.0.0/12:443") {
			t.Errorf("manager args %v", args)
		}
		for _, watched := range []string{"team-a", "team-b"} {
			for _, check := range [][3]string{{"watch", "embedtokens.io", "embedtokenrequests"},
				{"patch", "embedtokens.io", "embedtokenrequests/status"}, {"watch", "embedtokens.io", "embedproviders"},
				{"create", "", "secrets"}, {"create", "events.k8s.io", "events"}} {
				if !canI(ctx, t, c, user, check[0], check[1], check[2], watched) {
					t.Errorf("%s may not %s %s in %s", user, check[0], check[2], watched)
				}
			}
		}
		if !canI(ctx, t, c, user, "update", "coordination.k8s.io", "leases", ns) {
			t.Errorf("%s may not update leader election leases in %s", user, ns)
		}
		for _, denied := range [][2]string{{"embedtokenrequests", ""}, {"embedtokenrequests", "default"},
			{"clusterembedproviders", ""}} {
			if canI(ctx, t, c, user, "list", "embedtokens.io", denied[0], denied[1]) {
				t.Errorf("%s may list %s in %q; namespaced mode must grant nothing outside the watched namespaces", user, denied[0], denied[1])
			}
		}
	})

	t.Run("sharded", func(t *testing.T) {
		objs := readManifests(t, filepath.Join(dir, "sharded.yaml"))
		checkShards(t, objs, map[string][]string{
			"eto-embed-token-operator":   {"--watch-label-selector=!embedtokens.io/shard"},
			"eto-embed-token-operator-b": {"--watch-label-selector=embedtokens.io/shard=b", "--leader-election-id=b-embed-token-operator.embedtokens.io"},
			"eto-embed-token-operator-c": {"--watch-label-selector=embedtokens.io/shard=c", "--leader-election-id=c-embed-token-operator.embedtokens.io"},
		})
		if n := countKinds(objs)["Service"]; n != 4 {
			t.Errorf("%d Services, want one for metrics per shard (3) and the token endpoint", n)
		}
		checkTokenEndpointService(t, objs)
		var deployments []*unstructured.Unstructured
		for _, u := range objs {
			if u.GetKind() == "Deployment" || u.GetKind() == "Service" {
				deployments = append(deployments, u)
			}
		}
		ensureNamespaces(ctx, t, c, deployments)
		applyAll(ctx, t, c, deployments)
	})

	t.Run("monitoring", func(t *testing.T) {
		objs := readManifests(t, filepath.Join(dir, "monitoring.yaml"))
		kinds := countKinds(objs)
		if kinds["ServiceMonitor"] != 1 || kinds["PrometheusRule"] != 1 || kinds["ConfigMap"] != 1 {
			t.Fatalf("kinds %v, want one ServiceMonitor, PrometheusRule and dashboard ConfigMap", kinds)
		}
		checkCertManager(t, objs)
		for _, u := range objs {
			switch u.GetKind() {
			case "PrometheusRule":
				checkRule(t, u)
			case "ConfigMap":
				raw, _, _ := unstructured.NestedString(u.Object, "data", "embed-token-operator.json")
				if !json.Valid([]byte(raw)) {
					t.Errorf("the dashboard ConfigMap does not hold valid JSON")
				}
			}
		}
	})
}

// checkRule checks both alerts survived rendering, with their Prometheus
// templates intact.
func checkRule(t *testing.T, u *unstructured.Unstructured) {
	t.Helper()
	groups, _, _ := unstructured.NestedSlice(u.Object, "spec", "groups")
	var alerts []string
	for _, g := range groups {
		rules, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
		for _, r := range rules {
			rule := r.(map[string]any)
			alerts = append(alerts, rule["alert"].(string))
			summary, _, _ := unstructured.NestedString(rule, "annotations", "summary")
			if !strings.Contains(summary, "{{ $labels.namespace }}") {
				t.Errorf("alert %s summary %q lost its Prometheus template", rule["alert"], summary)
			}
		}
	}
	if !slices.Contains(alerts, "EmbedTokenRefreshFailing") || !slices.Contains(alerts, "EmbedTokenExpired") {
		t.Errorf("alerts %v", alerts)
	}
}

// checkShards checks that each shard's Deployment (by name) passes its
// flags, that no Deployment's selector matches another's pods, and that the
// Deployments are exactly the ones wanted.
func checkShards(t *testing.T, objs []*unstructured.Unstructured, want map[string][]string) {
	t.Helper()
	selectors, podLabels := map[string]map[string]string{}, map[string]map[string]string{}
	for _, u := range objs {
		if u.GetKind() != "Deployment" {
			continue
		}
		flags, ok := want[u.GetName()]
		if !ok {
			t.Errorf("unexpected Deployment %s", u.GetName())
			continue
		}
		containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
		for _, f := range flags {
			if !slices.Contains(args, f) {
				t.Errorf("Deployment %s lacks %s: %v", u.GetName(), f, args)
			}
		}
		selectors[u.GetName()], _, _ = unstructured.NestedStringMap(u.Object, "spec", "selector", "matchLabels")
		podLabels[u.GetName()], _, _ = unstructured.NestedStringMap(u.Object, "spec", "template", "metadata", "labels")
	}
	if len(selectors) != len(want) {
		t.Errorf("%d Deployments, want %d", len(selectors), len(want))
	}
	for name, sel := range selectors {
		for other, pl := range podLabels {
			if matches := labels.SelectorFromSet(sel).Matches(labels.Set(pl)); matches != (name == other) {
				t.Errorf("Deployment %s's selector %v matches the pods of %s: %v", name, sel, other, matches)
			}
		}
	}
}
