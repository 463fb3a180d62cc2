package controller_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

const apiKey = "test-api-key-0f9e8d"

// fixture is one namespace with its own vendor simulator, credential Secret
// and Qrvey provider (harness.QrveyFixture), so faults injected by one spec
// never reach another.
type fixture struct {
	ns    string
	sim   *vendorsim.Server
	qrvey harness.QrveyFixture
}

func newFixture(ctx context.Context) *fixture {
	f := &fixture{ns: "t-" + rand.String(6), sim: vendorsim.New(vendorsim.Options{QrveyAPIKey: apiKey})}
	Expect(f.sim.Start()).To(Succeed())
	DeferCleanup(f.sim.Close)
	f.qrvey = harness.QrveyFixture{Namespace: f.ns, Provider: "qrvey", SimURL: f.sim.URL(), APIKey: apiKey}
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}})).To(Succeed())
	return f
}

// newFixtureWithProvider adds the credential Secret and a working provider.
func newFixtureWithProvider(ctx context.Context) *fixture {
	f := newFixture(ctx)
	f.createCredentials(ctx)
	f.createProvider(ctx)
	// A provider's first status (with its credentialsVersion) is written by
	// another controller; waiting for it keeps specs about a request's own
	// writes from counting the one that records it on the Secret.
	Eventually(func() string {
		p := get(ctx, &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "qrvey"}})
		return p.(*v1alpha1.EmbedProvider).Status.CredentialsVersion
	}).ShouldNot(BeEmpty())
	return f
}

// eachFixtureWithProvider gives every spec of the container that calls it
// a new fixture with a working provider.
func eachFixtureWithProvider() *fixture {
	f := &fixture{}
	BeforeEach(func() { *f = *newFixtureWithProvider(context.Background()) })
	return f
}

// grantOnly makes the fixture's vendor grant tokens of at most lifetime
// whatever is asked, as a vendor may: specs ask for a lifetime admission
// accepts (1m or more) and watch tokens renew every few seconds.
func (f *fixture) grantOnly(lifetime time.Duration) {
	f.grant(grantKey{url: f.sim.URL()}, lifetime)
}

// grantOnlyTo is grantOnly for the request named name alone.
func (f *fixture) grantOnlyTo(name string, lifetime time.Duration) {
	f.grant(grantKey{url: f.sim.URL(), user: f.qrvey.UserID(name)}, lifetime)
}

func (f *fixture) grant(key grantKey, lifetime time.Duration) {
	vendorGrants.Store(key, lifetime)
	DeferCleanup(func() { vendorGrants.Delete(key) })
}

func (f *fixture) createCredentials(ctx context.Context) {
	Expect(k8sClient.Create(ctx, f.qrvey.Credentials())).To(Succeed())
}

// createSecret creates a Secret holding data in the fixture's namespace.
func (f *fixture) createSecret(ctx context.Context, name string, data map[string][]byte) {
	Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name}, Data: data})).To(Succeed())
}

// labelNamespace sets labels on the fixture's namespace.
func (f *fixture) labelNamespace(ctx context.Context, labels map[string]string) {
	ns := &corev1.Namespace{}
	Expect(k8sClient.Get(ctx, client.ObjectKey{Name: f.ns}, ns)).To(Succeed())
	for k, v := range labels {
		ns.Labels[k] = v
	}
	Expect(k8sClient.Update(ctx, ns)).To(Succeed())
}

func (f *fixture) providerSpec() v1alpha1.EmbedProviderSpec { return f.qrvey.ProviderSpec() }

// clusterSpec is providerSpec for a ClusterEmbedProvider, whose credential
// reference must name the fixture's namespace.
func (f *fixture) clusterSpec() v1alpha1.EmbedProviderSpec {
	spec := f.providerSpec()
	spec.Qrvey.APIKeySecretRef.Namespace = f.ns
	return spec
}

func (f *fixture) createProvider(ctx context.Context) {
	Expect(k8sClient.Create(ctx, f.qrvey.EmbedProvider())).To(Succeed())
}

// createNamedProvider creates an EmbedProvider named name in the fixture's
// namespace.
func (f *fixture) createNamedProvider(ctx context.Context, name string, spec v1alpha1.EmbedProviderSpec) {
	Expect(k8sClient.Create(ctx, &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name}, Spec: spec})).To(Succeed())
}

// createClusterProvider creates a ClusterEmbedProvider serving the
// namespaces selector admits (all when nil) and deletes it when the spec
// ends.
func createClusterProvider(ctx context.Context, name string, spec v1alpha1.EmbedProviderSpec,
	selector *metav1.LabelSelector) *v1alpha1.ClusterEmbedProvider {
	cp := &v1alpha1.ClusterEmbedProvider{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.ClusterEmbedProviderSpec{EmbedProviderSpec: spec, NamespaceSelector: selector}}
	Expect(k8sClient.Create(ctx, cp)).To(Succeed())
	DeferCleanup(func() { Expect(k8sClient.Delete(ctx, cp)).To(Succeed()) })
	return cp
}

func (f *fixture) request(name string, lifetime time.Duration) *v1alpha1.EmbedTokenRequest {
	return f.qrvey.Request(name, lifetime)
}

// httpRequest asks the generic HTTP provider named providerName for a token.
func (f *fixture) httpRequest(name, providerName string, lifetime time.Duration) *v1alpha1.EmbedTokenRequest {
	etr := f.request(name, lifetime)
	etr.Spec.ProviderRef.Name = providerName
	etr.Spec.VendorParams = v1alpha1.VendorParams{HTTP: &v1alpha1.HTTPParams{}}
	return etr
}

// callsFor counts vendor calls made for one request's user.
func (f *fixture) callsFor(name string) func() int {
	return func() int {
		n := 0
		for _, c := range f.sim.Calls() {
			if c.Body["userid"] == f.qrvey.UserID(name) {
				n++
			}
		}
		return n
	}
}

func get(ctx context.Context, obj client.Object) client.Object {
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
	return obj
}

// patchObject reads obj, applies change to it and patches the difference.
func patchObject[T client.Object](ctx context.Context, obj T, change func(T)) {
	get(ctx, obj)
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	change(obj)
	Expect(k8sClient.Patch(ctx, obj, patch)).To(Succeed())
}

func secretOf(ctx context.Context, etr *v1alpha1.EmbedTokenRequest) func(g Gomega) *corev1.Secret {
	return func(g Gomega) *corev1.Secret {
		s := &corev1.Secret{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: etr.Namespace, Name: etr.TargetSecretName()}, s)).To(Succeed())
		return s
	}
}

func readyCondition(ctx context.Context, etr *v1alpha1.EmbedTokenRequest) func(g Gomega) metav1.Condition {
	return func(g Gomega) metav1.Condition {
		cur := &v1alpha1.EmbedTokenRequest{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(etr), cur)).To(Succeed())
		c := meta.FindStatusCondition(cur.Status.Conditions, v1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		return *c
	}
}

func haveReason(status metav1.ConditionStatus, reason string) OmegaMatcher {
	return And(HaveField("Status", status), HaveField("Reason", reason))
}

// waitForToken waits for a token whose digest differs from previous and
// returns it.
func waitForToken(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, previous string) string {
	var token harness.Token
	Eventually(func(g Gomega) {
		token = harness.TokenOf(secretOf(ctx, etr)(g))
		g.Expect(token.Value).NotTo(BeEmpty())
		g.Expect(token.Digest()).NotTo(Equal(previous))
		cur := get(ctx, etr.DeepCopy()).(*v1alpha1.EmbedTokenRequest)
		g.Expect(cur.Status.TokenDigest).To(Equal(token.Digest()))
	}).Should(Succeed())
	return token.Value
}

func eventReasons(ctx context.Context, etr *v1alpha1.EmbedTokenRequest) []string {
	var list eventsv1.EventList
	Expect(k8sClient.List(ctx, &list, client.InNamespace(etr.Namespace))).To(Succeed())
	var reasons []string
	for _, e := range list.Items {
		if e.Regarding.Name == etr.Name {
			reasons = append(reasons, e.Reason)
		}
	}
	return reasons
}

func readyMessageOf(etr *v1alpha1.EmbedTokenRequest) string {
	if c := meta.FindStatusCondition(etr.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		return c.Message
	}
	return ""
}

// scriptedVendor answers every call with a fixed status and body, for
// answers the simulator never gives (a past or far-future expiry, an
// oversized body, any status). It counts calls and records the headers of
// the last one.
type scriptedVendor struct {
	srv   *httptest.Server
	calls atomic.Int32

	mu         sync.Mutex
	status     int
	body       []byte
	lastHeader http.Header
}

func newScriptedVendor(status int, body string) *scriptedVendor {
	v := &scriptedVendor{status: status, body: []byte(body)}
	v.srv = httptest.NewServer(http.HandlerFunc(v.serve))
	DeferCleanup(v.srv.Close)
	return v
}

func (v *scriptedVendor) serve(w http.ResponseWriter, r *http.Request) {
	v.calls.Add(1)
	v.mu.Lock()
	status, body := v.status, v.body
	v.lastHeader = r.Header.Clone()
	v.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// answer changes what later calls get.
func (v *scriptedVendor) answer(status int, body string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.status, v.body = status, []byte(body)
}

func (v *scriptedVendor) callCount() int { return int(v.calls.Load()) }

// tokenBody is a generic HTTP vendor's answer holding token until expiresAt.
func tokenBody(token string, expiresAt time.Time) string {
	b, _ := json.Marshal(map[string]string{"token": token, "expiresAt": expiresAt.UTC().Format(time.RFC3339)})
	return string(b)
}

// httpProviderSpec is a generic HTTP provider for url that sends the
// fixture's API key as x-api-key and reads .token and .expiresAt.
func httpProviderSpec(url string) v1alpha1.EmbedProviderSpec {
	return v1alpha1.EmbedProviderSpec{
		VendorConfig: v1alpha1.VendorConfig{HTTP: &v1alpha1.HTTPProvider{
			URL: url, TokenPath: ".token", ExpiresAtPath: ".expiresAt",
			Headers: []v1alpha1.HTTPHeader{{Name: "x-api-key", ValueFrom: &v1alpha1.HTTPHeaderSource{
				SecretKeyRef: v1alpha1.SecretKeySelector{Name: "qrvey-credentials", Key: "apiKey"}}}},
		}},
		AllowInsecureHTTP: strings.HasPrefix(url, "http://"),
	}
}

// managedSecrets lists the Secrets the operator wrote in namespace.
func managedSecrets(ctx context.Context, g Gomega, namespace string) []corev1.Secret {
	var list corev1.SecretList
	g.Expect(k8sClient.List(ctx, &list, client.InNamespace(namespace),
		client.MatchingLabels{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue})).To(Succeed())
	return list.Items
}

// barrierAnnotation is the annotation settle bumps; the controller ignores
// it, but changing it makes the manager reconcile the request.
const barrierAnnotation = "test.embedtokens.io/barrier"

// barriers records, per request, the barrierAnnotation values that a
// finished reconcile had read ("" when it had none); every manager the
// suite starts reports to it through controller.Options.Reconciled.
var barriers = &barrierLog{seen: map[types.NamespacedName]map[string]bool{}}

// barrierLog is the type of barriers.
type barrierLog struct {
	mu   sync.Mutex
	seen map[types.NamespacedName]map[string]bool
	next atomic.Int64
}

// observe is a controller.Options.Reconciled hook.
func (b *barrierLog) observe(etr *v1alpha1.EmbedTokenRequest) {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := client.ObjectKeyFromObject(etr)
	if b.seen[key] == nil {
		b.seen[key] = map[string]bool{}
	}
	b.seen[key][etr.Annotations[barrierAnnotation]] = true
}

// reconciled reports whether any manager has finished a reconcile of key.
func (b *barrierLog) reconciled(key types.NamespacedName) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.seen[key]) > 0
}

// observed reports whether a reconcile of key that read value has finished.
func (b *barrierLog) observed(key types.NamespacedName, value string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen[key][value]
}

// settle bumps etr's barrier annotation and waits until a reconcile that
// read it has finished. Whatever the request's state makes the controller
// do at once (call the vendor, write the Secret, restart workloads) is then
// done, so a spec asserts that nothing more happened with a plain Expect
// instead of watching a Consistently window. Only etr's namespace and name
// are used; it returns the request as the bump left it, so a spec can tell
// that the controller wrote nothing since.
func settle(ctx context.Context, etr *v1alpha1.EmbedTokenRequest) *v1alpha1.EmbedTokenRequest {
	GinkgoHelper()
	value := strconv.FormatInt(barriers.next.Add(1), 10)
	cur := &v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: etr.Namespace, Name: etr.Name}}
	patchObject(ctx, cur, func(e *v1alpha1.EmbedTokenRequest) {
		if e.Annotations == nil {
			e.Annotations = map[string]string{}
		}
		e.Annotations[barrierAnnotation] = value
	})
	Eventually(func() bool { return barriers.observed(client.ObjectKeyFromObject(cur), value) }).
		Should(BeTrue(), "a reconcile of %s read barrier %s", client.ObjectKeyFromObject(cur), value)
	return cur
}

// replaceWithClockedManager runs, until the spec ends, a manager with the
// suite's options and a fake clock in place of the suite's manager, and
// returns the clock. The manager decides by the clock but its requeues
// still wait in real time, so a spec moves the clock and then settles the
// request to have it reconciled at the new time.
func replaceWithClockedManager() *clocktesting.FakeClock {
	clk := clocktesting.NewFakeClock(time.Now())
	stopMgr()
	DeferCleanup(func() { stopMgr = startManager() })
	opts := operatorOptions()
	opts.Clock = clk
	DeferCleanup(startOperator(cfg, logr.Logger{}, 0, opts))
	return clk
}
