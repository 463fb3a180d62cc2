package credentials

import (
	"context"
	"fmt"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// tokenAPI is a fake TokenRequest API: it answers each create on
// serviceaccounts/token with a token naming the request and the call's
// number, valid for the seconds asked, or with fail's error when set.
type tokenAPI struct {
	clientset *fake.Clientset
	clock     *clocktesting.FakeClock
	calls     []string // namespace/name@audience/seconds of each call
	fail      error
}

func newTokenAPI(clk *clocktesting.FakeClock) *tokenAPI {
	api := &tokenAPI{clientset: fake.NewClientset(), clock: clk}
	api.clientset.PrependReactor("create", "serviceaccounts", func(action k8stesting.Action) (bool, runtime.Object, error) {
		create := action.(k8stesting.CreateActionImpl)
		if create.GetSubresource() != "token" {
			return false, nil, nil
		}
		req := create.GetObject().(*authenticationv1.TokenRequest)
		call := fmt.Sprintf("%s/%s@%s/%d", create.GetNamespace(), create.Name, req.Spec.Audiences, *req.Spec.ExpirationSeconds)
		api.calls = append(api.calls, call)
		if api.fail != nil {
			return true, nil, api.fail
		}
		out := req.DeepCopy()
		out.Status = authenticationv1.TokenRequestStatus{Token: fmt.Sprintf("token-%d-%s", len(api.calls), call),
			ExpirationTimestamp: metav1.NewTime(api.clock.Now().Add(time.Duration(*req.Spec.ExpirationSeconds) * time.Second))}
		return true, out, nil
	})
	return api
}

// reader is the credential reader of the provider uid at generation in
// namespace ("" for a ClusterEmbedProvider), sharing tokens.
func reader(tokens *ServiceAccountTokens, uid string, generation int64, namespace string) Reader {
	meta := metav1.ObjectMeta{Namespace: namespace, Name: "p", UID: types.UID(uid), Generation: generation}
	if namespace == "" {
		return ForProvider(nil, &v1alpha1.ClusterEmbedProvider{ObjectMeta: meta}, "", nil, tokens)
	}
	return ForProvider(nil, &v1alpha1.EmbedProvider{ObjectMeta: meta}, "", nil, tokens)
}

// TestServiceAccountTokens requests tokens through the fake TokenRequest
// API as providers do, moving the injected clock between calls.
func TestServiceAccountTokens(t *testing.T) {
	aud := v1alpha1.DefaultClientAssertionAudience
	sa := v1alpha1.ServiceAccountReference{Name: "powerbi"}
	tests := []struct {
		name string
		// run makes the calls; want lists the TokenRequests they cause.
		run  func(t *testing.T, tokens *ServiceAccountTokens, clk *clocktesting.FakeClock)
		want []string
	}{
		{name: "a token is requested for 600 seconds in the provider's namespace",
			run: func(t *testing.T, tokens *ServiceAccountTokens, _ *clocktesting.FakeClock) {
				get(t, reader(tokens, "p1", 1, "team-a"), sa, aud)
			},
			want: []string{"team-a/powerbi@[api://AzureADTokenExchange]/600"}},
		{name: "a token is reused for 80 percent of its life",
			run: func(t *testing.T, tokens *ServiceAccountTokens, clk *clocktesting.FakeClock) {
				r := reader(tokens, "p1", 1, "team-a")
				first := get(t, r, sa, aud)
				clk.Step(479 * time.Second)
				if again := get(t, r, sa, aud); again != first {
					t.Errorf("a token at 479 of its 600 seconds was replaced")
				}
				clk.Step(time.Second)
				if again := get(t, r, sa, aud); again == first {
					t.Errorf("a token at 480 of its 600 seconds was reused")
				}
			},
			want: []string{"team-a/powerbi@[api://AzureADTokenExchange]/600", "team-a/powerbi@[api://AzureADTokenExchange]/600"}},
		{name: "another provider, generation or audience gets its own token",
			run: func(t *testing.T, tokens *ServiceAccountTokens, _ *clocktesting.FakeClock) {
				get(t, reader(tokens, "p1", 1, "team-a"), sa, aud)
				get(t, reader(tokens, "p2", 1, "team-a"), sa, aud)
				get(t, reader(tokens, "p1", 2, "team-a"), sa, aud)
				get(t, reader(tokens, "p1", 2, "team-a"), sa, "api://other")
				get(t, reader(tokens, "p1", 2, "team-a"), sa, aud) // cached
			},
			want: []string{"team-a/powerbi@[api://AzureADTokenExchange]/600", "team-a/powerbi@[api://AzureADTokenExchange]/600",
				"team-a/powerbi@[api://AzureADTokenExchange]/600", "team-a/powerbi@[api://other]/600"}},
		{name: "a ClusterEmbedProvider requests in the namespace its reference names",
			run: func(t *testing.T, tokens *ServiceAccountTokens, _ *clocktesting.FakeClock) {
				get(t, reader(tokens, "c1", 1, ""), v1alpha1.ServiceAccountReference{Name: "powerbi", Namespace: "platform"}, aud)
			},
			want: []string{"platform/powerbi@[api://AzureADTokenExchange]/600"}},
		{name: "no reference can make the operator request a token elsewhere",
			run: func(t *testing.T, tokens *ServiceAccountTokens, _ *clocktesting.FakeClock) {
				for _, c := range []struct {
					r   Reader
					ref v1alpha1.ServiceAccountReference
				}{
					{reader(tokens, "p1", 1, "team-a"), v1alpha1.ServiceAccountReference{Name: "powerbi", Namespace: "kube-system"}},
					{reader(tokens, "c1", 1, ""), v1alpha1.ServiceAccountReference{Name: "powerbi"}},
				} {
					_, err := c.r.ServiceAccountToken(context.Background(), c.ref, aud)
					if e := provider.Classify(err); err == nil || e.Reason != v1alpha1.ReasonProviderInvalid || !e.Permanent {
						t.Errorf("reference %+v: %v, want a permanent ProviderInvalid", c.ref, err)
					}
				}
			},
			want: nil},
		{name: "forgetting a provider drops its tokens",
			run: func(t *testing.T, tokens *ServiceAccountTokens, _ *clocktesting.FakeClock) {
				get(t, reader(tokens, "p1", 1, "team-a"), sa, aud)
				tokens.Forget("p1")
				get(t, reader(tokens, "p1", 1, "team-a"), sa, aud)
			},
			want: []string{"team-a/powerbi@[api://AzureADTokenExchange]/600", "team-a/powerbi@[api://AzureADTokenExchange]/600"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
			api := newTokenAPI(clk)
			tokens := NewServiceAccountTokens(api.clientset.CoreV1(), clk)
			tc.run(t, tokens, clk)
			if fmt.Sprint(api.calls) != fmt.Sprint(tc.want) {
				t.Errorf("TokenRequests %v, want %v", api.calls, tc.want)
			}
		})
	}
}

// TestServiceAccountTokenErrors classifies the TokenRequest API's refusals
// and checks no token reaches a message.
func TestServiceAccountTokenErrors(t *testing.T) {
	sa := schema.GroupResource{Resource: "serviceaccounts"}
	tests := []struct {
		name       string
		fail       error
		nilClient  bool
		wantReason string
		permanent  bool
	}{
		{name: "a missing ServiceAccount is transient", fail: apierrors.NewNotFound(sa, "powerbi"),
			wantReason: v1alpha1.ReasonCredentialsNotFound},
		{name: "a refusal of the admission policy needs a person", fail: apierrors.NewForbidden(sa, "powerbi", fmt.Errorf("not opted in")),
			wantReason: v1alpha1.ReasonInvalidCredentials, permanent: true},
		{name: "an unavailable API server is transient", fail: apierrors.NewServiceUnavailable("try later"),
			wantReason: v1alpha1.ReasonCredentialsNotFound},
		{name: "a reader without a TokenRequest client refuses", nilClient: true,
			wantReason: v1alpha1.ReasonProviderInvalid, permanent: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Now())
			api := newTokenAPI(clk)
			api.fail = tc.fail
			tokens := NewServiceAccountTokens(api.clientset.CoreV1(), clk)
			if tc.nilClient {
				tokens = nil
			}
			_, err := reader(tokens, "p1", 1, "team-a").ServiceAccountToken(context.Background(),
				v1alpha1.ServiceAccountReference{Name: "powerbi"}, v1alpha1.DefaultClientAssertionAudience)
			if e := provider.Classify(err); err == nil || e.Reason != tc.wantReason || e.Permanent != tc.permanent {
				t.Errorf("error %v, want reason %s, permanent %v", err, tc.wantReason, tc.permanent)
			}
		})
	}
}

// TestServiceAccountTokenCacheIsBounded fills the cache past its bound:
// it starts over instead of growing.
func TestServiceAccountTokenCacheIsBounded(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	tokens := NewServiceAccountTokens(newTokenAPI(clk).clientset.CoreV1(), clk)
	for i := range maxCachedServiceAccountTokens + 10 {
		get(t, reader(tokens, fmt.Sprint("p", i), 1, "team-a"), v1alpha1.ServiceAccountReference{Name: "powerbi"}, "aud")
	}
	if n := len(tokens.entries); n > maxCachedServiceAccountTokens {
		t.Errorf("%d cached tokens, more than the bound %d", n, maxCachedServiceAccountTokens)
	}
}

// get is ServiceAccountToken, failing the test on error.
func get(t *testing.T, r Reader, ref v1alpha1.ServiceAccountReference, audience string) string {
	t.Helper()
	tok, err := r.ServiceAccountToken(context.Background(), ref, audience)
	if err != nil {
		t.Fatalf("ServiceAccountToken: %v", err)
	}
	return tok
}
