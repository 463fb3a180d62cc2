package controller_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

// domoSampleFile is the documented Domo sample: a generic http provider
// with a client-credentials auth step, and one request.
const domoSampleFile = "embedtokens_v1alpha1_embedprovider_http_domo.yaml"

// loadDomoSample reads the sample's provider and request, with every vendor
// URL pointed at base (keeping its path) and allowInsecureHTTP set, as the
// simulator serves plain HTTP.
func loadDomoSample(base string) (*v1alpha1.EmbedProvider, *v1alpha1.EmbedTokenRequest) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", domoSampleFile))
	Expect(err).NotTo(HaveOccurred())
	prov, etr := &v1alpha1.EmbedProvider{}, &v1alpha1.EmbedTokenRequest{}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		}
		Expect(err).NotTo(HaveOccurred())
		js, err := yaml.Marshal(doc)
		Expect(err).NotTo(HaveOccurred())
		var dst client.Object = prov
		if doc["kind"] == "EmbedTokenRequest" {
			dst = etr
		}
		Expect(yaml.Unmarshal(js, dst)).To(Succeed())
	}
	rebase := func(raw string) string {
		u, err := url.Parse(raw)
		Expect(err).NotTo(HaveOccurred())
		b, err := url.Parse(base)
		Expect(err).NotTo(HaveOccurred())
		u.Scheme, u.Host = b.Scheme, b.Host
		return u.String()
	}
	Expect(prov.Spec.HTTP).NotTo(BeNil())
	Expect(prov.Spec.HTTP.Auth).NotTo(BeNil())
	prov.Spec.HTTP.URL = rebase(prov.Spec.HTTP.URL)
	cc := prov.Spec.HTTP.Auth.ClientCredentials
	cc.TokenURL = rebase(cc.TokenURL)
	prov.Spec.AllowInsecureHTTP = true
	return prov, etr
}

var _ = Describe("Chained http flows", func() {
	It("issues ten Domo embed tokens with one access token, as the sample documents", func() {
		ctx := context.Background()
		ns := "chain-" + rand.String(6)
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		const secret = "d0mo-client-s3cret"

		By("the sample, pointed at a simulator that accepts only its client")
		probe, _ := loadDomoSample("http://127.0.0.1")
		cc := probe.Spec.HTTP.Auth.ClientCredentials
		sim := vendorsim.New(vendorsim.Options{DomoClientID: cc.ClientID, DomoClientSecret: secret})
		Expect(sim.Start()).To(Succeed())
		DeferCleanup(sim.Close)
		prov, template := loadDomoSample(sim.URL())
		prov.Namespace = ns
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: cc.ClientSecretSecretRef.Name},
			StringData: map[string]string{cc.ClientSecretSecretRef.Key: secret}})).To(Succeed())
		Expect(k8sClient.Create(ctx, prov)).To(Succeed())

		By("ten requests for ten dashboards")
		var requests []*v1alpha1.EmbedTokenRequest
		for i := range 10 {
			etr := template.DeepCopy()
			etr.Namespace, etr.Name = ns, fmt.Sprintf("dashboard-%d", i)
			etr.Spec.HTTP.Variables["embedID"] = fmt.Sprintf("E%04d", i)
			Expect(k8sClient.Create(ctx, etr)).To(Succeed())
			requests = append(requests, etr)
		}
		for _, etr := range requests {
			Eventually(func(g Gomega) {
				tok := harness.TokenOf(secretOf(ctx, etr)(g))
				g.Expect(sim.Validate(tok.Value)).To(Equal(vendorsim.ValidityValid))
			}).Should(Succeed())
		}

		By("one access token served all ten")
		count := func() (auth, embed int) {
			for _, c := range sim.Calls() {
				switch c.Path {
				case vendorsim.DomoTokenPath:
					auth++
				case vendorsim.DomoEmbedAuthPath:
					embed++
				}
			}
			return auth, embed
		}
		for _, etr := range requests {
			settle(ctx, etr)
		}
		auth, embed := count()
		Expect(auth).To(Equal(1), "access token calls")
		Expect(embed).To(Equal(10), "embed calls")

		By("in Domo's wire format")
		ids := map[string]bool{}
		for _, c := range sim.Calls() {
			switch c.Path {
			case vendorsim.DomoTokenPath:
				Expect(c.Body).To(Equal(map[string]any{"grant_type": "client_credentials", "scope": "data audit user dashboard"}))
			case vendorsim.DomoEmbedAuthPath:
				Expect(c.Status).To(Equal(200))
				Expect(c.Body).To(HaveKeyWithValue("sessionLength", 60.0))
				auths, _ := c.Body["authorizations"].([]any)
				Expect(auths).To(HaveLen(1))
				a, _ := auths[0].(map[string]any)
				Expect(a).To(HaveKeyWithValue("permissions", []any{"READ", "FILTER", "EXPORT"}))
				Expect(a).To(HaveKeyWithValue("filters", []any{map[string]any{"column": "Region", "operator": "IN", "values": []any{"EU"}}}))
				id, _ := a["token"].(string)
				ids[id] = true
			}
		}
		Expect(ids).To(HaveLen(10))

		By("the provider is Ready and no status or event holds the access token")
		Eventually(func(g Gomega) {
			cur := &v1alpha1.EmbedProvider{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(prov), cur)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())
		}).Should(Succeed())
		var access string
		for _, c := range sim.Calls() {
			if c.Path == vendorsim.DomoTokenPath {
				access = c.Token
			}
		}
		Expect(access).NotTo(BeEmpty())
		for _, etr := range requests {
			got := get(ctx, etr.DeepCopy()).(*v1alpha1.EmbedTokenRequest)
			dump, err := yaml.Marshal(got.Status)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(dump)).NotTo(ContainSubstring(access))
		}
	})

	clientCredentials := func() *v1alpha1.HTTPAuthClientCredentials {
		return &v1alpha1.HTTPAuthClientCredentials{TokenURL: "https://api.example.com/oauth/token", ClientID: "c",
			ClientSecretSecretRef: v1alpha1.SecretKeySelector{Name: "creds", Key: "secret", Namespace: "platform"}}
	}
	chained := func(mutate func(*v1alpha1.HTTPProvider)) v1alpha1.EmbedProviderSpec {
		h := &v1alpha1.HTTPProvider{URL: "https://api.example.com/embed", TokenPath: ".token", ExpiresInPath: ".expires_in",
			Auth: &v1alpha1.HTTPAuth{ClientCredentials: clientCredentials(), Header: &v1alpha1.HTTPAuthHeader{Prefix: "Bearer "}}}
		mutate(h)
		return v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{HTTP: h}}
	}
	createCluster := func(spec v1alpha1.EmbedProviderSpec) error {
		return k8sClient.Create(context.Background(), &v1alpha1.ClusterEmbedProvider{
			ObjectMeta: metav1.ObjectMeta{Name: "chain-" + rand.String(6)},
			Spec:       v1alpha1.ClusterEmbedProviderSpec{EmbedProviderSpec: spec}}, client.DryRunAll)
	}

	DescribeTable("admission checks the auth step",
		func(spec v1alpha1.EmbedProviderSpec, message string) {
			err := createCluster(spec)
			if message == "" {
				Expect(err).NotTo(HaveOccurred())
				return
			}
			Expect(err).To(MatchError(ContainSubstring(message)))
		},
		Entry("accepts client credentials", chained(func(*v1alpha1.HTTPProvider) {}), ""),
		Entry("accepts a login", chained(func(h *v1alpha1.HTTPProvider) {
			h.Auth.ClientCredentials = nil
			h.Auth.Login = &v1alpha1.HTTPAuthLogin{URL: "https://api.example.com/login", TokenPath: ".token",
				Headers: []v1alpha1.HTTPHeader{{Name: "X-Key", ValueFrom: &v1alpha1.HTTPHeaderSource{
					SecretKeyRef: v1alpha1.SecretKeySelector{Name: "creds", Key: "k", Namespace: "platform"}}}}}
		}), ""),
		Entry("refuses both steps", chained(func(h *v1alpha1.HTTPProvider) {
			h.Auth.Login = &v1alpha1.HTTPAuthLogin{URL: "https://api.example.com/login", TokenPath: ".token"}
		}), "exactly one of clientCredentials and login must be set"),
		Entry("refuses an http:// token URL", chained(func(h *v1alpha1.HTTPProvider) {
			h.Auth.ClientCredentials.TokenURL = "http://api.example.com/oauth/token"
		}), "vendor URLs must use https:// unless allowInsecureHTTP is true"),
		Entry("refuses an http:// login URL", chained(func(h *v1alpha1.HTTPProvider) {
			h.Auth.ClientCredentials = nil
			h.Auth.Login = &v1alpha1.HTTPAuthLogin{URL: "http://api.example.com/login", TokenPath: ".token"}
		}), "vendor URLs must use https:// unless allowInsecureHTTP is true"),
		Entry("refuses a client secret without namespace", chained(func(h *v1alpha1.HTTPProvider) {
			h.Auth.ClientCredentials.ClientSecretSecretRef.Namespace = ""
		}), "every Secret reference of a ClusterEmbedProvider must set namespace"),
		Entry("refuses a login header Secret without namespace", chained(func(h *v1alpha1.HTTPProvider) {
			h.Auth.ClientCredentials = nil
			h.Auth.Login = &v1alpha1.HTTPAuthLogin{URL: "https://api.example.com/login", TokenPath: ".token",
				Headers: []v1alpha1.HTTPHeader{{Name: "X-Key", ValueFrom: &v1alpha1.HTTPHeaderSource{
					SecretKeyRef: v1alpha1.SecretKeySelector{Name: "creds", Key: "k"}}}}}
		}), "every Secret reference of a ClusterEmbedProvider must set namespace"),
		Entry("refuses GET with the secret in the body", chained(func(h *v1alpha1.HTTPProvider) {
			h.Auth.ClientCredentials.Method, h.Auth.ClientCredentials.ClientAuthMethod = "GET", "client_secret_post"
		}), "method GET sends the parameters in the URL"),
		Entry("refuses expiry.fromJWT false", chained(func(h *v1alpha1.HTTPProvider) {
			h.Auth.ClientCredentials.Expiry = &v1alpha1.ExpiryFallback{FromJWT: ptr.To(false)}
		}), "expiry.fromJWT false is not supported"),
	)

	DescribeTable("admission checks the oauth2 expiry fallback",
		func(expiry *v1alpha1.ExpiryFallback, message string) {
			cc := clientCredentials()
			err := createCluster(v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{OAuth2: &v1alpha1.OAuth2Provider{
				TokenURL: cc.TokenURL, ClientID: cc.ClientID, ClientSecretSecretRef: &cc.ClientSecretSecretRef, Expiry: expiry}}})
			if message == "" {
				Expect(err).NotTo(HaveOccurred())
				return
			}
			Expect(err).To(MatchError(ContainSubstring(message)))
		},
		Entry("accepts a duration", &v1alpha1.ExpiryFallback{Duration: &metav1.Duration{Duration: time.Hour}}, ""),
		Entry("accepts fromJWT true", &v1alpha1.ExpiryFallback{FromJWT: ptr.To(true)}, ""),
		Entry("refuses fromJWT false", &v1alpha1.ExpiryFallback{FromJWT: ptr.To(false)}, "expiry.fromJWT false is not supported"),
		Entry("refuses both", &v1alpha1.ExpiryFallback{FromJWT: ptr.To(true), Duration: &metav1.Duration{Duration: time.Hour}},
			"exactly one of fromJWT and duration must be set"),
	)
})
