package kubectlplugin

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

// TestAgainstAPIServer runs the plugin's commands, with a kubeconfig file as
// users do, against a real kube-apiserver holding the operator's CRDs.
func TestAgainstAPIServer(t *testing.T) {
	env, _, c := harness.StartEnvironment(t, filepath.Join("..", ".."))
	kubeconfigPath := filepath.Join(t.TempDir(), "kubeconfig")
	if err := harness.WriteKubeconfig(env, "alice", kubeconfigPath); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	clk := clocktesting.NewFakePassiveClock(time.Now().Truncate(time.Second))
	seed(ctx, t, c, clk.Now())

	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		cmd := NewCommand(Streams{Out: &out, ErrOut: &errOut}, clk)
		cmd.SetArgs(append([]string{"--kubeconfig", kubeconfigPath}, args...))
		err := cmd.ExecuteContext(ctx)
		return out.String() + errOut.String(), err
	}

	t.Run("status", func(t *testing.T) {
		out, err := run("status", "-n", "shop")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"NAME", "dash", "True", "TokenIssued", "60m", "40m", "FRESH"} {
			if !strings.Contains(out, want) {
				t.Errorf("status output lacks %q:\n%s", want, out)
			}
		}
		if out, err = run("status", "-A"); err != nil || !strings.Contains(out, "NAMESPACE") || !strings.Contains(out, "shop") {
			t.Errorf("status -A: %v\n%s", err, out)
		}
		if out, _ = run("status", "-n", "empty"); !strings.Contains(out, "No EmbedTokenRequests found") {
			t.Errorf("status in an empty namespace:\n%s", out)
		}
	})

	t.Run("refresh", func(t *testing.T) {
		out, err := run("refresh", "dash", "-n", "shop")
		if err != nil {
			t.Fatal(err)
		}
		want := clk.Now().UTC().Format(time.RFC3339Nano)
		etr := &v1alpha1.EmbedTokenRequest{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "dash"}, etr); err != nil {
			t.Fatal(err)
		}
		if etr.Annotations[v1alpha1.RefreshAnnotation] != want || etr.Annotations["team"] != "bi" {
			t.Errorf("annotations %v, want refresh=%s and the others kept", etr.Annotations, want)
		}
		if !strings.Contains(out, "refresh requested") {
			t.Errorf("refresh output:\n%s", out)
		}
		if etr.Generation != 1 {
			t.Errorf("refresh changed the spec: generation %d", etr.Generation)
		}

		etr.Status.LastHandledRefresh = want // what the operator does once the new token is stored
		if err := c.Status().Update(ctx, etr); err != nil {
			t.Fatal(err)
		}
		if err := WaitRefreshed(ctx, c, types.NamespacedName{Namespace: "shop", Name: "dash"}, want, 10*time.Second); err != nil {
			t.Error(err)
		}
		if _, err := run("refresh", "missing", "-n", "shop"); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("refreshing a missing request: %v", err)
		}
	})

	t.Run("inspect", func(t *testing.T) {
		out, err := run("inspect", "dash", "-n", "shop")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, `"sub": "alice"`) || strings.Contains(out, "c2lnbmF0dXJl") {
			t.Errorf("inspect output:\n%s", out)
		}
	})
}

// seed creates a namespace with one request whose status says a token was
// issued, and its Secret holding a JWT.
func seed(ctx context.Context, t *testing.T, c client.Client, now time.Time) {
	t.Helper()
	for _, ns := range []string{"shop", "empty"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	etr := &v1alpha1.EmbedTokenRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "dash", Annotations: map[string]string{"team": "bi"}},
		Spec: v1alpha1.EmbedTokenRequestSpec{ProviderRef: v1alpha1.ProviderRef{Name: "jwt"},
			VendorParams: v1alpha1.VendorParams{JWT: &v1alpha1.JWTParams{Subject: "alice"}}},
	}
	if err := c.Create(ctx, etr); err != nil {
		t.Fatal(err)
	}
	etr.Status = v1alpha1.EmbedTokenRequestStatus{
		SecretName: "dash", ExpiresAt: &metav1.Time{Time: now.Add(time.Hour)}, RenewAt: &metav1.Time{Time: now.Add(40 * time.Minute)},
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonTokenIssued,
			Message: "ok", LastTransitionTime: metav1.Now()}},
	}
	if err := c.Status().Update(ctx, etr); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "dash"}, Data: map[string][]byte{
		v1alpha1.SecretTokenKey: []byte(jwtOf(`{"alg":"HS256"}`, `{"sub":"alice"}`)),
	}}); err != nil {
		t.Fatal(err)
	}
}
