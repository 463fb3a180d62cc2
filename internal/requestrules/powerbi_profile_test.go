package requestrules

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// TestPowerBIProfileRecipe checks the recipe of docs/vendors/powerbi.md that
// pins a namespace to its Power BI service principal profile.
func TestPowerBIProfileRecipe(t *testing.T) {
	rules, ok := documentedRules(t)["powerbi-isv"]
	if !ok {
		t.Fatal("docs/vendors/powerbi.md has no provider powerbi-isv")
	}
	policy, err := Compile(rules)
	if err != nil {
		t.Fatal(err)
	}
	const profile = "8d7a6c1e-2b3f-4a5d-9e8f-0a1b2c3d4e5f"
	annotated := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop",
		Annotations: map[string]string{"embedtokens.io/powerbi-profile": profile}}}
	bare := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}
	params := func(profileID string) v1alpha1.VendorParams {
		return v1alpha1.VendorParams{PowerBI: &v1alpha1.PowerBIParams{ProfileID: profileID,
			Reports: []v1alpha1.PowerBIReport{{ID: "5b218778-e7a5-4d73-8187-f10824047715"}}}}
	}
	for _, tc := range []struct {
		name    string
		profile string
		ns      *corev1.Namespace
		admit   bool
	}{
		{"the namespace's profile is admitted", profile, annotated, true},
		{"the namespace's profile in capitals is admitted", "8D7A6C1E-2B3F-4A5D-9E8F-0A1B2C3D4E5F", annotated, true},
		{"another customer's profile is denied", "11111111-2222-4333-8444-555555555555", annotated, false},
		{"no profile, the service principal itself, is denied", "", annotated, false},
		{"a namespace without the annotation is denied", profile, bare, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := policy.Evaluate(context.Background(), request("shop", params(tc.profile)), tc.ns)
			if (d == nil) != tc.admit {
				t.Errorf("denial %v, want admitted %v", d, tc.admit)
			}
		})
	}
}
