package kubectlplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

// tokenEndpointStandIn answers like the token endpoint, authenticating the
// bearer token with a real TokenReview for audience embedtokens.io; the
// template "forbidden" is refused as a SubjectAccessReview denial would be.
func tokenEndpointStandIn(t *testing.T, c client.Client) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse := func(status int, reason string) {
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]string{"reason": reason, "message": reason})
		}
		review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{
			Token:     strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "),
			Audiences: []string{v1alpha1.TokenEndpointAudience},
		}}
		if err := c.Create(r.Context(), review); err != nil || !review.Status.Authenticated ||
			!slices.Contains(review.Status.Audiences, v1alpha1.TokenEndpointAudience) {
			refuse(http.StatusUnauthorized, "Unauthorized")
			return
		}
		if strings.Contains(r.URL.Path, "/embedtokentemplates/forbidden/") {
			refuse(http.StatusForbidden, "Forbidden")
			return
		}
		var body struct {
			Parameters map[string]string `json:"parameters"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"token":       "vendor-token-for-" + body.Parameters["user"] + "-by-" + review.Status.User.Username,
			"expiresAt":   "2026-12-07T13:00:00Z",
			"tokenDigest": "0123456789ab",
			"cached":      false,
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// writeBearerKubeconfig writes a kubeconfig for cfg's API server whose
// credential is token, in namespace shop.
func writeBearerKubeconfig(t *testing.T, cfg *rest.Config, token string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["caller"] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["caller"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "caller", Namespace: "shop"}
	kc.CurrentContext = "caller"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTokenAgainstAPIServer runs `kubectl embedtoken token` with kubeconfigs
// of several identities against a real kube-apiserver, whose TokenReview
// the endpoint's stand-in uses to check what the plugin sends.
func TestTokenAgainstAPIServer(t *testing.T) {
	env, cfg, c := harness.StartEnvironment(t, filepath.Join("..", ".."))
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(cfg)
	srv := tokenEndpointStandIn(t, c)
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}))
	must(c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: CAConfigMapName},
		Data: map[string]string{CAConfigMapKey: caPEM}}))
	for _, sa := range []string{"backend", "no-token-rights"} {
		must(c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: sa}}))
	}
	// backend may mint its own tokens and read the CA, as the docs' Role for
	// humans grants; no-token-rights may read the CA only.
	must(c.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "plugin"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{CAConfigMapName}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"serviceaccounts/token"}, ResourceNames: []string{"backend"}, Verbs: []string{"create"}},
	}}))
	must(c.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "plugin"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "plugin"},
		Subjects: []rbacv1.Subject{
			{Kind: "ServiceAccount", Name: "backend", Namespace: "shop"},
			{Kind: "ServiceAccount", Name: "no-token-rights", Namespace: "shop"},
		}}))
	mint := func(sa string, audiences ...string) string {
		t.Helper()
		tr, err := cs.CoreV1().ServiceAccounts("shop").CreateToken(ctx, sa, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: ptr.To[int64](600)}}, metav1.CreateOptions{})
		must(err)
		return tr.Status.Token
	}
	// An API-server token (the issuer's default audience), as a kubeconfig
	// for a ServiceAccount holds.
	backendKubeconfig := writeBearerKubeconfig(t, cfg, mint("backend"))
	noRightsKubeconfig := writeBearerKubeconfig(t, cfg, mint("no-token-rights"))
	endpointTokenFile := filepath.Join(t.TempDir(), "token")
	must(os.WriteFile(endpointTokenFile, []byte(mint("backend", v1alpha1.TokenEndpointAudience)), 0o600))
	certKubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	must(harness.WriteKubeconfig(env, "alice", certKubeconfig))
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	must(os.WriteFile(caFile, []byte(caPEM), 0o600))

	clk := clocktesting.NewFakePassiveClock(time.Now())
	run := func(kubeconfig string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		cmd := NewCommand(Streams{Out: &out, ErrOut: &errOut}, clk)
		cmd.SetArgs(append([]string{"--kubeconfig", kubeconfig, "token", "--endpoint", srv.URL}, args...))
		err := cmd.ExecuteContext(ctx)
		return out.String() + errOut.String(), err
	}

	tests := []struct {
		name       string
		kubeconfig string
		args       []string
		wantOut    []string
		wantErr    []string
	}{
		{name: "a ServiceAccount identity mints a token of audience embedtokens.io and gets the answer as JSON",
			kubeconfig: backendKubeconfig, args: []string{"shop/per-user-qlik", "--param", "user=alice"},
			wantOut: []string{`"token": "vendor-token-for-alice-by-system:serviceaccount:shop:backend"`, `"expiresAt": "2026-12-07T13:00:00Z"`, `"tokenDigest": "0123456789ab"`}},
		{name: "-o token prints the token only",
			kubeconfig: backendKubeconfig, args: []string{"per-user-qlik", "--param", "user=bob", "-o", "token"},
			wantOut: []string{"vendor-token-for-bob-by-system:serviceaccount:shop:backend\n"}},
		{name: "a kubeconfig bearer token that already has the audience is sent as it is, with --ca-file",
			kubeconfig: writeBearerKubeconfig(t, cfg, mint("backend", v1alpha1.TokenEndpointAudience)),
			args:       []string{"shop/per-user-qlik", "--param", "user=carol", "--ca-file", caFile, "-o", "token"},
			wantOut:    []string{"vendor-token-for-carol-by-system:serviceaccount:shop:backend\n"}},
		{name: "a kubeconfig token for the endpoint only, which the API server refuses, is told to pass --endpoint and --ca-file",
			kubeconfig: writeBearerKubeconfig(t, cfg, mint("backend", v1alpha1.TokenEndpointAudience)),
			args:       []string{"shop/per-user-qlik", "--param", "user=carol"},
			wantErr:    []string{"Unauthorized", "--endpoint and --ca-file"}},
		{name: "a client certificate identity is refused with what to do instead",
			kubeconfig: certKubeconfig, args: []string{"shop/per-user-qlik", "--param", "user=alice"},
			wantErr: []string{`"alice"`, "a client certificate", "not a ServiceAccount", "from a pod", "--caller-token-file"}},
		{name: "--caller-token-file sends that token whatever the kubeconfig identity",
			kubeconfig: certKubeconfig, args: []string{"shop/per-user-qlik", "--param", "user=dave", "--caller-token-file", endpointTokenFile, "-o", "token"},
			wantOut: []string{"vendor-token-for-dave-by-system:serviceaccount:shop:backend\n"}},
		{name: "a ServiceAccount that may not mint its own token is told which permission it lacks",
			kubeconfig: noRightsKubeconfig, args: []string{"shop/per-user-qlik", "--param", "user=alice"},
			wantErr: []string{"shop/no-token-rights", "create on serviceaccounts/token", "forbidden"}},
		{name: "the endpoint's refusal is reported with its status and reason",
			kubeconfig: backendKubeconfig, args: []string{"shop/forbidden", "--param", "user=alice"},
			wantErr: []string{"shop/forbidden", "403", "Forbidden"}},
		{name: "a namespace without the CA ConfigMap says where the CA comes from",
			kubeconfig: certKubeconfig, args: []string{"default/per-user-qlik", "--caller-token-file", endpointTokenFile},
			wantErr: []string{CAConfigMapName, "--ca-file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(tt.kubeconfig, tt.args...)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("token: %v\n%s", err, out)
				}
				for _, want := range tt.wantOut {
					if !strings.Contains(out, want) {
						t.Errorf("output lacks %q:\n%s", want, out)
					}
				}
				return
			}
			if err == nil {
				t.Fatalf("token succeeded, want an error:\n%s", out)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			}
		})
	}
}

// TestEndpointPodAgainstAPIServer picks the port-forward target from a
// Service and its EndpointSlices on a real kube-apiserver.
func TestEndpointPodAgainstAPIServer(t *testing.T) {
	_, cfg, c := harness.StartEnvironment(t, "")
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(cfg)
	ns := DefaultOperatorNamespace
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	slice := func(name string, ready bool, pod string) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: DefaultEndpointService}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To[int32](9443)}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)},
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: pod}}},
		}
	}

	if _, _, err := EndpointPod(ctx, cs, ns, DefaultEndpointService); err == nil || !strings.Contains(err.Error(), "--endpoint") {
		t.Errorf("a missing Service: %v, want a hint at --endpoint", err)
	}
	if err := c.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: DefaultEndpointService},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
			{Name: "metrics", Port: 8080},
			{Name: "https", Port: endpointPort},
		}}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, slice("not-ready", false, "starting")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := EndpointPod(ctx, cs, ns, DefaultEndpointService); err == nil || !strings.Contains(err.Error(), "no ready pod") {
		t.Errorf("only a pod that is not ready: %v, want no ready pod", err)
	}
	if err := c.Create(ctx, slice("ready", true, "manager-0")); err != nil {
		t.Fatal(err)
	}
	pod, port, err := EndpointPod(ctx, cs, ns, DefaultEndpointService)
	if err != nil || pod != "manager-0" || port != 9443 {
		t.Errorf("EndpointPod = %s, %d, %v; want manager-0 on the pod's port 9443", pod, port, err)
	}
}
