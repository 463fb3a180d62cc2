//go:build helm

package install

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// checkTokenEndpointService checks that the chart's token endpoint Service
// selects the pods of every Deployment (each shard's replicas serve the
// endpoint too) on the container port the manager listens on.
func checkTokenEndpointService(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	var svc *unstructured.Unstructured
	for _, u := range objs {
		if u.GetKind() == "Service" && u.GetName() == "eto-embed-token-operator-token-endpoint" {
			svc = u
		}
	}
	if svc == nil {
		t.Fatal("no token endpoint Service")
	}
	sel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
	for _, u := range objs {
		if u.GetKind() != "Deployment" {
			continue
		}
		pl, _, _ := unstructured.NestedStringMap(u.Object, "spec", "template", "metadata", "labels")
		if !labels.SelectorFromSet(sel).Matches(labels.Set(pl)) {
			t.Errorf("the token endpoint Service does not select the pods of %s", u.GetName())
		}
		if !slices.Contains(containerArgs(u), "--token-endpoint-bind-address=:8443") {
			t.Errorf("Deployment %s does not serve the token endpoint on :8443: %v", u.GetName(), containerArgs(u))
		}
	}
}

// checkCertManager checks that with tokenEndpoint.certManager.enabled the
// chart renders the self-signed CA chain and a Certificate into the Secret
// the manager reads, and that the manager then does not issue its own.
func checkCertManager(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	kinds := countKinds(objs)
	if kinds["Certificate"] != 2 || kinds["Issuer"] != 2 {
		t.Fatalf("kinds %v, want the CA and serving Certificates and the self-signed and CA Issuers", kinds)
	}
	var secretName string
	var dnsNames []string
	for _, u := range objs {
		if u.GetKind() == "Certificate" && u.GetName() == "eto-embed-token-operator-token-endpoint" {
			secretName, _, _ = unstructured.NestedString(u.Object, "spec", "secretName")
			dnsNames, _, _ = unstructured.NestedStringSlice(u.Object, "spec", "dnsNames")
		}
	}
	if !slices.Contains(dnsNames, "eto-embed-token-operator-token-endpoint.monitoring.svc") {
		t.Errorf("serving Certificate dnsNames %v lack the Service's", dnsNames)
	}
	_, _, args := deploymentIdentity(t, objs)
	for _, want := range []string{"--token-endpoint-manage-cert=false", "--token-endpoint-cert-secret=" + secretName} {
		if !slices.Contains(args, want) {
			t.Errorf("manager args %v lack %s", args, want)
		}
	}
}

func containerArgs(u *unstructured.Unstructured) []string {
	containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	if len(containers) == 0 {
		return nil
	}
	args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	return args
}
