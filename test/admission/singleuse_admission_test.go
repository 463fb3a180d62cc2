package admission_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/rand"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// These specs apply the single-use vendors' manifests (Looker signed embed
// URLs, Sigma embed JWTs, Tableau through jwt singleUse) to the real API
// server: the samples are admitted, and what the vendors would refuse is
// refused with a message that says why.
var _ = Describe("Admission validation of the single-use vendors", func() {
	var ns string
	ctx := context.Background()
	BeforeEach(func() {
		ns = "su-" + rand.String(6)
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	})

	It("accepts the Looker, Sigma and Tableau samples", func() {
		for _, file := range []string{"embedtokens_v1alpha1_embedprovider_looker.yaml", "embedtokens_v1alpha1_embedprovider_sigma.yaml",
			"embedtokens_v1alpha1_embedprovider_jwt.yaml"} {
			raw, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", file))
			Expect(err).NotTo(HaveOccurred())
			dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
			for {
				obj := &unstructured.Unstructured{}
				if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
					break
				} else {
					Expect(err).NotTo(HaveOccurred(), file)
				}
				obj.SetNamespace(ns)
				Expect(k8sClient.Create(ctx, obj)).To(Succeed(), file+": "+obj.GetKind())
			}
		}
	})

	lookerProvider := func(url string) *v1alpha1.EmbedProvider {
		return &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "looker"},
			Spec: v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{Looker: &v1alpha1.LookerProvider{
				URL: url, EmbedSecretSecretRef: v1alpha1.SecretKeySelector{Name: "looker", Key: "secret"}}}}}
	}
	DescribeTable("refuses a malformed provider",
		func(obj func() *v1alpha1.EmbedProvider, message string) {
			err := k8sClient.Create(ctx, obj())
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry("a Looker URL with a path: its host alone is signed", func() *v1alpha1.EmbedProvider {
			return lookerProvider("https://acme.cloud.looker.com/login")
		}, "url must be an absolute http(s) URL with no path"),
		Entry("a Looker URL over http without allowInsecureHTTP", func() *v1alpha1.EmbedProvider {
			return lookerProvider("http://acme.cloud.looker.com")
		}, "vendor URLs must use https://"),
		Entry("two vendor blocks", func() *v1alpha1.EmbedProvider {
			p := lookerProvider("https://acme.cloud.looker.com")
			p.Spec.Sigma = &v1alpha1.SigmaProvider{ClientID: "c", SecretSecretRef: v1alpha1.SecretKeySelector{Name: "s", Key: "k"}}
			return p
		}, "exactly one vendor block must be set"),
	)

	It("refuses a ClusterEmbedProvider whose Looker or Sigma secret names no namespace", func() {
		for name, vc := range map[string]v1alpha1.VendorConfig{
			"looker": {Looker: &v1alpha1.LookerProvider{URL: "https://l.example.com", EmbedSecretSecretRef: v1alpha1.SecretKeySelector{Name: "s", Key: "k"}}},
			"sigma":  {Sigma: &v1alpha1.SigmaProvider{ClientID: "c", SecretSecretRef: v1alpha1.SecretKeySelector{Name: "s", Key: "k"}}},
		} {
			err := k8sClient.Create(ctx, &v1alpha1.ClusterEmbedProvider{ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + name},
				Spec: v1alpha1.ClusterEmbedProviderSpec{EmbedProviderSpec: v1alpha1.EmbedProviderSpec{VendorConfig: vc}}})
			Expect(err).To(HaveOccurred(), name)
			Expect(err.Error()).To(ContainSubstring("must set namespace"), name)
		}
	})

	template := func(params v1alpha1.VendorParams, path string) *v1alpha1.EmbedTokenTemplate {
		return &v1alpha1.EmbedTokenTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "t-" + rand.String(5)},
			Spec: v1alpha1.EmbedTokenTemplateSpec{ProviderRef: v1alpha1.ProviderRef{Name: "p"}, VendorParams: params,
				Parameters: []v1alpha1.TemplateParameter{{Name: "user", Path: path}}}}
	}
	looker := func(edit func(*v1alpha1.LookerParams)) v1alpha1.VendorParams {
		p := &v1alpha1.LookerParams{TargetPath: "/embed/dashboards/1", ExternalUserID: "u",
			Permissions: []string{"access_data"}, Models: []string{"m"}}
		if edit != nil {
			edit(p)
		}
		return v1alpha1.VendorParams{Looker: p}
	}
	sigma := func(email string) v1alpha1.VendorParams {
		return v1alpha1.VendorParams{Sigma: &v1alpha1.SigmaParams{Email: email, Teams: []string{"a"}}}
	}

	It("admits parameters for every string of the Looker and Sigma blocks", func() {
		for _, t := range []*v1alpha1.EmbedTokenTemplate{
			template(looker(nil), "looker.externalUserID"),
			template(looker(func(p *v1alpha1.LookerParams) { p.UserAttributes = map[string]string{"tenant": "x"} }), "looker.userAttributes.tenant"),
			template(looker(nil), "looker.permissions[0]"),
			template(looker(func(p *v1alpha1.LookerParams) { p.GroupIDs, p.Permissions = []int64{4}, nil }), "looker.externalGroupID"),
			template(sigma("a@b.c"), "sigma.email"),
			template(sigma("a@b.c"), "sigma.teams[0]"),
			template(sigma("a@b.c"), "sigma.userAttributes.region"),
		} {
			Expect(k8sClient.Create(ctx, t)).To(Succeed(), t.Spec.Parameters[0].Path)
		}
	})

	DescribeTable("refuses malformed Looker and Sigma parameters",
		func(t func() *v1alpha1.EmbedTokenTemplate, message string) {
			err := k8sClient.Create(ctx, t())
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry("a Looker user with neither groups nor permissions and models", func() *v1alpha1.EmbedTokenTemplate {
			return template(looker(func(p *v1alpha1.LookerParams) { p.Models = nil }), "looker.externalUserID")
		}, "set groupIDs, or both permissions and models"),
		Entry("a Looker target outside /embed/", func() *v1alpha1.EmbedTokenTemplate {
			return template(looker(func(p *v1alpha1.LookerParams) { p.TargetPath = "/admin/users" }), "looker.externalUserID")
		}, "targetPath"),
		Entry("a parameter filling Looker's numeric group IDs", func() *v1alpha1.EmbedTokenTemplate {
			return template(looker(func(p *v1alpha1.LookerParams) { p.GroupIDs = []int64{4} }), "looker.groupIDs[0]")
		}, v1alpha1.TemplatePathRuleMessage),
		Entry("a Sigma email that is no address", func() *v1alpha1.EmbedTokenTemplate {
			return template(sigma("alice"), "sigma.email")
		}, "email"),
		Entry("too many Looker user attributes", func() *v1alpha1.EmbedTokenTemplate {
			attrs := map[string]string{}
			for range 33 {
				attrs[rand.String(8)] = "v"
			}
			return template(looker(func(p *v1alpha1.LookerParams) { p.UserAttributes = attrs }), "looker.externalUserID")
		}, "userAttributes"),
	)
})
