package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/ondemand"
	"github.com/embedtokens/embed-token-operator/internal/tokenendpoint"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

// The token endpoint end to end on the real API server: TokenRequest mints
// the callers' ServiceAccount tokens, TokenReview and SubjectAccessReview
// check them, and every token comes from the manager's own issuance path
// (internal/ondemand over the Issuer the reconciler uses) and the vendor
// simulator, wired as cmd/tokenendpoint.go wires them.
var _ = Describe("The token endpoint on the issuance path", Ordered, func() {
	const (
		// deniedSuffix ends the users the provider's requestValidations
		// refuse.
		deniedSuffix = "/mallory"
		role         = "embed-tokens"
	)
	var (
		ctx          = context.Background()
		f            *fixture
		other        string // a namespace whose web account holds the Role for its own templates
		mgr          ctrl.Manager
		server       *httptest.Server
		clientset    *kubernetes.Clientset
		operatorRegs *prometheus.Registry // the manager's metrics: vendor calls by vendor
		endpointRegs *prometheus.Registry // the endpoint's metrics
	)

	// token mints a token of audience embedtokens.io (unless spec names
	// others) for the ServiceAccount namespace/name through TokenRequest.
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

	// call POSTs body to the route of namespace/name over TLS, verifying
	// the server's certificate, and returns the status and decoded body.
	call := func(namespace, name, bearer, body string) (int, map[string]any) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost,
			server.URL+tokenendpoint.PathPrefix+namespace+"/embedtokentemplates/"+name+"/token", strings.NewReader(body))
		Expect(err).NotTo(HaveOccurred())
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := server.Client().Do(req)
		Expect(err).NotTo(HaveOccurred())
		defer func() { _ = resp.Body.Close() }()
		out := map[string]any{}
		Expect(json.NewDecoder(resp.Body).Decode(&out)).To(Succeed())
		return resp.StatusCode, out
	}

	// forUser is the body of a call for user of the fixture's namespace,
	// with minValidFor when not empty.
	forUser := func(user, minValidFor string) string {
		b, err := json.Marshal(map[string]any{"parameters": map[string]string{"user": f.ns + "/" + user}, "minValidFor": minValidFor})
		Expect(err).NotTo(HaveOccurred())
		return string(b)
	}

	// vendorCallsFor counts the simulator's calls for user of the
	// fixture's namespace.
	vendorCallsFor := func(user string) int {
		n := 0
		for _, c := range f.sim.Calls() {
			if c.Body["userid"] == f.ns+"/"+user {
				n++
			}
		}
		return n
	}

	// cachedTokens is how many tokens the endpoint holds.
	cachedTokens := func() float64 { return metricValue(endpointRegs, "embedtoken_endpoint_cache_entries", nil) }

	// servable waits until the endpoint's cache holds tmpl Ready for its
	// current generation, as the endpoint requires before a vendor call.
	servable := func(tmpl *v1alpha1.EmbedTokenTemplate) {
		GinkgoHelper()
		Eventually(func(g Gomega) {
			cur := &v1alpha1.EmbedTokenTemplate{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(tmpl), cur)).To(Succeed())
			cached := &v1alpha1.EmbedTokenTemplate{}
			g.Expect(mgr.GetCache().Get(ctx, client.ObjectKeyFromObject(tmpl), cached)).To(Succeed())
			g.Expect(cached.UID).To(Equal(cur.UID))
			g.Expect(cached.Generation).To(Equal(cur.Generation))
			g.Expect(cached.Status.ObservedGeneration).To(Equal(cached.Generation))
			g.Expect(meta.IsStatusConditionTrue(cached.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())
		}).Should(Succeed())
	}

	// createTemplate creates tmpl and waits until the endpoint can serve it.
	createTemplate := func(tmpl *v1alpha1.EmbedTokenTemplate) {
		GinkgoHelper()
		Expect(k8sClient.Create(ctx, tmpl)).To(Succeed())
		servable(tmpl)
	}

	// grantRole lets the ServiceAccount web of namespace create
	// embedtokentemplates/token for every template of namespace.
	grantRole := func(namespace string) {
		GinkgoHelper()
		Expect(k8sClient.Create(ctx, &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: role},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group},
				Resources: []string{v1alpha1.TokenSubresource}, Verbs: []string{"create"}}},
		})).To(Succeed())
		Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: role},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: "web"}},
		})).To(Succeed())
	}

	BeforeAll(func() {
		var err error
		clientset, err = kubernetes.NewForConfig(cfg)
		Expect(err).NotTo(HaveOccurred())

		By("a namespace with a Qrvey provider whose requestValidations refuse one user, and its simulator")
		f = newFixture(ctx)
		f.createCredentials(ctx)
		spec := f.providerSpec()
		spec.RequestValidations = []v1alpha1.RequestValidation{{
			Expression: fmt.Sprintf("!object.spec.qrvey.userID.endsWith('%s')", deniedSuffix),
			Message:    "this user may not see embedded dashboards"}}
		f.createNamedProvider(ctx, "qrvey", spec)
		other = "t-" + rand.String(6)
		Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}})).To(Succeed())
		for _, sa := range []client.ObjectKey{{Namespace: f.ns, Name: "web"}, {Namespace: f.ns, Name: "nobody"}, {Namespace: other, Name: "web"}} {
			Expect(k8sClient.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: sa.Namespace, Name: sa.Name}})).To(Succeed())
		}
		grantRole(f.ns)
		grantRole(other)

		By("the operator's manager, its Issuer shared with the endpoint's Minter as cmd/tokenendpoint.go shares it")
		stopMgr()
		DeferCleanup(func() { stopMgr = startManager() })
		opts := operatorOptions()
		opts.CredentialCheckInterval = time.Second
		operatorRegs = opts.MetricsRegisterer.(*prometheus.Registry)
		mgr, opts = newOperator(cfg, logr.Logger{}, 0, opts)
		endpointRegs = prometheus.NewRegistry()
		ep, err := tokenendpoint.New(tokenendpoint.Options{
			Templates: mgr.GetCache(),
			Minter: &ondemand.Minter{Issuer: opts.Issuer, Templates: opts.Templates, Providers: opts.Providers,
				APIReader: mgr.GetAPIReader()},
			Client:            mgr.GetClient(),
			MetricsRegisterer: endpointRegs,
			Logger:            mgr.GetLogger().WithName("token-endpoint"),
		})
		Expect(err).NotTo(HaveOccurred())
		informer, err := mgr.GetCache().GetInformer(ctx, &v1alpha1.EmbedTokenTemplate{})
		Expect(err).NotTo(HaveOccurred())
		_, err = informer.AddEventHandler(ep.TemplateEventHandler())
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(runManager(mgr))

		By("serving the endpoint over TLS on 127.0.0.1")
		server = httptest.NewUnstartedServer(ep)
		server.StartTLS()
		DeferCleanup(server.Close)

		Eventually(func() string {
			p := get(ctx, &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "qrvey"}})
			return p.(*v1alpha1.EmbedProvider).Status.CredentialsVersion
		}).ShouldNot(BeEmpty())
		createTemplate(harness.QrveyTemplate(f.ns, "dash"))
	})

	It("gives a ServiceAccount holding the Role per-user tokens that the simulator validates", func() {
		bearer := token(f.ns, "web", authenticationv1.TokenRequestSpec{})
		tokens := map[string]string{}
		for _, user := range []string{"ann", "bob"} {
			code, body := call(f.ns, "dash", bearer, forUser(user, ""))
			Expect(code).To(Equal(http.StatusOK), "%v", body)
			Expect(body).To(HaveKeyWithValue("cached", false))
			Expect(body).To(HaveKey("expiresAt"))
			tokens[user] = body["token"].(string)
			Expect(f.sim.Validate(tokens[user])).To(Equal(vendorsim.ValidityValid), user)
			Expect(vendorCallsFor(user)).To(Equal(1), "the simulator's call log shows %s", user)
		}
		Expect(tokens["ann"]).NotTo(Equal(tokens["bob"]))

		By("a second call for ann sharing her token")
		code, body := call(f.ns, "dash", bearer, forUser("ann", ""))
		Expect(code).To(Equal(http.StatusOK), "%v", body)
		Expect(body).To(And(HaveKeyWithValue("cached", true), HaveKeyWithValue("token", tokens["ann"])))
		Expect(vendorCallsFor("ann")).To(Equal(1))
	})

	DescribeTable("refuses with 403 Forbidden, and no vendor call, an account",
		func(namespace func() string, account string) {
			before := f.sim.CallCount()
			code, body := call(f.ns, "dash", token(namespace(), account, authenticationv1.TokenRequestSpec{}), forUser("carol", ""))
			Expect(code).To(Equal(http.StatusForbidden), "%v", body)
			Expect(body).To(HaveKeyWithValue("reason", tokenendpoint.ReasonForbidden))
			Expect(f.sim.CallCount()).To(Equal(before))
		},
		Entry("without the Role", func() string { return f.ns }, "nobody"),
		Entry("of another namespace, though a Role grants it its own namespace's templates", func() string { return other }, "web"),
	)

	DescribeTable("refuses with 401 Unauthorized a caller the API server does not authenticate",
		func(bearer func() string) {
			before := f.sim.CallCount()
			code, body := call(f.ns, "dash", bearer(), forUser("carol", ""))
			Expect(code).To(Equal(http.StatusUnauthorized), "%v", body)
			Expect(body).To(HaveKeyWithValue("reason", tokenendpoint.ReasonUnauthorized))
			Expect(f.sim.CallCount()).To(Equal(before))
		},
		Entry("with a token for another audience", func() string {
			return token(f.ns, "web", authenticationv1.TokenRequestSpec{Audiences: []string{"https://kubernetes.default.svc"}})
		}),
		Entry("with a token that expired two hours ago", func() string {
			tok, err := harness.ResignServiceAccountToken(token(f.ns, "web", authenticationv1.TokenRequestSpec{}),
				-2*time.Hour, testEnv.ControlPlane.APIServer.CertDir)
			Expect(err).NotTo(HaveOccurred())
			return tok
		}),
	)

	It("answers a parameter its rule refuses with 400 InvalidParameters, and no vendor call", func() {
		before := f.sim.CallCount()
		body, err := json.Marshal(map[string]any{"parameters": map[string]string{"user": other + "/ann"}})
		Expect(err).NotTo(HaveOccurred())
		code, answer := call(f.ns, "dash", token(f.ns, "web", authenticationv1.TokenRequestSpec{}), string(body))
		Expect(code).To(Equal(http.StatusBadRequest), "%v", answer)
		Expect(answer).To(HaveKeyWithValue("reason", tokenendpoint.ReasonInvalidParameters))
		Expect(f.sim.CallCount()).To(Equal(before))
	})

	It("answers a filled request the provider's requestValidations refuse with 403 RequestDenied, and no vendor call", func() {
		before := f.sim.CallCount()
		code, body := call(f.ns, "dash", token(f.ns, "web", authenticationv1.TokenRequestSpec{}), forUser(strings.TrimPrefix(deniedSuffix, "/"), ""))
		Expect(code).To(Equal(http.StatusForbidden), "%v", body)
		Expect(body).To(HaveKeyWithValue("reason", v1alpha1.ReasonRequestDenied))
		Expect(body["message"]).To(ContainSubstring("this user may not see embedded dashboards"))
		Expect(f.sim.CallCount()).To(Equal(before))
	})

	// Ten concurrent vendor calls fit the Issuer's queues without a
	// Throttled: with the suite's four workers the provider and the
	// namespace have two call slots each, so eight calls wait, four rounds,
	// which is issuance.MaxQueueRounds.
	It("makes exactly ten vendor calls for 1,000 concurrent calls for ten users", func() {
		bearer := token(f.ns, "web", authenticationv1.TokenRequestSpec{})
		before := f.sim.CallCount()
		start := make(chan struct{})
		var wg sync.WaitGroup
		codes := make([]int, 1000)
		tokens := make([]string, len(codes))
		for i := range codes {
			wg.Go(func() {
				defer GinkgoRecover()
				<-start
				var body map[string]any
				codes[i], body = call(f.ns, "dash", bearer, forUser(fmt.Sprintf("crowd-%d", i%10), ""))
				tokens[i], _ = body["token"].(string)
			})
		}
		close(start)
		wg.Wait()
		Expect(codes).To(HaveEach(http.StatusOK))
		Expect(f.sim.CallCount() - before).To(Equal(10))
		for i := range codes {
			Expect(tokens[i]).To(Equal(tokens[i%10]), "every call for one user gets the one token")
		}
		for u := range 10 {
			Expect(vendorCallsFor(fmt.Sprintf("crowd-%d", u))).To(Equal(1))
		}
	})

	It("honours minValidFor: a call asking more than the cached token has left gets a new one", func() {
		bearer := token(f.ns, "web", authenticationv1.TokenRequestSpec{})
		code, first := call(f.ns, "dash", bearer, forUser("dora", ""))
		Expect(code).To(Equal(http.StatusOK), "%v", first)
		expiresAt, err := time.Parse(time.RFC3339, first["expiresAt"].(string))
		Expect(err).NotTo(HaveOccurred())
		left := time.Until(expiresAt)
		Expect(left).To(BeNumerically(">", 10*time.Minute), "the template's lifetime is the default hour")

		By("asking for half of what is left: the cached token")
		code, body := call(f.ns, "dash", bearer, forUser("dora", (left/2).Round(time.Second).String()))
		Expect(code).To(Equal(http.StatusOK), "%v", body)
		Expect(body).To(And(HaveKeyWithValue("cached", true), HaveKeyWithValue("token", first["token"])))
		Expect(vendorCallsFor("dora")).To(Equal(1))

		By("asking for more than is left: a new token")
		code, body = call(f.ns, "dash", bearer, forUser("dora", (left+time.Minute).Round(time.Second).String()))
		Expect(code).To(Equal(http.StatusOK), "%v", body)
		Expect(body).To(HaveKeyWithValue("cached", false))
		Expect(body["token"]).NotTo(Equal(first["token"]))
		Expect(vendorCallsFor("dora")).To(Equal(2))
	})

	It("drops cached tokens when the provider's credentials rotate", func() {
		bearer := token(f.ns, "web", authenticationv1.TokenRequestSpec{})
		code, first := call(f.ns, "dash", bearer, forUser("erin", ""))
		Expect(code).To(Equal(http.StatusOK), "%v", first)
		prov := &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "qrvey"}}
		version := get(ctx, prov).(*v1alpha1.EmbedProvider).Status.CredentialsVersion

		By("writing the credential Secret again, as a rotation does")
		secret := f.qrvey.Credentials()
		patchObject(ctx, secret, func(s *corev1.Secret) {
			s.Annotations = map[string]string{"rotated": "once"}
		})
		Eventually(func() string {
			return get(ctx, prov).(*v1alpha1.EmbedProvider).Status.CredentialsVersion
		}).ShouldNot(Equal(version))

		By("the next call for the same user missing the old token: one vendor call")
		Eventually(func() any {
			code, body := call(f.ns, "dash", bearer, forUser("erin", ""))
			Expect(code).To(Equal(http.StatusOK), "%v", body)
			return body["cached"]
		}).Should(BeFalse(), "the endpoint's provider cache sees the new version")
		Expect(vendorCallsFor("erin")).To(Equal(2))
	})

	It("drops cached tokens when the template changes", func() {
		bearer := token(f.ns, "web", authenticationv1.TokenRequestSpec{})
		code, first := call(f.ns, "dash", bearer, forUser("fay", ""))
		Expect(code).To(Equal(http.StatusOK), "%v", first)
		Expect(cachedTokens()).To(BeNumerically(">", 0))
		tmpl := &v1alpha1.EmbedTokenTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "dash"}}
		patchObject(ctx, tmpl, func(t *v1alpha1.EmbedTokenTemplate) { t.Spec.Qrvey.AppID = "app-2" })
		Eventually(cachedTokens).Should(BeZero(), "the informer's update drops the tokens of dash, the only template with tokens so far")
		servable(tmpl)
		code, body := call(f.ns, "dash", bearer, forUser("fay", ""))
		Expect(code).To(Equal(http.StatusOK), "%v", body)
		Expect(body).To(HaveKeyWithValue("cached", false))
		Expect(vendorCallsFor("fay")).To(Equal(2))
	})

	It("drops cached tokens when the template is deleted, and a template made again under its name calls the vendor", func() {
		bearer := token(f.ns, "web", authenticationv1.TokenRequestSpec{})
		tmpl := harness.QrveyTemplate(f.ns, "ephemeral")
		createTemplate(tmpl)
		code, first := call(f.ns, "ephemeral", bearer, forUser("gus", ""))
		Expect(code).To(Equal(http.StatusOK), "%v", first)
		held := cachedTokens()
		Expect(k8sClient.Delete(ctx, tmpl)).To(Succeed())
		Eventually(cachedTokens).Should(Equal(held-1), "the informer's deletion drops the template's one token")
		Eventually(func() int { code, _ := call(f.ns, "ephemeral", bearer, forUser("gus", "")); return code }).
			Should(Equal(http.StatusNotFound))

		createTemplate(harness.QrveyTemplate(f.ns, "ephemeral"))
		code, body := call(f.ns, "ephemeral", bearer, forUser("gus", ""))
		Expect(code).To(Equal(http.StatusOK), "%v", body)
		Expect(body).To(HaveKeyWithValue("cached", false))
		Expect(vendorCallsFor("gus")).To(Equal(2))
	})

	It("makes one vendor call per call for a template with cache None", func() {
		tmpl := harness.QrveyTemplate(f.ns, "uncached")
		tmpl.Spec.Cache = v1alpha1.TemplateCacheNone
		createTemplate(tmpl)
		bearer := token(f.ns, "web", authenticationv1.TokenRequestSpec{})
		seen := map[string]bool{}
		for i := range 3 {
			code, body := call(f.ns, "uncached", bearer, forUser("hal", ""))
			Expect(code).To(Equal(http.StatusOK), "%v", body)
			Expect(body).To(HaveKeyWithValue("cached", false))
			seen[body["token"].(string)] = true
			Expect(vendorCallsFor("hal")).To(Equal(i + 1))
		}
		Expect(seen).To(HaveLen(3))
	})

	Context("with a single-use vendor (Looker)", Ordered, func() {
		var lookerSim *vendorsim.Server

		// lookerCalls is the manager's count of Looker vendor calls, whatever
		// their result.
		lookerCalls := func() float64 {
			GinkgoHelper()
			return metricValue(operatorRegs, "embedtoken_issue_total", map[string]string{"vendor": v1alpha1.VendorLooker})
		}

		BeforeAll(func() {
			lookerSim = vendorsim.New(vendorsim.Options{})
			Expect(lookerSim.Start()).To(Succeed())
			DeferCleanup(lookerSim.Close)
			f.createSecret(ctx, "looker-embed", map[string][]byte{"secret": []byte(vendorsim.DefaultLookerEmbedSecret)})
			f.createNamedProvider(ctx, "looker", v1alpha1.EmbedProviderSpec{AllowInsecureHTTP: true, VendorConfig: v1alpha1.VendorConfig{Looker: &v1alpha1.LookerProvider{
				URL: lookerSim.URL(), EmbedSecretSecretRef: v1alpha1.SecretKeySelector{Name: "looker-embed", Key: "secret"}}}})
		})

		lookerParams := func() v1alpha1.VendorParams {
			return v1alpha1.VendorParams{Looker: &v1alpha1.LookerParams{TargetPath: "/embed/dashboards/42", ExternalUserID: "placeholder",
				Permissions: []string{"access_data", "see_user_dashboards"}, Models: []string{"sales"}}}
		}

		It("makes one vendor call per call even with cache Shared, each URL redeemed once by the simulator", func() {
			tmpl := &v1alpha1.EmbedTokenTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "looker-shared"},
				Spec: v1alpha1.EmbedTokenTemplateSpec{ProviderRef: v1alpha1.ProviderRef{Name: "looker"}, VendorParams: lookerParams(),
					Cache:      v1alpha1.TemplateCacheShared,
					Parameters: []v1alpha1.TemplateParameter{{Name: "user", Path: "looker.externalUserID"}}}}
			createTemplate(tmpl)
			bearer := token(f.ns, "web", authenticationv1.TokenRequestSpec{})
			before, held := lookerCalls(), cachedTokens()
			urls := map[string]bool{}
			for i := range 3 {
				code, body := call(f.ns, tmpl.Name, bearer, forUser("ivy", ""))
				Expect(code).To(Equal(http.StatusOK), "%v", body)
				Expect(body).To(HaveKeyWithValue("cached", false))
				urls[body["token"].(string)] = true
				Expect(lookerCalls() - before).To(BeEquivalentTo(i + 1))
			}
			Expect(urls).To(HaveLen(3))
			Expect(cachedTokens()).To(Equal(held), "single-use tokens are never cached")
			for u := range urls {
				Expect(redeem(u)).To(Equal(http.StatusOK), "the simulator redeems each URL")
				Expect(redeem(u)).To(Equal(http.StatusForbidden), "and only once")
			}
		})

		It("refuses an EmbedTokenRequest as InvalidRequest, Stalled, with no vendor call", func() {
			before, redeemed := lookerCalls(), lookerSim.CallCount()
			etr := f.request("looker-stored", time.Hour)
			etr.Spec.ProviderRef = v1alpha1.ProviderRef{Name: "looker"}
			etr.Spec.VendorParams = lookerParams()
			Expect(k8sClient.Create(ctx, etr)).To(Succeed())
			Eventually(readyCondition(ctx, etr)).Should(haveReason(metav1.ConditionFalse, v1alpha1.ReasonInvalidRequest))
			Eventually(func(g Gomega) {
				cur := get(ctx, etr).(*v1alpha1.EmbedTokenRequest)
				g.Expect(meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionStalled)).To(
					And(Not(BeNil()), HaveField("Status", metav1.ConditionTrue), HaveField("Reason", v1alpha1.ReasonInvalidRequest)))
			}).Should(Succeed())
			Expect(lookerCalls()).To(Equal(before))
			Expect(lookerSim.CallCount()).To(Equal(redeemed))
		})
	})
})

// redeem opens a signed embed URL as a browser does and returns the status.
func redeem(url string) int {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	Expect(err).NotTo(HaveOccurred())
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// metricValue sums the samples of the counter or gauge name in g whose
// labels include labels.
func metricValue(g prometheus.Gatherer, name string, labels map[string]string) float64 {
	GinkgoHelper()
	families, err := g.Gather()
	Expect(err).NotTo(HaveOccurred())
	var sum float64
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}
