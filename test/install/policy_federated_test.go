package install

import (
	"context"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/credentials"
)

// The messages of the TokenRequest rules of the manager's admission policy.
const (
	msgFederateOptIn = "may only request tokens of ServiceAccounts on which their namespace grants"
	msgTokenShape    = "may only request ServiceAccount tokens of one audience"
)

// checkFederatedGuardrails requests ServiceAccount tokens as the manager
// does for a clientAssertion: refused for a ServiceAccount its namespace
// has not opted in, allowed once a Role grants the manager
// v1alpha1.FederatedIdentityVerb on it, and refused for more audiences, a
// longer lifetime or a bound object even then.
func checkFederatedGuardrails(ctx context.Context, t *testing.T, admin, op client.Client, user string,
	denied func(string, string, error), allowed func(string, error)) {
	t.Helper()
	for _, name := range []string{"entra-identity", "bystander"} {
		if err := admin.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: guardNamespace, Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	request := func(audiences []string, seconds int64) *authenticationv1.TokenRequest {
		return &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: ptr.To(seconds)}}
	}
	sa := func(name string) *corev1.ServiceAccount {
		return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: guardNamespace, Name: name}}
	}
	assertion := func() *authenticationv1.TokenRequest {
		return request([]string{v1alpha1.DefaultClientAssertionAudience}, credentials.ServiceAccountTokenSeconds)
	}
	denied("requesting a token of a ServiceAccount not opted in", msgFederateOptIn,
		op.SubResource("token").Create(ctx, sa("entra-identity"), assertion()))

	// The namespace's owner opts one ServiceAccount in, by name.
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: guardNamespace, Name: "federate-entra-identity"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"serviceaccounts"},
			ResourceNames: []string{"entra-identity"}, Verbs: []string{v1alpha1.FederatedIdentityVerb}}}}
	parts := strings.Split(user, ":")
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: guardNamespace, Name: role.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: parts[2], Name: parts[3]}}}
	for _, o := range []client.Object{role, binding} {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	var last error
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		last = op.SubResource("token").Create(ctx, sa("entra-identity"), assertion())
		return last == nil, nil
	}); err != nil {
		t.Errorf("requesting a token of the opted-in ServiceAccount: %v (last answer: %v)", err, last)
	}
	allowed("requesting a token of the opted-in ServiceAccount",
		op.SubResource("token").Create(ctx, sa("entra-identity"), assertion()))
	denied("requesting a token of another ServiceAccount", msgFederateOptIn,
		op.SubResource("token").Create(ctx, sa("bystander"), assertion()))
	denied("requesting a token of two audiences", msgTokenShape, op.SubResource("token").Create(ctx, sa("entra-identity"),
		request([]string{v1alpha1.DefaultClientAssertionAudience, "https://kubernetes.default.svc"}, credentials.ServiceAccountTokenSeconds)))
	denied("requesting a token for an hour", msgTokenShape, op.SubResource("token").Create(ctx, sa("entra-identity"),
		request([]string{v1alpha1.DefaultClientAssertionAudience}, 3600)))
	bound := assertion()
	bound.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Secret", APIVersion: "v1", Name: "foreign"}
	denied("requesting a token bound to an object", msgTokenShape, op.SubResource("token").Create(ctx, sa("entra-identity"), bound))
}
