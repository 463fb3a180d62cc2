package install

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/servingcert"
)

// The token endpoint's messages of the manager's admission policy.
const (
	msgServingCertNamespace = "may write Secrets labelled embedtokens.io/serving-cert only in its own namespace"
	msgConfigMapName        = "may only write ConfigMaps named embedtokens-ca.crt"
	msgConfigMapForeign     = "may only change or delete ConfigMaps that already carry the label"
	msgConfigMapContent     = "holding ca.crt alone"
)

// checkTokenEndpointGuardrails does, as the manager's ServiceAccount, what
// internal/servingcert does (its TLS Secret in its own namespace, the CA
// bundle ConfigMap in a namespace with templates) and checks that the
// policy lets it through, and denies the same writes elsewhere, under
// other names, or to ConfigMaps the manager did not create.
func checkTokenEndpointGuardrails(ctx context.Context, t *testing.T, admin, op client.Client, ownNamespace string,
	denied func(string, string, error), allowed func(string, error)) {
	t.Helper()
	servingSecret := func(ns string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "token-endpoint-tls",
			Labels: map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue, servingcert.SecretLabel: "true"}},
			Type: corev1.SecretTypeOpaque, Data: map[string][]byte{servingcert.CABundleKey: []byte("x")}}
	}
	own := servingSecret(ownNamespace)
	allowed("creating the TLS Secret in the manager's namespace", op.Create(ctx, own))
	own.Data[servingcert.TLSCertKey] = []byte("y")
	allowed("rotating the TLS Secret in the manager's namespace", op.Update(ctx, own))
	denied("creating a TLS Secret in another namespace", msgServingCertNamespace, op.Create(ctx, servingSecret(guardNamespace)))

	bundle := func(name string, labelled bool, data map[string]string) *corev1.ConfigMap {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: guardNamespace, Name: name}, Data: data}
		if labelled {
			cm.Labels = map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue}
		}
		return cm
	}
	ca := map[string]string{servingcert.ConfigMapKey: "pem"}
	published := bundle(servingcert.ConfigMapName, true, ca)
	allowed("publishing the CA bundle", op.Create(ctx, published))
	published.Data[servingcert.ConfigMapKey] = "rotated"
	allowed("updating the published CA bundle", op.Update(ctx, published))
	extra := published.DeepCopy()
	extra.Data["script.sh"] = "curl attacker.example"
	denied("adding a key to the published CA bundle", msgConfigMapContent, op.Update(ctx, extra))
	allowed("deleting the published CA bundle", op.Delete(ctx, published))
	denied("creating a ConfigMap of another name", msgConfigMapName, op.Create(ctx, bundle("kube-root-ca.crt", true, ca)))
	denied("creating an unlabelled CA bundle", msgConfigMapContent, op.Create(ctx, bundle(servingcert.ConfigMapName, false, ca)))

	theirs := bundle(servingcert.ConfigMapName, false, map[string]string{servingcert.ConfigMapKey: "theirs"})
	if err := admin.Create(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	claimed := theirs.DeepCopy()
	claimed.Labels = map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue}
	claimed.Data = ca
	denied("taking over a CA bundle ConfigMap someone else created", msgConfigMapForeign, op.Update(ctx, claimed))
	denied("deleting a CA bundle ConfigMap someone else created", msgConfigMapForeign, op.Delete(ctx, theirs.DeepCopy()))
}
