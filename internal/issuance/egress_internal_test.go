package issuance

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/credentials"
	"github.com/embedtokens/embed-token-operator/internal/provider/egress"
)

// TestProviderKindPicksTheEgressScope proves a ClusterEmbedProvider's calls
// are guarded as cluster-scoped (private ranges allowed) and an
// EmbedProvider's as namespaced, and that a cached client is never reused
// for the other scope.
func TestProviderKindPicksTheEgressScope(t *testing.T) {
	spec := &v1alpha1.EmbedProviderSpec{}
	status := &v1alpha1.EmbedProviderStatus{}
	cluster := newProvider(&v1alpha1.ClusterEmbedProvider{ObjectMeta: metav1.ObjectMeta{Name: "shared", UID: "same-uid"}},
		spec, status, credentials.New(nil, "", true), nil)
	namespaced := newProvider(&v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "own", UID: "same-uid"}},
		spec, status, credentials.New(nil, "team-a", false), nil)
	if cluster.scope != egress.Cluster || namespaced.scope != egress.Namespaced {
		t.Fatalf("scopes = %v, %v; want ClusterEmbedProvider, EmbedProvider", cluster.scope, namespaced.scope)
	}

	r := &Issuer{clients: newHTTPClients(0, clock.RealClock{})}
	ctx := context.Background()
	cc, err := r.httpClient(ctx, cluster)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := r.httpClient(ctx, namespaced)
	if err != nil {
		t.Fatal(err)
	}
	again, err := r.httpClient(ctx, namespaced)
	if err != nil {
		t.Fatal(err)
	}
	if cc == nc {
		t.Error("one client serves both scopes")
	}
	if again != nc {
		t.Error("the client is not reused for the same provider and scope")
	}
}
