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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/rand"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// These specs apply QuickSight providers and templates to the real API
// server: admission accepts the documented shapes and refuses what
// QuickSight or the operator cannot use.
var _ = Describe("Admission validation of QuickSight", func() {
	var ns string
	BeforeEach(func() {
		ns = "vqs-" + rand.String(6)
		Expect(k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	})

	It("accepts the QuickSight samples", func() {
		ctx := context.Background()
		for _, file := range []string{"embedtokens_v1alpha1_embedprovider_quicksight.yaml", "embedtokens_v1alpha1_clusterembedprovider_quicksight_irsa.yaml"} {
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
				if obj.GetKind() == "ClusterEmbedProvider" {
					obj.SetName(ns + "-" + obj.GetName())
					DeferCleanup(func() { Expect(k8sClient.Delete(ctx, obj)).To(Succeed()) })
				} else {
					obj.SetNamespace(ns)
				}
				Expect(k8sClient.Create(ctx, obj)).To(Succeed(), file+": "+obj.GetKind())
			}
		}
	})

	ref := func(name string) v1alpha1.SecretKeySelector {
		return v1alpha1.SecretKeySelector{Name: "aws", Key: name}
	}
	secretKeys := func() v1alpha1.AWSCredentials {
		return v1alpha1.AWSCredentials{Secret: &v1alpha1.AWSSecretCredentials{AccessKeyIDSecretRef: ref("id"), SecretAccessKeySecretRef: ref("secret")}}
	}
	block := func(edit func(*v1alpha1.QuickSightProvider)) *v1alpha1.QuickSightProvider {
		b := &v1alpha1.QuickSightProvider{Region: "us-east-1", AWSAccountID: "111122223333", Credentials: secretKeys()}
		if edit != nil {
			edit(b)
		}
		return b
	}

	DescribeTable("EmbedProvider",
		func(qs *v1alpha1.QuickSightProvider, allowHTTP, accepted bool) {
			p := &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "qs"},
				Spec: v1alpha1.EmbedProviderSpec{AllowInsecureHTTP: allowHTTP, VendorConfig: v1alpha1.VendorConfig{QuickSight: qs}}}
			err := k8sClient.Create(context.Background(), p)
			if accepted {
				Expect(err).NotTo(HaveOccurred())
				Expect(get(context.Background(), p).(*v1alpha1.EmbedProvider).Spec.QuickSight.Namespace).To(Equal("default"))
				return
			}
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "error: %v", err)
		},
		Entry("accepts access keys with a session token", block(func(b *v1alpha1.QuickSightProvider) {
			b.Credentials.Secret.SessionTokenSecretRef = ptr.To(ref("token"))
		}), false, true),
		Entry("accepts an https endpoint", block(func(b *v1alpha1.QuickSightProvider) {
			b.Endpoint = "https://quicksight.vpce.example.com"
		}), false, true),
		Entry("accepts an http endpoint when allowInsecureHTTP is set", block(func(b *v1alpha1.QuickSightProvider) {
			b.Endpoint = "http://127.0.0.1:8089"
		}), true, true),
		Entry("refuses an http endpoint otherwise", block(func(b *v1alpha1.QuickSightProvider) { b.Endpoint = "http://127.0.0.1:8089" }), false, false),
		Entry("refuses the operator pod's identity, which is not the namespace's", block(func(b *v1alpha1.QuickSightProvider) {
			b.Credentials = v1alpha1.AWSCredentials{PodIdentity: &v1alpha1.AWSPodIdentity{}}
		}), false, false),
		Entry("refuses both credential sources", block(func(b *v1alpha1.QuickSightProvider) {
			b.Credentials.PodIdentity = &v1alpha1.AWSPodIdentity{}
		}), false, false),
		Entry("refuses no credential source", block(func(b *v1alpha1.QuickSightProvider) { b.Credentials = v1alpha1.AWSCredentials{} }), false, false),
		Entry("refuses an account ID that is not 12 digits", block(func(b *v1alpha1.QuickSightProvider) { b.AWSAccountID = "1111" }), false, false),
		Entry("refuses a region that is not one", block(func(b *v1alpha1.QuickSightProvider) { b.Region = "US East" }), false, false),
	)

	DescribeTable("ClusterEmbedProvider with the pod's identity",
		func(id v1alpha1.AWSPodIdentity, allowHTTP, accepted bool) {
			p := &v1alpha1.ClusterEmbedProvider{ObjectMeta: metav1.ObjectMeta{Name: ns + "-irsa"},
				Spec: v1alpha1.ClusterEmbedProviderSpec{EmbedProviderSpec: v1alpha1.EmbedProviderSpec{AllowInsecureHTTP: allowHTTP,
					VendorConfig: v1alpha1.VendorConfig{QuickSight: block(func(b *v1alpha1.QuickSightProvider) {
						b.Credentials = v1alpha1.AWSCredentials{PodIdentity: &id}
					})}}}}
			err := k8sClient.Create(context.Background(), p)
			if accepted {
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(func() { Expect(k8sClient.Delete(context.Background(), p)).To(Succeed()) })
				return
			}
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "error: %v", err)
		},
		Entry("accepts a role and an https STS endpoint",
			v1alpha1.AWSPodIdentity{RoleARN: "arn:aws:iam::111122223333:role/embed", STSEndpoint: "https://sts.us-east-1.amazonaws.com"}, false, true),
		Entry("accepts an http STS endpoint when allowInsecureHTTP is set", v1alpha1.AWSPodIdentity{STSEndpoint: "http://127.0.0.1:8089"}, true, true),
		Entry("refuses an http STS endpoint otherwise", v1alpha1.AWSPodIdentity{STSEndpoint: "http://127.0.0.1:8089"}, false, false),
		Entry("refuses a role that is not an IAM role ARN", v1alpha1.AWSPodIdentity{RoleARN: "arn:aws:iam::111122223333:user/alice"}, false, false),
	)

	It("requires a namespace on a ClusterEmbedProvider's key references", func() {
		ctx := context.Background()
		withoutNS := &v1alpha1.ClusterEmbedProvider{ObjectMeta: metav1.ObjectMeta{Name: ns + "-keys"},
			Spec: v1alpha1.ClusterEmbedProviderSpec{EmbedProviderSpec: v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{QuickSight: block(nil)}}}}
		err := k8sClient.Create(ctx, withoutNS)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "error: %v", err)
		Expect(err.Error()).To(ContainSubstring("must set namespace"))

		withNS := withoutNS.DeepCopy()
		withNS.Spec.QuickSight.Credentials.Secret.AccessKeyIDSecretRef.Namespace = ns
		withNS.Spec.QuickSight.Credentials.Secret.SecretAccessKeySecretRef.Namespace = ns
		Expect(k8sClient.Create(ctx, withNS)).To(Succeed())
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, withNS)).To(Succeed()) })
	})

	dashboard := func() v1alpha1.QuickSightRegisteredExperience {
		return v1alpha1.QuickSightRegisteredExperience{Dashboard: &v1alpha1.QuickSightDashboard{InitialDashboardID: "sales-7"}}
	}
	registered := func(edit func(*v1alpha1.QuickSightParams)) *v1alpha1.QuickSightParams {
		p := &v1alpha1.QuickSightParams{RegisteredUser: &v1alpha1.QuickSightRegisteredUser{UserName: "alice", Experience: dashboard()}}
		if edit != nil {
			edit(p)
		}
		return p
	}
	anonymous := func(edit func(*v1alpha1.QuickSightAnonymousUser)) *v1alpha1.QuickSightParams {
		a := &v1alpha1.QuickSightAnonymousUser{
			AuthorizedResourceARNs: []string{"arn:aws:quicksight:us-east-1:111122223333:dashboard/sales-7"},
			Experience:             v1alpha1.QuickSightAnonymousExperience{Dashboard: &v1alpha1.QuickSightDashboard{InitialDashboardID: "sales-7"}},
			SessionTags:            []v1alpha1.QuickSightSessionTag{{Key: "tenant", Value: "acme"}},
		}
		if edit != nil {
			edit(a)
		}
		return &v1alpha1.QuickSightParams{Anonymous: a}
	}

	DescribeTable("EmbedTokenTemplate",
		func(params *v1alpha1.QuickSightParams, accepted bool) {
			ett := &v1alpha1.EmbedTokenTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "qs"},
				Spec: v1alpha1.EmbedTokenTemplateSpec{ProviderRef: v1alpha1.ProviderRef{Name: "qs"},
					VendorParams: v1alpha1.VendorParams{QuickSight: params}}}
			err := k8sClient.Create(context.Background(), ett)
			if accepted {
				Expect(err).NotTo(HaveOccurred())
				return
			}
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "error: %v", err)
		},
		Entry("accepts a registered user by name", registered(nil), true),
		Entry("accepts a registered user by ARN, its console, a lifetime and three domains", registered(func(p *v1alpha1.QuickSightParams) {
			p.RegisteredUser = &v1alpha1.QuickSightRegisteredUser{UserARN: "arn:aws:quicksight:us-east-1:111122223333:user/default/alice",
				Experience: v1alpha1.QuickSightRegisteredExperience{Console: &v1alpha1.QuickSightConsole{InitialPath: "/start"}}}
			p.SessionLifetimeInMinutes = ptr.To[int64](600)
			p.AllowedDomains = []string{"https://a.example.com", "https://b.example.com", "https://c.example.com"}
		}), true),
		Entry("accepts an anonymous viewer with session tags", anonymous(nil), true),
		Entry("refuses both a registered user and an anonymous viewer", func() *v1alpha1.QuickSightParams {
			p := anonymous(nil)
			p.RegisteredUser = registered(nil).RegisteredUser
			return p
		}(), false),
		Entry("refuses neither", &v1alpha1.QuickSightParams{}, false),
		Entry("refuses a user by both ARN and name", registered(func(p *v1alpha1.QuickSightParams) {
			p.RegisteredUser.UserARN = "arn:aws:quicksight:us-east-1:111122223333:user/default/alice"
		}), false),
		Entry("refuses two experiences", registered(func(p *v1alpha1.QuickSightParams) {
			p.RegisteredUser.Experience.QSearchBar = &v1alpha1.QuickSightQSearchBar{}
		}), false),
		Entry("refuses a session shorter than 15 minutes", registered(func(p *v1alpha1.QuickSightParams) { p.SessionLifetimeInMinutes = ptr.To[int64](14) }), false),
		Entry("refuses a session longer than 600 minutes", registered(func(p *v1alpha1.QuickSightParams) { p.SessionLifetimeInMinutes = ptr.To[int64](601) }), false),
		Entry("refuses four allowed domains", registered(func(p *v1alpha1.QuickSightParams) {
			p.AllowedDomains = []string{"https://a.example.com", "https://b.example.com", "https://c.example.com", "https://d.example.com"}
		}), false),
		Entry("refuses an http allowed domain", registered(func(p *v1alpha1.QuickSightParams) { p.AllowedDomains = []string{"http://a.example.com"} }), false),
		Entry("refuses an anonymous viewer without resources", anonymous(func(a *v1alpha1.QuickSightAnonymousUser) { a.AuthorizedResourceARNs = nil }), false),
		Entry("refuses an anonymous Q search bar without a topic", anonymous(func(a *v1alpha1.QuickSightAnonymousUser) {
			a.Experience = v1alpha1.QuickSightAnonymousExperience{QSearchBar: &v1alpha1.QuickSightQSearchBar{}}
		}), false),
		Entry("refuses a session tag without a value", anonymous(func(a *v1alpha1.QuickSightAnonymousUser) {
			a.SessionTags = []v1alpha1.QuickSightSessionTag{{Key: "tenant"}}
		}), false),
	)
})
