package issuance

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/requestrules"
)

// TestResolveAndCheck drives Resolve, Check and CheckVendor over a fake
// cache: the reasons they fail with are the ones the conditions and the
// token endpoint report.
func TestResolveAndCheck(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	qrvey := v1alpha1.VendorConfig{Qrvey: &v1alpha1.QrveyProvider{}}
	own := &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "own", UID: "uid-own", Generation: 2},
		Spec: v1alpha1.EmbedProviderSpec{VendorConfig: qrvey, RequestValidations: []v1alpha1.RequestValidation{
			{Expression: `object.spec.qrvey.userID.startsWith("team-a-")`, Message: "users of team-a only"}}},
		Status: v1alpha1.EmbedProviderStatus{CredentialsVersion: "v1"}}
	shared := &v1alpha1.ClusterEmbedProvider{ObjectMeta: metav1.ObjectMeta{Name: "shared", UID: "uid-shared"},
		Spec: v1alpha1.ClusterEmbedProviderSpec{EmbedProviderSpec: v1alpha1.EmbedProviderSpec{VendorConfig: qrvey}}}
	cache := fake.NewClientBuilder().WithScheme(scheme).WithObjects(own, shared).Build()
	vendors := map[string]provider.Provider{v1alpha1.VendorQrvey: &countingVendor{}}
	request := func(ref v1alpha1.ProviderRef, user string) *v1alpha1.EmbedTokenRequest {
		return &v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "dash"},
			Spec: v1alpha1.EmbedTokenRequestSpec{ProviderRef: ref, VendorParams: v1alpha1.VendorParams{Qrvey: &v1alpha1.QrveyParams{UserID: user}}}}
	}
	ownRef, sharedRef := v1alpha1.ProviderRef{Name: "own"}, v1alpha1.ProviderRef{Kind: KindClusterEmbedProvider, Name: "shared"}
	tests := []struct {
		name            string
		watch           []string
		providers       map[string]provider.Provider
		obj             *v1alpha1.EmbedTokenRequest
		vendorOnly      bool // CheckVendor for a template instead of Check
		wantReason      string
		wantMessagePart string
	}{
		{name: "a request its provider's rules admit passes", obj: request(ownRef, "team-a-ann")},
		{name: "a request the rules deny is RequestDenied with the rule's message", obj: request(ownRef, "bob"),
			wantReason: v1alpha1.ReasonRequestDenied, wantMessagePart: "users of team-a only"},
		{name: "a template is not judged by the rules", obj: request(ownRef, "{placeholder}"), vendorOnly: true},
		{name: "a missing provider is ProviderNotFound", obj: request(v1alpha1.ProviderRef{Name: "gone"}, "team-a-ann"),
			wantReason: v1alpha1.ReasonProviderNotFound, wantMessagePart: "EmbedProvider team-a/gone not found"},
		{name: "a shared provider in namespaced mode is refused", watch: []string{"team-a"}, obj: request(sharedRef, "u"),
			wantReason: v1alpha1.ReasonProviderNotFound, wantMessagePart: "namespaced mode"},
		{name: "a shared provider serves a namespace it does not restrict", obj: request(sharedRef, "u")},
		{name: "a vendor this build lacks is VendorNotSupported", providers: map[string]provider.Provider{}, obj: request(ownRef, "team-a-ann"),
			wantReason: v1alpha1.ReasonVendorNotSupported},
		{name: "a template of another vendor is VendorMismatch, named as a template", vendorOnly: true,
			obj: &v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a"}, Spec: v1alpha1.EmbedTokenRequestSpec{
				ProviderRef: ownRef, VendorParams: v1alpha1.VendorParams{BoldBI: &v1alpha1.BoldBIParams{}}}},
			wantReason: v1alpha1.ReasonVendorMismatch, wantMessagePart: "the template sets spec.boldBI"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			providers := vendors
			if tc.providers != nil {
				providers = tc.providers
			}
			i := New(Options{Client: cache, APIReader: client.Reader(cache), Providers: providers, RequestRules: requestrules.NewCache(),
				WatchNamespaces: tc.watch})
			ctx := context.Background()
			p, err := i.Resolve(ctx, tc.obj.Namespace, tc.obj.Spec.ProviderRef)
			if err == nil {
				if tc.vendorOnly {
					err = i.CheckVendor(ctx, p, tc.obj.Namespace, tc.obj.Spec.Vendor(), "template")
				} else {
					err = i.Check(ctx, p, tc.obj)
				}
			}
			if tc.wantReason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if p.impl == nil {
					t.Error("a checked provider has no implementation")
				}
				return
			}
			e := provider.Classify(err)
			if err == nil || e.Reason != tc.wantReason || !strings.Contains(e.Message, tc.wantMessagePart) {
				t.Fatalf("err = %v (reason %q), want reason %q with %q", err, e.Reason, tc.wantReason, tc.wantMessagePart)
			}
		})
	}
	t.Run("the handle names the provider and its credentials version", func(t *testing.T) {
		i := New(Options{Client: cache, APIReader: cache, Providers: vendors, RequestRules: requestrules.NewCache()})
		p, err := i.Resolve(context.Background(), "team-a", ownRef)
		if err != nil {
			t.Fatal(err)
		}
		if p.Describe() != "EmbedProvider own" || p.Shared() || p.CredentialsVersion() != "v1" || p.RotationVersion() != "v1" ||
			p.Vendor() != v1alpha1.VendorQrvey || p.Generation != 2 {
			t.Errorf("provider %+v: %s shared=%v version=%q", p, p.Describe(), p.Shared(), p.CredentialsVersion())
		}
	})
}
