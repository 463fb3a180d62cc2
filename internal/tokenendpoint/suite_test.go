/*
Copyright 2026 The embed-token-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package tokenendpoint

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gstruct"
	"github.com/prometheus/client_golang/prometheus"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

// The suite checks authentication and authorization against a real
// kube-apiserver (built by hack/envtest-assets.sh; `make test` sets
// KUBEBUILDER_ASSETS): real TokenRequests, TokenReviews,
// SubjectAccessReviews and RBAC. The vendor side is the unit tests' fake
// Minter; the issuance path is tested where it lives.
var (
	testEnv   *envtest.Environment
	cfg       *rest.Config
	scheme    = runtime.NewScheme()
	k8sClient client.Client
	clientset *kubernetes.Clientset
)

func TestTokenEndpoint(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Token Endpoint Suite")
}

var _ = BeforeSuite(func() {
	// A loaded machine may take seconds to deliver an informer's event.
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	testEnv = harness.Environment(filepath.Join("..", ".."))
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred(), "start envtest; set KUBEBUILDER_ASSETS=$(bash hack/envtest-assets.sh)")
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	clientset, err = kubernetes.NewForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// recordingMinter is the fake Minter, recording the callers it prepares for.
type recordingMinter struct {
	fakeMinter
	mu      sync.Mutex
	callers []Caller
}

func (m *recordingMinter) Prepare(ctx context.Context, tmpl *v1alpha1.EmbedTokenTemplate, params map[string]string, c Caller) (Prepared, error) {
	m.mu.Lock()
	m.callers = append(m.callers, c)
	m.mu.Unlock()
	return m.fakeMinter.Prepare(ctx, tmpl, params, c)
}

func (m *recordingMinter) lastCaller() Caller {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.callers[len(m.callers)-1]
}

var _ = Describe("Authentication and authorization on the API server", Ordered, func() {
	const (
		teamA = "team-a"
		teamB = "team-b"
	)
	var (
		ctx      = context.Background()
		ep       *Endpoint
		minter   *recordingMinter
		callWith func(namespace, bearer, body string) (int, string)
	)

	// token mints a token for the ServiceAccount namespace/name through
	// TokenRequest.
	token := func(namespace, name string, spec authenticationv1.TokenRequestSpec) string {
		GinkgoHelper()
		if spec.Audiences == nil {
			spec.Audiences = []string{v1alpha1.TokenEndpointAudience}
		}
		tr, err := clientset.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
			&authenticationv1.TokenRequest{Spec: spec}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		return tr.Status.Token
	}

	// call asks the endpoint for a token from team-a's template dash.
	call := func(namespace, bearer string) (int, string) {
		GinkgoHelper()
		return callWith(namespace, bearer, `{"parameters":{"user":"ann"}}`)
	}
	callWith = func(namespace, bearer, body string) (int, string) {
		req := httptest.NewRequestWithContext(ctx, http.MethodPost,
			PathPrefix+namespace+"/embedtokentemplates/dash/token", strings.NewReader(body))
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		rec := httptest.NewRecorder()
		ep.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}

	// resign returns a copy of the real token tok with its times moved by
	// shift, signed again with the API server's service-account key, so
	// the API server checks an expiry it would otherwise never issue.
	resign := func(tok string, shift time.Duration) string {
		GinkgoHelper()
		s, err := harness.ResignServiceAccountToken(tok, shift, testEnv.ControlPlane.APIServer.CertDir)
		Expect(err).NotTo(HaveOccurred())
		return s
	}

	BeforeAll(func() {
		for _, ns := range []string{teamA, teamB} {
			Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		}
		for _, sa := range []saName{{teamA, "web"}, {teamA, "nobody"}, {teamB, "web"}} {
			Expect(k8sClient.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: sa.ns, Name: sa.name}})).To(Succeed())
		}
		// An ordinary Role grants the token subresource in each namespace,
		// bound to each namespace's web account.
		for _, ns := range []string{teamA, teamB} {
			Expect(k8sClient.Create(ctx, &rbacv1.Role{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "embed-tokens"},
				Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group},
					Resources: []string{v1alpha1.TokenSubresource}, ResourceNames: []string{"dash"}, Verbs: []string{"create"}}},
			})).To(Succeed())
			Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "embed-tokens"},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "embed-tokens"},
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "web"}},
			})).To(Succeed())
		}
		tmpl := &v1alpha1.EmbedTokenTemplate{
			ObjectMeta: metav1.ObjectMeta{Namespace: teamA, Name: "dash"},
			Spec: v1alpha1.EmbedTokenTemplateSpec{
				ProviderRef:  v1alpha1.ProviderRef{Name: "vendor"},
				VendorParams: v1alpha1.VendorParams{JWT: &v1alpha1.JWTParams{Subject: "set-per-call"}},
				Parameters:   []v1alpha1.TemplateParameter{{Name: "user", Path: "jwt.subject"}},
			},
		}
		Expect(k8sClient.Create(ctx, tmpl)).To(Succeed())
		markReady(tmpl)

		minter = &recordingMinter{fakeMinter: fakeMinter{clock: clocktesting.NewFakeClock(time.Now()), lifetime: time.Hour}}
		var err error
		// Templates are read from an informer's cache, as the manager's,
		// whose events drop a changed or deleted template's tokens.
		informers, err := crcache.New(cfg, crcache.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		ep, err = New(Options{Templates: informers, Client: k8sClient, Minter: minter, MetricsRegisterer: prometheus.NewRegistry()})
		Expect(err).NotTo(HaveOccurred())
		informer, err := informers.GetInformer(ctx, &v1alpha1.EmbedTokenTemplate{})
		Expect(err).NotTo(HaveOccurred())
		_, err = informer.AddEventHandler(ep.TemplateEventHandler())
		Expect(err).NotTo(HaveOccurred())
		cacheCtx, stop := context.WithCancel(ctx)
		DeferCleanup(stop)
		go func() {
			defer GinkgoRecover()
			Expect(informers.Start(cacheCtx)).To(Succeed())
		}()
		Expect(informers.WaitForCacheSync(ctx)).To(BeTrue())
	})

	It("gives a ServiceAccount holding the Role a token", func() {
		code, body := call(teamA, token(teamA, "web", authenticationv1.TokenRequestSpec{}))
		Expect(code).To(Equal(http.StatusOK), body)
		Expect(body).To(ContainSubstring(`"token":"vendor-token-`))
		c := minter.lastCaller()
		Expect(c).To(gstruct.MatchFields(gstruct.IgnoreExtras, gstruct.Fields{
			"Username": Equal("system:serviceaccount:team-a:web"), "Namespace": Equal(teamA), "ServiceAccount": Equal("web"),
			"UID": Not(BeEmpty()), "Groups": ContainElement("system:serviceaccounts:team-a"),
		}))
	})

	It("reads the pod name of a token bound to a pod", func() {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: teamA, Name: "web-1"},
			Spec: corev1.PodSpec{ServiceAccountName: "web", AutomountServiceAccountToken: ptr.To(false),
				Containers: []corev1.Container{{Name: "app", Image: "app"}}},
		}
		Expect(k8sClient.Create(ctx, pod)).To(Succeed())
		bound := token(teamA, "web", authenticationv1.TokenRequestSpec{
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		})
		code, body := call(teamA, bound)
		Expect(code).To(Equal(http.StatusOK), body)
		Expect(minter.lastCaller().PodName).To(Equal("web-1"))
	})

	It("refuses an account without the Role with 403 Forbidden", func() {
		code, body := call(teamA, token(teamA, "nobody", authenticationv1.TokenRequestSpec{}))
		Expect(code).To(Equal(http.StatusForbidden), body)
		Expect(body).To(ContainSubstring(`"reason":"Forbidden"`))
	})

	It("refuses an account of another namespace with 403 Forbidden, though a Role grants it its own", func() {
		bearer := token(teamB, "web", authenticationv1.TokenRequestSpec{})
		code, body := call(teamA, bearer)
		Expect(code).To(Equal(http.StatusForbidden), body)
		// Its own namespace has no template dash: found only after access is granted.
		code, body = call(teamB, bearer)
		Expect(code).To(Equal(http.StatusNotFound), body)
	})

	DescribeTable("refuses callers the API server does not authenticate with 401",
		func(bearer func() string) {
			code, body := call(teamA, bearer())
			Expect(code).To(Equal(http.StatusUnauthorized), body)
			Expect(body).To(ContainSubstring(`"reason":"Unauthorized"`))
		},
		Entry("a token for another audience", func() string {
			return token(teamA, "web", authenticationv1.TokenRequestSpec{Audiences: []string{"https://kubernetes.default.svc"}})
		}),
		Entry("an expired token", func() string {
			return resign(token(teamA, "web", authenticationv1.TokenRequestSpec{}), -2*time.Hour)
		}),
		Entry("a garbage token", func() string { return "not-a-token" }),
		Entry("no Authorization header", func() string { return "" }),
	)

	It("accepts a token signed again with its times unchanged, so the expired one fails for its expiry alone", func() {
		code, body := call(teamA, resign(token(teamA, "web", authenticationv1.TokenRequestSpec{}), 0))
		Expect(code).To(Equal(http.StatusOK), body)
	})
	It("makes ten vendor calls for 1,000 concurrent calls for ten users, with one review of the caller", func() {
		bearer := token(teamA, "web", authenticationv1.TokenRequestSpec{})
		before := minter.mints.Load()
		start := make(chan struct{})
		var wg sync.WaitGroup
		codes := make([]int, 1000)
		for i := range codes {
			wg.Go(func() {
				defer GinkgoRecover()
				<-start
				codes[i], _ = callWith(teamA, bearer, fmt.Sprintf(`{"parameters":{"user":"crowd-%d"}}`, i%10))
			})
		}
		close(start)
		wg.Wait()
		Expect(codes).To(HaveEach(http.StatusOK))
		Expect(minter.mints.Load() - before).To(BeEquivalentTo(10))
	})

	It("drops a template's tokens when its spec changes, and serves it again once Ready for the new generation", func() {
		bearer := token(teamA, "web", authenticationv1.TokenRequestSpec{})
		code, body := call(teamA, bearer)
		Expect(code).To(Equal(http.StatusOK), body)
		Expect(ep.cache.len()).To(BeNumerically(">", 0))
		tmpl := &v1alpha1.EmbedTokenTemplate{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: teamA, Name: "dash"}, tmpl)).To(Succeed())
		tmpl.Spec.JWT.Subject = "changed"
		Expect(k8sClient.Update(ctx, tmpl)).To(Succeed())
		Eventually(ep.cache.len).Should(BeZero(), "the informer's update drops the tokens")
		Eventually(func() int { code, _ := call(teamA, bearer); return code }).Should(Equal(http.StatusConflict),
			"the status describes the previous generation")
		markReady(tmpl)
		before := minter.mints.Load()
		Eventually(func() string { _, body := call(teamA, bearer); return body }).Should(ContainSubstring(`"cached":false`))
		Expect(minter.mints.Load() - before).To(BeEquivalentTo(1))
	})

	It("drops a deleted template's tokens and answers 404", func() {
		bearer := token(teamA, "web", authenticationv1.TokenRequestSpec{})
		code, body := call(teamA, bearer)
		Expect(code).To(Equal(http.StatusOK), body)
		Expect(ep.cache.len()).To(BeNumerically(">", 0))
		Expect(k8sClient.Delete(ctx, &v1alpha1.EmbedTokenTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: teamA, Name: "dash"}})).To(Succeed())
		Eventually(ep.cache.len).Should(BeZero(), "the informer's deletion drops the tokens")
		Eventually(func() int { code, _ := call(teamA, bearer); return code }).Should(Equal(http.StatusNotFound))
	})
})

// saName names a ServiceAccount.
type saName struct{ ns, name string }

// markReady sets the template's status as the template controller does when
// it can serve the template's current generation.
func markReady(tmpl *v1alpha1.EmbedTokenTemplate) {
	GinkgoHelper()
	tmpl.Status = v1alpha1.EmbedTokenTemplateStatus{ObservedGeneration: tmpl.Generation, Conditions: []metav1.Condition{{
		Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready", ObservedGeneration: tmpl.Generation,
		LastTransitionTime: metav1.Now(),
	}}}
	Expect(k8sClient.Status().Update(context.Background(), tmpl)).To(Succeed())
}
