package controller_test

import (
	"bufio"
	"context"
	"encoding/json"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

// jsonLines decodes the JSON log lines of text.
func jsonLines(text string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := map[string]any{}
		if json.Unmarshal(sc.Bytes(), &line) == nil {
			out = append(out, line)
		}
	}
	return out
}

// logLine finds the first line with msg about the named request.
func logLine(lines []map[string]any, msg, ns, name string) map[string]any {
	for _, l := range lines {
		ref, _ := l["embedTokenRequest"].(map[string]any)
		if l["msg"] == msg && ref["namespace"] == ns && ref["name"] == name {
			return l
		}
	}
	return nil
}

var _ = Describe("Structured logs", func() {
	It("name the request and the vendor in JSON, and never hold a token or credential", func() {
		ctx := context.Background()
		f := newFixtureWithProvider(ctx)
		logs := gbytes.NewBuffer() // safe for the manager's goroutines
		logger := zap.New(zap.WriteTo(logs), zap.JSONEncoder(), zap.Level(zapcore.Level(-1)))
		stopMgr()
		DeferCleanup(func() { stopMgr = startManager() })
		DeferCleanup(startManagerWith(cfg, logger))

		etr := f.request("logged", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		token := waitForToken(ctx, etr, "")
		f.sim.SetFault(vendorsim.Fault{Status: 503, RetryAfter: time.Hour})
		failing := f.request("logged-failing", time.Hour)
		Expect(k8sClient.Create(ctx, failing)).To(Succeed())
		Eventually(readyCondition(ctx, failing)).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonVendorUnavailable))

		var stored, failed map[string]any
		Eventually(func(g Gomega) {
			lines := jsonLines(string(logs.Contents()))
			stored = logLine(lines, "Stored token", f.ns, "logged")
			failed = logLine(lines, "Issuing token failed", f.ns, "logged-failing")
			g.Expect(stored).NotTo(BeNil())
			g.Expect(failed).NotTo(BeNil())
		}).Should(Succeed(), func() string { return string(logs.Contents()) })
		Expect(stored).To(HaveKeyWithValue("vendor", v1alpha1.VendorQrvey))
		Expect(stored).To(HaveKeyWithValue("digest", get(ctx, etr).(*v1alpha1.EmbedTokenRequest).Status.TokenDigest))
		Expect(failed).To(HaveKeyWithValue("vendor", v1alpha1.VendorQrvey))
		Expect(failed).To(HaveKeyWithValue("reason", v1alpha1.ReasonVendorUnavailable))

		all := string(logs.Contents())
		Expect(all).NotTo(ContainSubstring(token))
		Expect(all).NotTo(ContainSubstring(apiKey))
		creds := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "qrvey-credentials"}, creds)).To(Succeed())
		Expect(all).NotTo(ContainSubstring(string(creds.Data["apiKey"])))
	})
})
