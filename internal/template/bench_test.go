package template

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// BenchmarkFill measures one call's parameter check, validations and
// fill: the work the token endpoint does on every call, cached or not.
func BenchmarkFill(b *testing.B) {
	s := spec("powerBI", "powerBI.identities[0].username", "powerBI.identities[0].roles[0]")
	s.Parameters[0].Validation = &v1alpha1.ParameterValidation{Expression: "value.endsWith('@' + namespaceObject.metadata.labels['domain'])"}
	s.Parameters[1].Validation = &v1alpha1.ParameterValidation{Expression: "value in ['Viewer', 'Customer'] && caller.namespace == 'shop'"}
	c, err := Compile(s)
	if err != nil {
		b.Fatal(err)
	}
	ns := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"domain": "acme.com"}}}
	params := map[string]string{"pa": "alice@acme.com", "pb": "Viewer"}
	caller := Caller{Username: "system:serviceaccount:shop:web", Namespace: "shop", ServiceAccount: "web", PodName: "web-1"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Fill(params, caller, ns); err != nil {
			b.Fatal(err)
		}
	}
}
