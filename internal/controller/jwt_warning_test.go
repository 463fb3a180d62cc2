package controller_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

var _ = Describe("JWT HMAC key warning", func() {
	It("keeps a provider whose HMAC key ends in a newline Ready, warns without the key, and clears the warning once the key is fixed", func() {
		ctx := context.Background()
		ns := "jw-" + rand.String(6)
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		// The key shares no 8-byte beginning with the Secret's name, which
		// the message names: redaction removes any such beginning.
		const key = "hmac-secret-value-7f3c9a"
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tableau-connected-app"},
			Data: map[string][]byte{"secretValue": []byte(key + "\n")}}
		Expect(k8sClient.Create(ctx, secret)).To(Succeed())
		prov := &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tableau"},
			Spec: v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{JWT: &v1alpha1.JWTProvider{
				Algorithm: "HS256", SigningKeySecretRef: v1alpha1.SecretKeySelector{Name: secret.Name, Key: "secretValue"}}}}}
		Expect(k8sClient.Create(ctx, prov)).To(Succeed())

		ready := func(g Gomega) metav1.Condition {
			p := &v1alpha1.EmbedProvider{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(prov), p)).To(Succeed())
			c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
			g.Expect(c).NotTo(BeNil())
			return *c
		}
		Eventually(ready).Should(And(
			HaveField("Status", metav1.ConditionTrue), HaveField("Reason", v1alpha1.ReasonValid),
			HaveField("Message", Equal("The configuration is valid and its credentials resolve; warning: the HMAC key in Secret "+
				"tableau-connected-app, key secretValue, ends in whitespace (a trailing newline?), which is used as part of the key; "+
				"recreate the Secret without it (e.g. --from-literal) unless it is meant")),
			HaveField("Message", Not(ContainSubstring(key)))))

		By("fixing the Secret, the warning goes at the next credential check")
		secret.Data["secretValue"] = []byte(key)
		Expect(k8sClient.Update(ctx, secret)).To(Succeed())
		Eventually(ready).Should(And(HaveField("Status", metav1.ConditionTrue),
			HaveField("Message", Equal("The configuration is valid and its credentials resolve"))))
	})
})
