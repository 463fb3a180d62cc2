package controller_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

// leakedIn returns the secrets (or their base64 forms, as Secret data travels
// in JSON) that text contains.
func leakedIn(text string, secrets []string) []string {
	var found []string
	for _, s := range secrets {
		if strings.Contains(text, s) || strings.Contains(text, base64.StdEncoding.EncodeToString([]byte(s))) {
			found = append(found, s)
		}
	}
	return found
}

// echoCredential is what a careless vendor answers: an error quoting the
// API key it was sent.
const echoCredential = `{"message":"x-api-key ` + apiKey + ` is not valid for this tenant"}`

var _ = Describe("Secrets never leak", Ordered, func() {
	var logs *gbytes.Buffer
	BeforeAll(func() {
		logs = gbytes.NewBuffer() // safe for the manager's goroutines
		stopMgr()
		// The most verbose logger there is: every V-level, every field.
		stopMgr = startManagerWithLogger(zap.New(zap.WriteTo(logs), zap.Level(zapcore.Level(-10)), zap.UseDevMode(true)))
		DeferCleanup(func() {
			stopMgr()
			stopMgr = startManager()
		})
	})

	It("keeps tokens and credentials out of logs, Events, status and conditions through issue, refresh and failures", func() {
		ctx := context.Background()
		f := newFixtureWithProvider(ctx)
		const scriptedToken = "tok-LEAKCHECK-7d1e0b5a9c"

		By("issuing and refreshing a Qrvey token")
		f.grantOnly(4 * time.Second)
		etr := f.request("leak", time.Minute)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		first := waitForToken(ctx, etr, "")
		waitForToken(ctx, etr, provider.Digest(first))

		By("failing: a vendor outage, then rejected credentials")
		f.sim.SetFault(vendorsim.Fault{Status: http.StatusServiceUnavailable})
		Eventually(func(g Gomega) {
			g.Expect(get(ctx, etr.DeepCopy()).(*v1alpha1.EmbedTokenRequest).Status.FailedAttempts).To(BeNumerically(">=", 1))
		}).Should(Succeed())
		f.sim.SetFault(vendorsim.Fault{Status: http.StatusUnauthorized})
		Eventually(readyCondition(ctx, etr)).Should(HaveField("Reason", v1alpha1.ReasonVendorUnauthorized))
		f.sim.ClearFault()

		By("a generic HTTP vendor that issues, then echoes the credential, then answers garbage holding the token")
		v := newScriptedVendor(http.StatusOK, tokenBody(scriptedToken, time.Now().Add(8*time.Second)))
		f.createNamedProvider(ctx, "scripted", httpProviderSpec(v.srv.URL))
		h := f.httpRequest("leak-http", "scripted", time.Minute)
		h.Spec.RenewBeforePercentage = ptrInt32(50)
		Expect(k8sClient.Create(ctx, h)).To(Succeed())
		waitForToken(ctx, h, "")
		Expect(v.lastHeader.Get("x-api-key")).To(Equal(apiKey), "the credential did reach the vendor")
		v.answer(http.StatusBadRequest, echoCredential)
		Eventually(readyCondition(ctx, h)).Should(And(
			HaveField("Reason", v1alpha1.ReasonVendorRejected), HaveField("Message", ContainSubstring("[redacted]"))))
		v.answer(http.StatusOK, "<html>"+scriptedToken+"</html>")
		patchObject(ctx, h, func(h *v1alpha1.EmbedTokenRequest) {
			h.Spec.Lifetime = &metav1.Duration{Duration: 2 * time.Minute} // a spec change retries at once, despite the backoff
		})
		Eventually(readyCondition(ctx, h)).Should(HaveField("Reason", v1alpha1.ReasonInvalidResponse))

		By("collecting what the operator wrote outside the Secrets")
		secrets := []string{apiKey, scriptedToken}
		for _, c := range f.sim.Calls() {
			if c.Token != "" {
				secrets = append(secrets, c.Token)
			}
		}
		Expect(len(secrets)).To(BeNumerically(">=", 4), "tokens were issued")

		captured := string(logs.Contents())
		Expect(captured).To(ContainSubstring("Issuing token"), "V(1) logs were captured")
		Expect(captured).To(ContainSubstring(provider.Digest(first)), "tokens are logged by digest")
		Expect(leakedIn(captured, secrets)).To(BeEmpty(), "the manager's logs")

		var events eventsv1.EventList
		Expect(k8sClient.List(ctx, &events, client.InNamespace(f.ns))).To(Succeed())
		Expect(events.Items).NotTo(BeEmpty())
		eventsJSON, err := json.Marshal(events.Items)
		Expect(err).NotTo(HaveOccurred())
		Expect(leakedIn(string(eventsJSON), secrets)).To(BeEmpty(), "Events")

		for _, obj := range []client.Object{etr, h, &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "qrvey"}},
			&v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "scripted"}}} {
			objJSON, err := json.Marshal(get(ctx, obj))
			Expect(err).NotTo(HaveOccurred())
			Expect(leakedIn(string(objJSON), secrets)).To(BeEmpty(), "status and conditions of %s", obj.GetName())
		}
	})
})

func ptrInt32(v int32) *int32 { return &v }

var _ = Describe("Namespace isolation", func() {
	It("resolves a request's provider only in its own namespace, whatever the manifest says", func() {
		ctx := context.Background()
		owner := newFixtureWithProvider(ctx) // has a working provider "qrvey"
		other := newFixture(ctx)

		// providerRef has no namespace field: a manifest that sets one is
		// pruned by the API server and cannot reach owner's provider.
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1alpha1.GroupVersion.String(), "kind": "EmbedTokenRequest",
			"metadata": map[string]any{"namespace": other.ns, "name": "borrow"},
			"spec": map[string]any{
				"providerRef": map[string]any{"name": "qrvey", "namespace": owner.ns},
				"qrvey":       map[string]any{"userID": "user-borrow", "appID": "app-1"},
			},
		}}
		Expect(k8sClient.Create(ctx, u)).To(Succeed())
		etr := &v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: other.ns, Name: "borrow"}}
		Eventually(readyCondition(ctx, etr)).Should(And(
			haveReason(metav1.ConditionFalse, v1alpha1.ReasonProviderNotFound),
			HaveField("Message", ContainSubstring("EmbedProvider "+other.ns+"/qrvey not found"))))
		settle(ctx, etr)
		Expect(owner.sim.CallCount()).To(BeZero())
	})

	It("never lets a ClusterEmbedProvider be used from a namespace its selector does not admit, even after the request is created", func() {
		ctx := context.Background()
		f := newFixtureWithProvider(ctx)
		cp := createClusterProvider(ctx, "iso-"+f.ns, f.clusterSpec(),
			&metav1.LabelSelector{MatchLabels: map[string]string{"embed-iso": f.ns}})

		tenant := newFixture(ctx)
		etr := tenant.request("shared", time.Hour)
		etr.Spec.ProviderRef = v1alpha1.ProviderRef{Kind: "ClusterEmbedProvider", Name: cp.Name}
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		Eventually(readyCondition(ctx, etr)).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonNamespaceNotAllowed))
		settle(ctx, etr)
		Expect(f.sim.CallCount()).To(BeZero())

		By("admitting the namespace by label heals the request without touching it")
		tenant.labelNamespace(ctx, map[string]string{"embed-iso": f.ns})
		patchObject(ctx, etr, func(etr *v1alpha1.EmbedTokenRequest) {
			etr.Annotations = map[string]string{v1alpha1.RefreshAnnotation: "admitted"}
		})
		waitForToken(ctx, etr, "")

		By("and removing the label stops further issuing while the token is kept")
		ns := &corev1.Namespace{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: tenant.ns}, ns)).To(Succeed())
		delete(ns.Labels, "embed-iso")
		Expect(k8sClient.Update(ctx, ns)).To(Succeed())
		patchObject(ctx, etr, func(etr *v1alpha1.EmbedTokenRequest) { etr.Annotations[v1alpha1.RefreshAnnotation] = "revoked" })
		Eventually(readyCondition(ctx, etr)).Should(HaveField("Reason", v1alpha1.ReasonNamespaceNotAllowed))
		settle(ctx, etr)
		Expect(f.sim.CallCount()).To(Equal(1))
	})
})

var _ = Describe("TLS to vendors", func() {
	// newTLSVendor is a scripted vendor behind a self-signed certificate.
	newTLSVendor := func(body string) (*httptest.Server, []byte) {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, body)
		}))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
		srv.StartTLS()
		DeferCleanup(srv.Close)
		return srv, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	}

	It("refuses an untrusted certificate with a clear reason and trusts it once caBundleSecretRef names its CA", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		f.createCredentials(ctx)
		srv, caPEM := newTLSVendor(tokenBody("tls-token", time.Now().Add(time.Hour)))
		Expect(srv.URL).To(HavePrefix("https://"))
		f.createNamedProvider(ctx, "tls", httpProviderSpec(srv.URL))
		etr := f.httpRequest("tls", "tls", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())

		Eventually(readyCondition(ctx, etr)).Should(And(
			haveReason(metav1.ConditionFalse, v1alpha1.ReasonVendorUnavailable),
			HaveField("Message", ContainSubstring("TLS certificate is not trusted")),
			HaveField("Message", ContainSubstring("caBundleSecretRef"))))
		Expect(managedSecrets(ctx, Default, f.ns)).To(BeEmpty())

		f.createSecret(ctx, "vendor-ca", map[string][]byte{"ca.crt": caPEM})
		patchObject(ctx, &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "tls"}}, func(p *v1alpha1.EmbedProvider) {
			p.Spec.CABundleSecretRef = &v1alpha1.SecretKeySelector{Name: "vendor-ca", Key: "ca.crt"}
		})

		Expect(waitForToken(ctx, etr, "")).To(Equal("tls-token"))
		Expect(readyCondition(ctx, etr)(Default)).To(HaveField("Status", metav1.ConditionTrue))
	})

	It("does not follow a redirect to another host, so the credential never reaches it", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		f.createCredentials(ctx)
		elsewhere := newScriptedVendor(http.StatusOK, tokenBody("stolen", time.Now().Add(time.Hour)))
		origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.srv.URL+"/collect", http.StatusTemporaryRedirect)
		}))
		DeferCleanup(origin.Close)
		// Same IP, another port: another host to the client.
		f.createNamedProvider(ctx, "redirecting", httpProviderSpec(origin.URL))
		etr := f.httpRequest("redirect", "redirecting", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())

		Eventually(readyCondition(ctx, etr)).Should(And(
			haveReason(metav1.ConditionFalse, v1alpha1.ReasonVendorUnavailable),
			HaveField("Message", ContainSubstring("redirect to another host"))))
		settle(ctx, etr)
		Expect(elsewhere.callCount()).To(BeZero())
		Expect(managedSecrets(ctx, Default, f.ns)).To(BeEmpty())
	})
})
