package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Environment is the one envtest setup of every suite and tool that runs a
// kube-apiserver and etcd in-process: the operator's CRDs from repoRoot's
// config/crd/bases are installed, or none when repoRoot is "" (a new
// cluster, for installing the operator from its manifests).
func Environment(repoRoot string) *envtest.Environment {
	if repoRoot == "" {
		return &envtest.Environment{}
	}
	return &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(repoRoot, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
}

// StartEnvironment starts Environment(repoRoot) for a plain Go test, stops it
// when the test ends, and returns it with an admin client of Scheme.
func StartEnvironment(t testing.TB, repoRoot string) (*envtest.Environment, *rest.Config, client.Client) {
	t.Helper()
	env := Environment(repoRoot)
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest (run through `make test` so KUBEBUILDER_ASSETS is set): %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil && !killedAfterTimeout(err) {
			t.Logf("stopping envtest: %v", err)
		}
	})
	c, err := client.New(cfg, client.Options{Scheme: Scheme})
	if err != nil {
		t.Fatalf("creating the admin client: %v", err)
	}
	return env, cfg, c
}

// WriteKubeconfig adds a user of the system:masters group named name to env
// and writes a kubeconfig for it to path, for tools run as users run them.
func WriteKubeconfig(env *envtest.Environment, name, path string) error {
	user, err := env.AddUser(envtest.User{Name: name, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("creating user %s: %w", name, err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("rendering the kubeconfig: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("writing the kubeconfig: %w", err)
	}
	return nil
}
