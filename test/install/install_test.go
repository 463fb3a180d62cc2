package install

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
)

// TestInstallerAppliesOnFreshCluster applies dist/install.yaml (built by
// `make build-installer`) with server-side apply to an API server that has
// never seen the CRDs, as `kubectl apply --server-side -f dist/install.yaml`
// would, checks the operator's identity gets the rights it needs, and that
// its admission policy confines it to its real work (checkGuardrails).
func TestInstallerAppliesOnFreshCluster(t *testing.T) {
	ctx := context.Background()
	objs := readManifests(t, filepath.Join("..", "..", "dist", "install.yaml"))
	kinds := countKinds(objs)
	for kind, want := range map[string]int{"CustomResourceDefinition": 3, "Namespace": 1, "Deployment": 1,
		"ServiceAccount": 1, "ClusterRole": 1, "ClusterRoleBinding": 1, "Service": 2,
		"ValidatingAdmissionPolicy": 1, "ValidatingAdmissionPolicyBinding": 1} {
		if kinds[kind] < want {
			t.Errorf("install.yaml has %d %s, want at least %d (kinds: %v)", kinds[kind], kind, want, kinds)
		}
	}

	c, cfg := startAPIServer(t)
	applyAll(ctx, t, c, objs)
	waitEstablished(ctx, t, c, objs)
	applyAll(ctx, t, c, objs) // re-applying an unchanged installer is a clean no-op upgrade

	user, ns, args := deploymentIdentity(t, objs)
	if !slices.Contains(args, "--leader-elect") {
		t.Errorf("manager args %v lack --leader-elect", args)
	}
	for _, check := range []struct{ verb, group, resource, namespace string }{
		{"watch", "embedtokens.io", "embedtokenrequests", ""},
		{"patch", "embedtokens.io", "embedtokenrequests/status", ""},
		{"list", "embedtokens.io", "clusterembedproviders", ""},
		{"create", "", "secrets", ""},
		{"create", "events.k8s.io", "events", ""},
		{"delete", "", "configmaps", ""},
		{"create", "authentication.k8s.io", "tokenreviews", ""},
		{"create", "authorization.k8s.io", "subjectaccessreviews", ""},
		{"watch", "embedtokens.io", "embedtokentemplates", ""},
		{"update", "coordination.k8s.io", "leases", ns},
	} {
		if !canI(ctx, t, c, user, check.verb, check.group, check.resource, check.namespace) {
			t.Errorf("%s may not %s %s.%s in %q", user, check.verb, check.resource, check.group, check.namespace)
		}
	}
	checkGuardrails(ctx, t, c, cfg, objs)
}
