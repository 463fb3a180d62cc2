package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// RepoRoot is the directory of the module's go.mod, so tests started from any
// package directory find cmd/ and config/.
func RepoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the operator's Go module")
	}
	return filepath.Dir(mod), nil
}

// BuildManager compiles the manager binary (./cmd) into dir and returns its
// path, so tests run exactly what ships.
func BuildManager(repoRoot, dir string) (string, error) {
	bin := filepath.Join(dir, "manager")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd: %w\n%s", err, out)
	}
	return bin, nil
}

// AllowSimulator is the manager flag that lets vendor calls reach the
// simulator on 127.0.0.1 through the egress guard, which refuses loopback
// otherwise. Exactly that address: the rest of loopback stays refused.
const AllowSimulator = "--allow-vendor-cidrs=127.0.0.1/32"

// Manager is one running manager process.
type Manager struct {
	// LogPath is where the process's stdout and stderr go.
	LogPath string

	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	err  error
}

// StartManager runs bin with args against the cluster of kubeconfig, logging
// to logPath (appended, so restarts share one file).
func StartManager(bin, kubeconfig, logPath string, args ...string) (*Manager, error) {
	return StartManagerWithEnv(bin, kubeconfig, logPath, nil, args...)
}

// StartManagerWithEnv is StartManager with extra environment variables for
// the manager alone (e.g. GOMEMLIMIT, as its Deployment would set it).
func StartManagerWithEnv(bin, kubeconfig, logPath string, env []string, args ...string) (*Manager, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the manager log: %w", err)
	}
	if _, err := fmt.Fprintf(logFile, "=== harness: starting %s %s at %s\n", filepath.Base(bin), strings.Join(args, " "), time.Now().Format(time.RFC3339Nano)); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("writing the manager log: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "KUBECONFIG="+kubeconfig), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting the manager: %w", err)
	}
	m := &Manager{LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		_ = logFile.Close()
		m.mu.Lock()
		m.err = err
		m.mu.Unlock()
		close(m.done)
	}()
	return m, nil
}

// PID is the process id.
func (m *Manager) PID() int { return m.cmd.Process.Pid }

// Exited reports whether the process has ended, and how.
func (m *Manager) Exited() (bool, error) {
	select {
	case <-m.done:
		m.mu.Lock()
		defer m.mu.Unlock()
		return true, m.err
	default:
		return false, nil
	}
}

// Kill sends SIGKILL, as the kubelet or the OOM killer would, and waits for
// the process to be gone.
func (m *Manager) Kill() error {
	if err := m.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing manager %d: %w", m.PID(), err)
	}
	<-m.done
	return nil
}

// Stop sends SIGTERM and waits up to timeout, then kills.
func (m *Manager) Stop(timeout time.Duration) error {
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stopping manager %d: %w", m.PID(), err)
	}
	select {
	case <-m.done:
		return nil
	case <-time.After(timeout):
		return m.Kill()
	}
}

// WaitLog waits until the manager's log contains substr, for example the
// line that says it became leader.
func (m *Manager) WaitLog(ctx context.Context, substr string) error {
	for {
		data, err := os.ReadFile(m.LogPath)
		if err == nil && strings.Contains(string(data), substr) {
			return nil
		}
		if done, exitErr := m.Exited(); done {
			return fmt.Errorf("manager exited (%w) before logging %q", exitErr, substr)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %q in %s: %w", substr, m.LogPath, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// LogContains reports whether the manager's log holds substr now.
func (m *Manager) LogContains(substr string) bool {
	data, err := os.ReadFile(m.LogPath)
	return err == nil && strings.Contains(string(data), substr)
}

// BuildManagerAndControlPlane builds the manager binary into dir and starts
// a control plane that keeps its files there: how every suite that runs the
// manager as a separate process begins.
func BuildManagerAndControlPlane(dir string) (bin string, cp *ControlPlane, err error) {
	root, err := RepoRoot()
	if err != nil {
		return "", nil, err
	}
	if bin, err = BuildManager(root, dir); err != nil {
		return "", nil, err
	}
	cp, err = StartControlPlane(dir, root, nil)
	return bin, cp, err
}
