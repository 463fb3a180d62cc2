package install

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/cel/openapi/resolver"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/rollout"
)

// The messages of the manager's admission policy (config/admission), as a
// denial quotes them.
const (
	msgWriteUnlabelled = "may only write Secrets labelled app.kubernetes.io/managed-by=embed-token-operator"
	msgTouchForeign    = "may only change or delete Secrets that already carry the label"
	msgSecretType      = "may only write Secrets of type Opaque"
	msgCreateDelete    = "may not create or delete Deployments, StatefulSets or DaemonSets"
	msgSubresource     = "may not write the status or scale"
	msgWorkloadMeta    = "may not change a workload's labels, annotations"
	msgWorkloadSpec    = "may change nothing in a workload's spec"
	msgTemplate        = "may not change a pod template's spec, labels or finalizers"
	msgAnnotation      = "may change no pod-template annotation but embedtokens.io/restartedAt"
)

// guardNamespace holds the objects checkGuardrails works on.
const guardNamespace = "guardrails"

// guardrails returns the manager's ValidatingAdmissionPolicy among objs and
// checks its binding and that its matchCondition names user exactly.
func guardrails(t *testing.T, objs []*unstructured.Unstructured, user string) string {
	t.Helper()
	var policy, binding *unstructured.Unstructured
	for _, u := range objs {
		switch u.GetKind() {
		case "ValidatingAdmissionPolicy":
			policy = u
		case "ValidatingAdmissionPolicyBinding":
			binding = u
		}
	}
	if policy == nil || binding == nil {
		t.Fatalf("no ValidatingAdmissionPolicy and binding for the manager (kinds %v)", countKinds(objs))
	}
	conds, _, _ := unstructured.NestedSlice(policy.Object, "spec", "matchConditions")
	want := "request.userInfo.username == '" + user + "'"
	if len(conds) != 1 || conds[0].(map[string]any)["expression"] != want {
		t.Errorf("policy matchConditions %v, want the single expression %q", conds, want)
	}
	name, _, _ := unstructured.NestedString(binding.Object, "spec", "policyName")
	actions, _, _ := unstructured.NestedStringSlice(binding.Object, "spec", "validationActions")
	if name != policy.GetName() || !slices.Equal(actions, []string{"Deny"}) {
		t.Errorf("binding %s: policyName %q, validationActions %v; want %q, [Deny]", binding.GetName(), name, actions, policy.GetName())
	}
	return policy.GetName()
}

// operatorClient returns a client that acts as user, the manager's
// ServiceAccount in namespace ns, through impersonation.
func operatorClient(t *testing.T, cfg *rest.Config, scheme client.Client, user, ns string) client.Client {
	t.Helper()
	opCfg := rest.CopyConfig(cfg)
	opCfg.Impersonate = rest.ImpersonationConfig{UserName: user,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	op, err := client.New(opCfg, client.Options{Scheme: scheme.Scheme()})
	if err != nil {
		t.Fatalf("impersonating client: %v", err)
	}
	return op
}

// checkGuardrails applies nothing new: objs are already applied to the API
// server admin talks to. As the manager's ServiceAccount, with exactly the
// RBAC objs grant, it does the manager's real work and checks that the
// policy lets it through and denies everything else the RBAC would allow;
// then, with more RBAC bound, that the policy still denies deletes, creates
// and subresource writes.
func checkGuardrails(ctx context.Context, t *testing.T, admin client.Client, cfg *rest.Config, objs []*unstructured.Unstructured) {
	t.Helper()
	user, ns, _ := deploymentIdentity(t, objs)
	policy := guardrails(t, objs, user)
	checkTypeChecking(ctx, t, admin, cfg, policy)
	op := operatorClient(t, cfg, admin, user, ns)
	etr, workloads := guardFixtures(ctx, t, admin)
	waitEnforced(ctx, t, admin, op, policy)

	denied := func(what, message string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: allowed, want denied by %s", what, policy)
			return
		}
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), policy) || !strings.Contains(err.Error(), message) {
			t.Errorf("%s: %v; want Forbidden by %s saying %q", what, err, policy, message)
		}
	}
	allowed := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}

	// The manager's real work: its token Secret, written as applySecret does.
	token := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: guardNamespace, Name: etr.TargetSecretName(),
		Labels:      map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue},
		Annotations: map[string]string{v1alpha1.ExpiresAtAnnotation: "2030-01-01T00:00:00Z"}},
		Type: corev1.SecretTypeOpaque, Data: map[string][]byte{v1alpha1.SecretTokenKey: []byte("first")}}
	if err := controllerutil.SetControllerReference(etr, token, admin.Scheme()); err != nil {
		t.Fatal(err)
	}
	allowed("creating the managed token Secret", op.Create(ctx, token))
	token.Data[v1alpha1.SecretTokenKey] = []byte("second")
	allowed("updating the managed token Secret", op.Update(ctx, token))
	for _, w := range workloads {
		obj := w.DeepCopyObject().(client.Object)
		allowed("reading "+describe(w), op.Get(ctx, client.ObjectKeyFromObject(w), obj))
		allowed("restarting "+describe(w)+" as the rollout package does", op.Patch(ctx, obj, rollout.RestartPatch(obj, time.Now())))
	}

	// Secrets the manager did not label, although RBAC allows the writes.
	foreign := &corev1.Secret{}
	if err := admin.Get(ctx, client.ObjectKey{Namespace: guardNamespace, Name: "foreign"}, foreign); err != nil {
		t.Fatal(err)
	}
	edited := foreign.DeepCopy()
	edited.Data = map[string][]byte{"password": []byte("stolen")}
	denied("editing a foreign Secret", msgTouchForeign, op.Update(ctx, edited))
	claimed := foreign.DeepCopy()
	claimed.Labels = map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue}
	denied("labelling a foreign Secret as managed", msgTouchForeign, op.Update(ctx, claimed))
	denied("creating an unlabelled Secret", msgWriteUnlabelled, op.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: guardNamespace, Name: "unlabelled"}}))
	released := token.DeepCopy()
	released.Labels = nil
	denied("removing the managed-by label", msgWriteUnlabelled, op.Update(ctx, released))

	// Labelled Secrets of a type other than Opaque: the API server fills a
	// service-account-token Secret with a token for the ServiceAccount it
	// names.
	labelled := func(name string, typ corev1.SecretType, annotations map[string]string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: guardNamespace, Name: name,
			Labels: map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue}, Annotations: annotations},
			Type: typ, Data: map[string][]byte{v1alpha1.SecretTokenKey: []byte("x")}}
	}
	denied("creating a labelled service-account-token Secret", msgSecretType, op.Create(ctx, labelled("sa-token",
		corev1.SecretTypeServiceAccountToken, map[string]string{corev1.ServiceAccountNameKey: "default"})))
	tls := labelled("tls", corev1.SecretTypeTLS, nil)
	tls.Data = map[string][]byte{corev1.TLSCertKey: nil, corev1.TLSPrivateKeyKey: nil}
	denied("creating a labelled TLS Secret", msgSecretType, op.Create(ctx, tls))
	defaulted := labelled("defaulted", "", nil)
	allowed("creating a labelled Secret without a type, which the API server defaults to Opaque", op.Create(ctx, defaulted))
	if defaulted.Type != corev1.SecretTypeOpaque {
		t.Errorf("a Secret created without a type has type %q", defaulted.Type)
	}
	// One labelled by someone else, as an update would find it.
	other := labelled("other-type", "embedtokens.io/other", nil)
	if err := admin.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	other.Data[v1alpha1.SecretTokenKey] = []byte("y")
	denied("updating a labelled Secret of another type", msgSecretType, op.Update(ctx, other))

	// Workload changes other than the restart annotation.
	dep := workloads[0].(*appsv1.Deployment)
	for _, c := range []struct {
		what, message string
		mutate        func(*appsv1.Deployment)
	}{
		{"changing a Deployment's image", msgTemplate, func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Image = "attacker.example/miner:1"
		}},
		{"adding a container env var", msgTemplate, func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "X", Value: "y"}}
		}},
		{"changing a Deployment's replicas", msgWorkloadSpec, func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](5) }},
		{"pausing a Deployment", msgWorkloadSpec, func(d *appsv1.Deployment) { d.Spec.Paused = true }},
		{"adding another pod-template annotation", msgAnnotation, func(d *appsv1.Deployment) {
			d.Spec.Template.Annotations["team.example.com/extra"] = "x"
		}},
		{"changing another pod-template annotation", msgAnnotation, func(d *appsv1.Deployment) {
			d.Spec.Template.Annotations["team.example.com/owner"] = "attacker"
		}},
		{"removing another pod-template annotation", msgAnnotation, func(d *appsv1.Deployment) {
			delete(d.Spec.Template.Annotations, "team.example.com/owner")
		}},
		{"changing a pod-template label", msgTemplate, func(d *appsv1.Deployment) { d.Spec.Template.Labels["tier"] = "x" }},
		{"changing a Deployment's labels", msgWorkloadMeta, func(d *appsv1.Deployment) { d.Labels = map[string]string{"x": "y"} }},
	} {
		d := &appsv1.Deployment{}
		if err := op.Get(ctx, client.ObjectKeyFromObject(dep), d); err != nil {
			t.Fatal(err)
		}
		before := d.DeepCopy()
		c.mutate(d)
		denied(c.what, c.message, op.Patch(ctx, d, client.MergeFrom(before)))
	}
	for _, w := range workloads[1:] {
		obj := w.DeepCopyObject().(client.Object)
		if err := op.Get(ctx, client.ObjectKeyFromObject(w), obj); err != nil {
			t.Fatal(err)
		}
		patch := rollout.RestartPatch(obj, time.Now()) // the restart plus an image change
		podSpec(obj).Containers[0].Image = "attacker.example/miner:1"
		denied("changing the image of "+describe(w)+" along with a restart", msgTemplate, op.Patch(ctx, obj, patch))
	}

	checkPodGuardrails(ctx, t, admin, op, denied, allowed)
	checkTokenEndpointGuardrails(ctx, t, admin, op, ns, denied, allowed)
	checkFederatedGuardrails(ctx, t, admin, op, user, denied, allowed)
	checkGuardrailsBeyondRBAC(ctx, t, admin, op, user, token, dep, denied, allowed)
}

// checkGuardrailsBeyondRBAC grants the manager's ServiceAccount more than
// the shipped RBAC in guardNamespace and checks the policy still denies
// deleting foreign Secrets, creating and deleting workloads, and writing
// their scale, while deleting a managed Secret passes.
func checkGuardrailsBeyondRBAC(ctx context.Context, t *testing.T, admin, op client.Client, user string, token *corev1.Secret,
	dep *appsv1.Deployment, denied func(string, string, error), allowed func(string, error)) {
	t.Helper()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: guardNamespace, Name: "too-much"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"delete"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "deployments/scale", "deployments/status"},
			Verbs: []string{"get", "create", "delete", "update", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"pods", "pods/status", "pods/eviction"},
			Verbs: []string{"get", "create", "delete", "update", "patch"}},
	}}
	sa := strings.Split(user, ":")
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: guardNamespace, Name: "too-much"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: sa[2], Name: sa[3]}}}
	for _, o := range []client.Object{role, binding} {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return canI(ctx, t, admin, user, "delete", "apps", "deployments", guardNamespace), nil
	}); err != nil {
		t.Fatalf("the extra Role never took effect: %v", err)
	}

	denied("deleting a foreign Secret", msgTouchForeign, op.Delete(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: guardNamespace, Name: "foreign"}}))
	allowed("deleting the managed token Secret", op.Delete(ctx, token))
	denied("creating a Deployment", msgCreateDelete, op.Create(ctx, newDeployment("intruder")))
	denied("deleting a Deployment", msgCreateDelete, op.Delete(ctx, dep.DeepCopy()))
	scale := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Namespace: guardNamespace, Name: dep.Name}}
	if err := op.SubResource("scale").Get(ctx, dep.DeepCopy(), scale); err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 7
	denied("scaling a Deployment", msgSubresource, op.SubResource("scale").Update(ctx, dep.DeepCopy(), client.WithSubResourceBody(scale)))
	checkPodGuardrailsBeyondRBAC(ctx, t, admin, op, denied)
}

// checkTypeChecking type-checks policy against the served schemas of the
// kinds it matches, as kube-controller-manager does to fill its
// status.typeChecking (no such controller runs here), and fails on any
// warning, such as a misspelt request field.
func checkTypeChecking(ctx context.Context, t *testing.T, admin client.Client, cfg *rest.Config, policy string) {
	t.Helper()
	vap := &admissionregistrationv1.ValidatingAdmissionPolicy{}
	if err := admin.Get(ctx, client.ObjectKey{Name: policy}, vap); err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	checker := &validating.TypeChecker{SchemaResolver: &resolver.ClientDiscoveryResolver{Discovery: dc}, RestMapper: admin.RESTMapper()}
	if ctx := checker.CreateContext(vap); ctx == nil {
		t.Fatal("no type-checking context")
	}
	for _, w := range checker.Check(vap) {
		t.Errorf("policy %s: %s: %s", policy, w.FieldRef, w.Warning)
	}
}

// waitEnforced polls until the API server enforces policy (its informers
// pick up a new policy and binding within moments), creating an unlabelled
// Secret as the manager until that is denied.
func waitEnforced(ctx context.Context, t *testing.T, admin, op client.Client, policy string) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		probe := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: guardNamespace, Name: "probe"}}
		last = op.Create(ctx, probe)
		if last == nil {
			return false, admin.Delete(ctx, probe)
		}
		return strings.Contains(last.Error(), policy), nil
	})
	if err != nil {
		t.Fatalf("policy %s is not enforced: %v (last answer: %v)", policy, err, last)
	}
}

// guardFixtures creates, as admin, guardNamespace with an EmbedTokenRequest
// (the sample), a foreign Secret and one workload of each kind, a
// Deployment first.
func guardFixtures(ctx context.Context, t *testing.T, admin client.Client) (*v1alpha1.EmbedTokenRequest, []client.Object) {
	t.Helper()
	etr := &v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: guardNamespace, Name: "sales-dashboard"},
		Spec: v1alpha1.EmbedTokenRequestSpec{ProviderRef: v1alpha1.ProviderRef{Name: "qrvey"},
			VendorParams: v1alpha1.VendorParams{Qrvey: &v1alpha1.QrveyParams{UserID: "alice", AppID: "app-123"}}}}
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: guardNamespace, Name: "foreign"},
		Data: map[string][]byte{"password": []byte("hunter2")}}
	dep := newDeployment("web")
	labels := map[string]string{"app": "stateful"}
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: guardNamespace, Name: "stateful"},
		Spec: appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: podTemplate(labels)}}
	labels = map[string]string{"app": "agent"}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: guardNamespace, Name: "agent"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: podTemplate(labels)}}
	for _, o := range []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: guardNamespace}}, etr, foreign, dep, sts, ds} {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatalf("creating %s: %v", describe(o), err)
		}
	}
	return etr, []client.Object{dep, sts, ds}
}

// newDeployment returns a Deployment in guardNamespace.
func newDeployment(name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: guardNamespace, Name: name},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: podTemplate(labels)}}
}

// podTemplate carries an annotation of its own, which the manager must leave.
func podTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"team.example.com/owner": "a"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
	}
}

// podSpec returns the pod spec of a workload from guardFixtures.
func podSpec(obj client.Object) *corev1.PodSpec {
	switch w := obj.(type) {
	case *appsv1.Deployment:
		return &w.Spec.Template.Spec
	case *appsv1.StatefulSet:
		return &w.Spec.Template.Spec
	case *appsv1.DaemonSet:
		return &w.Spec.Template.Spec
	}
	return &corev1.PodSpec{}
}

// describe names an object in a failure message.
func describe(o client.Object) string {
	return fmt.Sprintf("%T %s", o, o.GetName())
}
