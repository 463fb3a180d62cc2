package servingcert_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/servingcert"
)

var _ = Describe("The token endpoint's TLS material", func() {
	It("is one CA that two replicas racing to create it agree on", func(ctx SpecContext) {
		name := "race-" + rand.String(5)
		opts := servingcert.RotatorOptions{Namespace: operatorNamespace, SecretName: name,
			DNSNames: servingcert.DNSNames(serviceName, operatorNamespace), IPs: servingcert.IPAddresses()}
		replicas := make([]*servingcert.Rotator, 2)
		for i := range replicas {
			r, err := servingcert.NewRotator(newClient(), opts)
			Expect(err).NotTo(HaveOccurred())
			replicas[i] = r
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make([]error, len(replicas))
		for i, r := range replicas {
			wg.Go(func() {
				<-start
				_, errs[i] = r.Ensure(ctx)
			})
		}
		close(start)
		wg.Wait()
		Expect(errs).To(HaveEach(Not(HaveOccurred())))

		secret := readSecret(ctx, name)
		Expect(certificates(secret.Data[servingcert.CABundleKey])).To(HaveLen(1), "one CA published")
		Expect(secret.Labels).To(HaveKeyWithValue(v1alpha1.ManagedByLabel, v1alpha1.ManagedByValue))
		Expect(secret.Type).To(Equal(corev1.SecretTypeOpaque))
		for _, r := range replicas {
			_, err := r.Ensure(ctx)
			Expect(err).NotTo(HaveOccurred())
		}
		Expect(readSecret(ctx, name).ResourceVersion).To(Equal(secret.ResourceVersion),
			"each replica found the winner's material complete and wrote nothing")
		verify(secret.Data[servingcert.TLSCertKey], secret.Data[servingcert.CABundleKey], time.Now())
	})

	It("keeps the old CA published beside the new one while the new one takes over", func(ctx SpecContext) {
		name := "rotate-" + rand.String(5)
		day := 24 * time.Hour
		clk := clocktesting.NewFakeClock(time.Now())
		r, err := servingcert.NewRotator(newClient(), servingcert.RotatorOptions{Namespace: operatorNamespace, SecretName: name,
			DNSNames: servingcert.DNSNames(serviceName, operatorNamespace), IPs: servingcert.IPAddresses(),
			CALifetime: 365 * day, ServingLifetime: 90 * day, CAOverlap: day, Clock: clk})
		Expect(err).NotTo(HaveOccurred())
		ensure := func() *corev1.Secret {
			_, err := r.Ensure(ctx)
			Expect(err).NotTo(HaveOccurred())
			return readSecret(ctx, name)
		}

		first := ensure()
		oldCA := first.Data[servingcert.SignerCertKey]
		Expect(certificates(first.Data[servingcert.CABundleKey])).To(HaveLen(1))

		By("two thirds into the CA's life a successor is published, and the old CA still signs")
		clk.Step(250 * day)
		overlap := ensure()
		Expect(certificates(overlap.Data[servingcert.CABundleKey])).To(HaveLen(2))
		Expect(overlap.Data[servingcert.SignerCertKey]).To(Equal(oldCA))
		newCA := overlap.Data[servingcert.NextCertKey]
		Expect(newCA).NotTo(BeEmpty())
		verify(overlap.Data[servingcert.TLSCertKey], oldCA, clk.Now())

		By("after the overlap the successor signs, and the old CA stays in the bundle")
		clk.Step(day + time.Minute)
		promoted := ensure()
		Expect(promoted.Data[servingcert.SignerCertKey]).To(Equal(newCA))
		Expect(certificates(promoted.Data[servingcert.CABundleKey])).To(HaveLen(2))
		verify(promoted.Data[servingcert.TLSCertKey], newCA, clk.Now())
		verify(promoted.Data[servingcert.TLSCertKey], promoted.Data[servingcert.CABundleKey], clk.Now())

		By("once the old CA expires it leaves the bundle")
		clk.Step(120 * day)
		pruned := ensure()
		Expect(certificates(pruned.Data[servingcert.CABundleKey])).To(HaveLen(1))
		Expect(pruned.Data[servingcert.CABundleKey]).To(Equal(newCA))
	})
})

var _ = Describe("The published CA bundle", func() {
	It("appears with a namespace's first template and goes with its last", func(ctx SpecContext) {
		ns := createNamespace(ctx, "publish-"+rand.String(5))
		a, b := createTemplate(ctx, ns, "a"), createTemplate(ctx, ns, "b")
		Eventually(func(g Gomega) {
			cm := &corev1.ConfigMap{}
			g.Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: servingcert.ConfigMapName}, cm)).To(Succeed())
			g.Expect(cm.Labels).To(HaveKeyWithValue(v1alpha1.ManagedByLabel, v1alpha1.ManagedByValue))
			g.Expect(cm.Data).To(HaveKeyWithValue(servingcert.ConfigMapKey, string(certs.CABundle())))
		}).Should(Succeed())

		key := types.NamespacedName{Namespace: ns, Name: servingcert.ConfigMapName}
		first := &corev1.ConfigMap{}
		Expect(k8sClient.Get(ctx, key, first)).To(Succeed())

		By("with one template left the bundle stays: deleted by hand, it comes back")
		Expect(k8sClient.Delete(ctx, a)).To(Succeed())
		Expect(k8sClient.Delete(ctx, first)).To(Succeed())
		Eventually(func(g Gomega) {
			again := &corev1.ConfigMap{}
			g.Expect(k8sClient.Get(ctx, key, again)).To(Succeed())
			g.Expect(again.UID).NotTo(Equal(first.UID))
		}).Should(Succeed())

		By("with the last template gone, so is the bundle")
		Expect(k8sClient.Delete(ctx, b)).To(Succeed())
		Eventually(func() error {
			return k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: servingcert.ConfigMapName}, &corev1.ConfigMap{})
		}).Should(Satisfy(apierrors.IsNotFound))
	})

	It("follows the CA bundle when the Secret changes", func(ctx SpecContext) {
		ns := createNamespace(ctx, "follow-"+rand.String(5))
		createTemplate(ctx, ns, "a")
		key := types.NamespacedName{Namespace: ns, Name: servingcert.ConfigMapName}
		Eventually(func() error { return k8sClient.Get(ctx, key, &corev1.ConfigMap{}) }).Should(Succeed())
		before := certs.CABundle()

		By("a Secret edited by hand to lose its CA is repaired by a replica, and the new bundle published")
		secret := readSecret(ctx, secretName)
		delete(secret.Data, servingcert.SignerKeyKey)
		Expect(k8sClient.Update(ctx, secret)).To(Succeed())
		r, err := servingcert.NewRotator(newClient(), servingcert.RotatorOptions{Namespace: operatorNamespace,
			SecretName: secretName, DNSNames: servingcert.DNSNames(serviceName, operatorNamespace), IPs: servingcert.IPAddresses()})
		Expect(err).NotTo(HaveOccurred())
		_, err = r.Ensure(ctx)
		Expect(err).NotTo(HaveOccurred())
		repaired := readSecret(ctx, secretName).Data[servingcert.CABundleKey]
		Expect(repaired).NotTo(Equal(before))
		Eventually(func(g Gomega) {
			cm := &corev1.ConfigMap{}
			g.Expect(k8sClient.Get(ctx, key, cm)).To(Succeed())
			g.Expect(cm.Data[servingcert.ConfigMapKey]).To(Equal(string(repaired)))
		}).Should(Succeed())
	})

	It("never overwrites a ConfigMap of that name the operator did not create", func(ctx SpecContext) {
		ns := createNamespace(ctx, "conflict-"+rand.String(5))
		theirs := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: servingcert.ConfigMapName},
			Data: map[string]string{servingcert.ConfigMapKey: "theirs"}}
		Expect(k8sClient.Create(ctx, theirs)).To(Succeed())
		tmpl := createTemplate(ctx, ns, "a")
		Eventually(func(g Gomega) {
			var list eventsv1.EventList
			g.Expect(k8sClient.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
			g.Expect(list.Items).To(ContainElement(And(
				HaveField("Reason", servingcert.ReasonConfigMapConflict),
				HaveField("Type", corev1.EventTypeWarning),
				HaveField("Regarding.UID", tmpl.UID))))
		}).Should(Succeed())
		// The Event is recorded after the publisher decided not to write.
		now := &corev1.ConfigMap{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(theirs), now)).To(Succeed())
		Expect(now.ResourceVersion).To(Equal(theirs.ResourceVersion))
		Expect(now.Data).To(Equal(map[string]string{servingcert.ConfigMapKey: "theirs"}))
	})

	It("is all a TLS client needs to reach the endpoint on 127.0.0.1 and localhost", func(ctx SpecContext) {
		ns := createNamespace(ctx, "client-"+rand.String(5))
		createTemplate(ctx, ns, "a")
		cm := &corev1.ConfigMap{}
		Eventually(func() error {
			return k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: servingcert.ConfigMapName}, cm)
		}).Should(Succeed())
		pool := x509.NewCertPool()
		Expect(pool.AppendCertsFromPEM([]byte(cm.Data[servingcert.ConfigMapKey]))).To(BeTrue())
		httpClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
		addr := server.Addr(ctx)
		Expect(addr).NotTo(BeNil())
		port := addr.String()[strings.LastIndex(addr.String(), ":"):]
		for _, host := range []string{"127.0.0.1", "localhost"} {
			resp, err := httpClient.Post("https://"+host+port+"/apis/embedtokens.io/v1alpha1/namespaces/"+ns+
				"/embedtokentemplates/a/token", "application/json", strings.NewReader("{}"))
			Expect(err).NotTo(HaveOccurred(), host)
			var body struct{ Reason string }
			Expect(json.NewDecoder(resp.Body).Decode(&body)).To(Succeed())
			Expect(resp.Body.Close()).To(Succeed())
			Expect(resp.StatusCode).To(Equal(http.StatusServiceUnavailable))
			Expect(body.Reason).To(Equal("NotImplemented"))
		}
	})
})

func createNamespace(ctx context.Context, name string) string {
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	return name
}

func createTemplate(ctx context.Context, ns, name string) *v1alpha1.EmbedTokenTemplate {
	t := &v1alpha1.EmbedTokenTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.EmbedTokenTemplateSpec{
			ProviderRef:  v1alpha1.ProviderRef{Name: "qrvey"},
			VendorParams: v1alpha1.VendorParams{Qrvey: &v1alpha1.QrveyParams{UserID: "placeholder", AppID: "app"}},
		},
	}
	Expect(k8sClient.Create(ctx, t)).To(Succeed())
	return t
}

func readSecret(ctx context.Context, name string) *corev1.Secret {
	s := &corev1.Secret{}
	Expect(k8sClient.Get(ctx, types.NamespacedName{Namespace: operatorNamespace, Name: name}, s)).To(Succeed())
	return s
}

func certificates(bundle []byte) []*x509.Certificate {
	c, err := servingcert.ParseCertificates(bundle)
	Expect(err).NotTo(HaveOccurred())
	return c
}

// verify checks that the serving certificate chains to one of roots at now,
// for the Service's name and for loopback.
func verify(servingPEM, roots []byte, now time.Time) {
	GinkgoHelper()
	pool := x509.NewCertPool()
	Expect(pool.AppendCertsFromPEM(roots)).To(BeTrue())
	leaf := certificates(servingPEM)[0]
	for _, name := range []string{serviceName + "." + operatorNamespace + ".svc", "127.0.0.1"} {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, CurrentTime: now})
		Expect(err).NotTo(HaveOccurred(), name)
	}
}
