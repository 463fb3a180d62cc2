//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

func randSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func objectMeta(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name}
}

// newRequest is a Qrvey EmbedTokenRequest whose user ID is unique to it, so
// the simulator's call log can be counted per request.
func newRequest(name string, lifetime time.Duration) *v1alpha1.EmbedTokenRequest {
	return qrvey.Request(name, lifetime)
}

// waitReady waits for the request to be Ready and returns its Secret.
func waitReady(ctx context.Context, etr *v1alpha1.EmbedTokenRequest) *corev1.Secret {
	secret := &corev1.Secret{}
	Eventually(func(g Gomega) {
		cur := &v1alpha1.EmbedTokenRequest{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(etr), cur)).To(Succeed())
		ready := meta(cur.Status.Conditions, v1alpha1.ConditionReady)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), "Ready: %s %s", ready.Reason, ready.Message)
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: etr.Namespace, Name: etr.Name}, secret)).To(Succeed())
	}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
	return secret
}

func meta(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// secretDigest is the digest of the token currently in the request's Secret.
func secretDigest(ctx context.Context, name string) string {
	tok, err := harness.GetToken(ctx, k8s, ns, name)
	Expect(err).NotTo(HaveOccurred())
	return tok.Digest()
}

// readerContainer runs cmd/tokenreader with args, on the host network (the
// local cluster's only network) and as a non-root user.
func readerContainer(args ...string) corev1.Container {
	return corev1.Container{
		Name:            "reader",
		Image:           workloadImage,
		ImagePullPolicy: corev1.PullNever,
		Args:            args,
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
}

func podSpec(c corev1.Container) corev1.PodSpec {
	return corev1.PodSpec{
		HostNetwork:                   true,
		DNSPolicy:                     corev1.DNSClusterFirstWithHostNet,
		TerminationGracePeriodSeconds: ptr.To[int64](1),
		Containers:                    []corev1.Container{c},
	}
}

// ---------------------------------------------------------------- pod logs

// logLine is one line a container printed, as the kubelet wrote it.
type logLine struct {
	Time   time.Time
	Fields map[string]string
	Raw    string
}

// podLogLines reads a container's log from /var/log/pods, where the kubelet
// writes it (the node has no routable address, so `kubectl logs` cannot reach
// the kubelet). Lines are in the CRI format "<time> <stream> <tag> <text>".
func podLogLines(pod *corev1.Pod, container string) ([]logLine, error) {
	dir := filepath.Join("/var/log/pods", fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID), container)
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var lines []logLine
	for _, f := range files {
		got, err := readCRILog(f)
		if err != nil {
			return nil, err
		}
		lines = append(lines, got...)
	}
	return lines, nil
}

func readCRILog(path string) ([]logLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read-only
	var lines []logLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), " ", 4)
		if len(parts) < 4 {
			continue
		}
		t, _ := time.Parse(time.RFC3339Nano, parts[0])
		lines = append(lines, logLine{Time: t, Fields: logfmt(parts[3]), Raw: parts[3]})
	}
	return lines, sc.Err()
}

// logfmt parses the key=value pairs cmd/tokenreader prints.
func logfmt(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Fields(s) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
}

// operatorLogTail returns the last n lines of the operator pods' logs.
func operatorLogTail(n int) string {
	pods := &corev1.PodList{}
	if err := k8s.List(context.Background(), pods, client.InNamespace(operatorNamespace)); err != nil {
		return err.Error()
	}
	var b strings.Builder
	for i := range pods.Items {
		lines, err := podLogLines(&pods.Items[i], "manager")
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", pods.Items[i].Name, err)
			continue
		}
		fmt.Fprintf(&b, "--- %s\n", pods.Items[i].Name)
		for _, l := range lines[max(0, len(lines)-n):] {
			fmt.Fprintln(&b, l.Raw)
		}
	}
	return b.String()
}

// ---------------------------------------------------------------- simulator

// simCall is one entry of the simulator's /_sim/calls log.
type simCall struct {
	Vendor string         `json:"vendor"`
	Status int            `json:"status"`
	Body   map[string]any `json:"body"`
	Issued bool           `json:"issued"`
}

// simCalls returns the simulator's call log, oldest first.
func simCalls(ctx context.Context) []simCall {
	var out struct {
		Log []simCall `json:"log"`
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.simURL+"/_sim/calls", nil)
	Expect(err).NotTo(HaveOccurred())
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }() // read-only
	Expect(json.NewDecoder(resp.Body).Decode(&out)).To(Succeed())
	return out.Log
}

// issuedFor counts the tokens the simulator issued for a request's user ID.
func issuedFor(ctx context.Context, requestName string) int {
	n := 0
	for _, c := range simCalls(ctx) {
		if c.Issued && c.Body["userid"] == qrvey.UserID(requestName) {
			n++
		}
	}
	return n
}

// ---------------------------------------------------------------- kubectl

// kubectl runs the cluster's own kubectl (built by hack/local-cluster) and
// returns its combined output and exit code.
func kubectl(ctx context.Context, args ...string) (string, int) {
	cmd := exec.CommandContext(ctx, cfg.kubectl, append([]string{"--kubeconfig", cfg.kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	Expect(err).NotTo(HaveOccurred())
	return string(out), 0
}

// canI asks the API server whether the operator's service account may do
// something, impersonating it as `kubectl auth can-i --as` does.
func canI(ctx context.Context, args ...string) bool {
	full := append([]string{"auth", "can-i", "--as", "system:serviceaccount:" + operatorNamespace + ":" + operatorSA}, args...)
	out, code := kubectl(ctx, full...)
	Expect(code).To(BeElementOf(0, 1), "kubectl %v: %s", full, out)
	GinkgoWriter.Printf("can-i %v: %s", args, out)
	return code == 0
}
