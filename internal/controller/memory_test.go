package controller_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/refresh"
)

// refuseSecretWrites installs, for the current spec, a
// ValidatingAdmissionPolicy that denies every Secret create and update in
// namespace ns, as a platform's policy or webhook might, and waits until
// the API server enforces it.
func refuseSecretWrites(ctx context.Context, ns string) {
	name := "refuse-secrets-" + ns
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"secrets"}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{Expression: "false", Message: "Secrets in this namespace are refused by policy"}},
		}}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{corev1.LabelMetadataName: ns}}}}}
	Expect(k8sClient.Create(ctx, policy)).To(Succeed())
	DeferCleanup(func() { Expect(k8sClient.Delete(ctx, policy)).To(Succeed()) })
	Expect(k8sClient.Create(ctx, binding)).To(Succeed())
	DeferCleanup(func() { Expect(k8sClient.Delete(ctx, binding)).To(Succeed()) })
	// The API server picks the policy up from its informers: a probe
	// Secret is the barrier.
	Eventually(func() error {
		probe := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "probe-"}}
		return k8sClient.Create(ctx, probe)
	}).Should(MatchError(ContainSubstring("refused by policy")), "the policy is enforced")
}

// caBundlePEM is n copies of a new self-signed CA certificate, PEM-encoded.
func caBundlePEM(n int) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "private CA"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	Expect(err).NotTo(HaveOccurred())
	return bytes.Repeat(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), n)
}

var _ = Describe("Memory a tenant's objects can take", func() {
	It("keeps no token the API server refused to store, stalls, and asks the vendor again only after the slowest backoff", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		f.createCredentials(ctx)
		token := "large-" + strings.Repeat("0123456789abcdef", 4000) // 64,000 bytes, just within provider.MaxTokenBytes
		v := newScriptedVendor(http.StatusOK, tokenBody(token, time.Now().Add(time.Hour)))
		f.createNamedProvider(ctx, "large", httpProviderSpec(v.srv.URL))
		refuseSecretWrites(ctx, f.ns)

		etr := f.httpRequest("refused", "large", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		Eventually(readyCondition(ctx, etr)).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonSecretWriteRefused))

		cur := get(ctx, etr).(*v1alpha1.EmbedTokenRequest)
		stalled := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionStalled)
		Expect(stalled).NotTo(BeNil())
		Expect(stalled.Reason).To(Equal(v1alpha1.ReasonSecretWriteRefused))
		Expect(stalled.Message).To(And(ContainSubstring("the API server refused to store the token in Secret refused ("),
			ContainSubstring("Secrets in this namespace are refused by policy"), ContainSubstring("the token was discarded")))
		Expect(stalled.Message).NotTo(ContainSubstring(token[:16]), "no part of the token is in the status")
		Expect(v.callCount()).To(Equal(1))
		Expect(cur.Status.RenewAt.Sub(cur.Status.LastFailureTime.Time)).To(BeNumerically(">=", refresh.MaxBackoff*3/4),
			"the next vendor call waits for the slowest backoff")
		Expect(seriesWith(Default, "embedtoken_held_token_bytes", map[string]string{"namespace": f.ns})).To(BeEmpty(),
			"the refused token is not held in memory")
	})

	It("refuses a CA bundle over the bounds without parsing it, and says which bound", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		f.createCredentials(ctx)
		f.createSecret(ctx, "ca", map[string][]byte{"ca.crt": caBundlePEM(provider.MaxCABundleCertificates + 1)})
		v := newScriptedVendor(http.StatusOK, tokenBody("unused", time.Now().Add(time.Hour)))
		spec := httpProviderSpec(v.srv.URL)
		spec.CABundleSecretRef = &v1alpha1.SecretKeySelector{Name: "ca", Key: "ca.crt"}
		f.createNamedProvider(ctx, "oversize", spec)
		etr := f.httpRequest("oversize", "oversize", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())

		message := fmt.Sprintf("CA bundle holds %d certificates, more than the %d accepted",
			provider.MaxCABundleCertificates+1, provider.MaxCABundleCertificates)
		Eventually(func(g Gomega) {
			p := get(ctx, &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "oversize"}}).(*v1alpha1.EmbedProvider)
			ready := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(*ready).To(And(haveReason(metav1.ConditionFalse, v1alpha1.ReasonInvalidCredentials), HaveField("Message", ContainSubstring(message))))
		}).Should(Succeed())
		Eventually(readyCondition(ctx, etr)).Should(And(haveReason(metav1.ConditionFalse, v1alpha1.ReasonInvalidCredentials),
			HaveField("Message", ContainSubstring(message))))
		Expect(v.callCount()).To(BeZero(), "no vendor call is made without a client")
	})

	It("shares one parsed CA bundle among providers that trust the same one, and keeps nothing of deleted providers", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		f.createCredentials(ctx)
		opts := operatorOptions()
		opts.WatchNamespaces = []string{f.ns}
		reg := opts.MetricsRegisterer.(*prometheus.Registry)
		stopMgr()
		DeferCleanup(func() { stopMgr = startManager() })
		DeferCleanup(startOperator(cfg, logr.Logger{}, 0, opts))
		kept := func(name string) func(g Gomega) float64 {
			return func(g Gomega) float64 {
				series := seriesIn(g, reg, name, nil)
				g.Expect(series).To(HaveLen(1))
				return value(series[0])
			}
		}

		f.createSecret(ctx, "ca", map[string][]byte{"ca.crt": caBundlePEM(1)})
		v := newScriptedVendor(http.StatusOK, tokenBody("shared-ca-token", time.Now().Add(time.Hour)))
		const n = 3
		var requests []*v1alpha1.EmbedTokenRequest
		var providers []*v1alpha1.EmbedProvider
		for i := range n {
			spec := httpProviderSpec(v.srv.URL)
			spec.CABundleSecretRef = &v1alpha1.SecretKeySelector{Name: "ca", Key: "ca.crt"}
			p := &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: fmt.Sprintf("p%d", i)}, Spec: spec}
			Expect(k8sClient.Create(ctx, p)).To(Succeed())
			providers = append(providers, p)
			etr := f.httpRequest(fmt.Sprintf("r%d", i), p.Name, time.Hour)
			Expect(k8sClient.Create(ctx, etr)).To(Succeed())
			requests = append(requests, etr)
		}
		for _, etr := range requests {
			waitForToken(ctx, etr, "")
		}
		Expect(kept("embedtoken_vendor_http_clients")(Default)).To(BeEquivalentTo(n), "one client per provider")
		Expect(kept("embedtoken_ca_bundles")(Default)).To(BeEquivalentTo(1), "one parsed bundle for them all")

		for i := range n {
			Expect(k8sClient.Delete(ctx, requests[i])).To(Succeed())
			Expect(k8sClient.Delete(ctx, providers[i])).To(Succeed())
		}
		Eventually(kept("embedtoken_vendor_http_clients")).Should(BeZero(), "no client is kept for a deleted provider")
		Expect(kept("embedtoken_ca_bundles")(Default)).To(BeZero(), "the bundle goes with its last provider")
	})
})
