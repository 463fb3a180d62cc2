// Package install tests the manifests users install the operator with
// (dist/install.yaml and the Helm chart) against a fresh API server.
package install

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/test/harness"
)

// fieldManager is the field manager of the server-side applies, as
// `kubectl apply --server-side --field-manager` would set it.
const fieldManager = "install-test"

// startAPIServer starts a fresh kube-apiserver and etcd with no CRDs
// installed, like a new cluster, and returns an admin client and its config.
func startAPIServer(t *testing.T) (client.Client, *rest.Config) {
	t.Helper()
	_, cfg, c := harness.StartEnvironment(t, "")
	return c, cfg
}

// readManifests splits a multi-document YAML file into objects.
func readManifests(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("splitting %s: %v", path, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := utilyaml.Unmarshal(doc, &u.Object); err != nil {
			t.Fatalf("decoding a document of %s: %v\n%s", path, err, doc)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	if len(objs) == 0 {
		t.Fatalf("%s holds no objects", path)
	}
	return objs
}

// applyAll server-side applies objs in file order, as
// `kubectl apply --server-side -f` does, and fails on the first error.
func applyAll(ctx context.Context, t *testing.T, c client.Client, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, u := range objs {
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()),
			client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
			t.Fatalf("server-side apply of %s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
	}
}

// ensureNamespaces creates the namespaces objs live in that objs do not
// create themselves (Helm installs into existing namespaces).
func ensureNamespaces(ctx context.Context, t *testing.T, c client.Client, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, u := range objs {
		if ns := u.GetNamespace(); ns != "" {
			err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatalf("creating namespace %s: %v", ns, err)
			}
		}
	}
}

// countKinds counts objects by kind.
func countKinds(objs []*unstructured.Unstructured) map[string]int {
	kinds := map[string]int{}
	for _, u := range objs {
		kinds[u.GetKind()]++
	}
	return kinds
}

// waitEstablished waits until every CRD among objs is Established, i.e.
// its API is served.
func waitEstablished(ctx context.Context, t *testing.T, c client.Client, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() != "CustomResourceDefinition" {
			continue
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			if err := c.Get(ctx, client.ObjectKey{Name: u.GetName()}, crd); err != nil {
				return false, err
			}
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("CRD %s not Established: %v (conditions %+v)", u.GetName(), err, crd.Status.Conditions)
		}
	}
}

// deploymentIdentity returns the service account user the single Deployment
// among objs runs as.
func deploymentIdentity(t *testing.T, objs []*unstructured.Unstructured) (user, namespace string, args []string) {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() != "Deployment" {
			continue
		}
		sa, _, _ := unstructured.NestedString(u.Object, "spec", "template", "spec", "serviceAccountName")
		containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		if len(containers) > 0 {
			args, _, _ = unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
		}
		return "system:serviceaccount:" + u.GetNamespace() + ":" + sa, u.GetNamespace(), args
	}
	t.Fatal("no Deployment")
	return "", "", nil
}

// canI asks the API server's authorizer whether user may do verb on the
// embedtokens.io resource in namespace ("" for every namespace).
func canI(ctx context.Context, t *testing.T, c client.Client, user, verb, group, resource, namespace string) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               user,
		Groups:             []string{"system:serviceaccounts", "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Namespace: namespace},
	}}
	if err := c.Create(ctx, sar); err != nil {
		t.Fatalf("SubjectAccessReview: %v", err)
	}
	return sar.Status.Allowed
}
