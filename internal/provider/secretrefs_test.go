package provider_test

import (
	"reflect"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/utils/ptr"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

func TestSecretRefsIn(t *testing.T) {
	ref := func(name string) v1alpha1.SecretKeySelector { return v1alpha1.SecretKeySelector{Name: name, Key: "k"} }
	tests := []struct {
		name  string
		block any
		want  []v1alpha1.SecretKeySelector
	}{
		{"nil block", (*v1alpha1.QrveyProvider)(nil), nil},
		{"untyped nil", nil, nil},
		{"a field", &v1alpha1.QrveyProvider{URL: "https://q", APIKeySecretRef: ref("a")}, []v1alpha1.SecretKeySelector{ref("a")}},
		{"inside a list, skipping literal values", &v1alpha1.HTTPProvider{Headers: []v1alpha1.HTTPHeader{
			{Name: "A", ValueFrom: &v1alpha1.HTTPHeaderSource{SecretKeyRef: ref("h1")}},
			{Name: "B", Value: ptr.To("literal")},
			{Name: "C", ValueFrom: &v1alpha1.HTTPHeaderSource{SecretKeyRef: ref("h2")}},
		}}, []v1alpha1.SecretKeySelector{ref("h1"), ref("h2")}},
		{"beside JSON values", &v1alpha1.OAuth2Provider{ClientSecretSecretRef: new(ref("c")),
			ExtraParameters: &apiextensionsv1.JSON{Raw: []byte(`{"a":1}`)}}, []v1alpha1.SecretKeySelector{ref("c")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := provider.SecretRefsIn(tt.block); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SecretRefsIn = %v, want %v", got, tt.want)
			}
		})
	}
}
