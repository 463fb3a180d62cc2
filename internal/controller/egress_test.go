package controller_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider/egress"
)

// nodeCredential is what the stand-in metadata service answers: what an
// attacker would want written into their Secret.
// It is shaped like an instance-role credential, with an expiry an http
// provider can read.
const nodeCredential = `{"AccessKeyId":"ASIAFAKENODEKEY","SecretAccessKey":"node-secret-access-key",` +
	`"Token":"node-session-token","Expiration":"2099-01-01T00:00:00Z"}`

// newMetadataService stands for something the operator must never reach
// (the node's cloud metadata service, a loopback-only admin port): a real
// listener on 127.0.0.2, outside the suite's --allow-vendor-cidrs, that
// counts the connections it accepts.
func newMetadataService() *countingServer {
	return newCountingServer("127.0.0.2:0", nodeCredential)
}

// credentialSpec is a generic HTTP provider for url that reads the
// metadata service's answer as if it were a token, so only the guard stands
// between the node's credential and the attacker's Secret.
func credentialSpec(url string) v1alpha1.EmbedProviderSpec {
	spec := httpProviderSpec(url)
	spec.HTTP.TokenPath, spec.HTTP.ExpiresAtPath = ".Token", ".Expiration"
	spec.HTTP.Method = http.MethodGet
	return spec
}

var _ = Describe("Vendor egress guard", func() {
	var (
		ctx      context.Context
		f        *fixture
		metadata *countingServer
	)
	BeforeEach(func() {
		ctx = context.Background()
		f = newFixture(ctx)
		f.createCredentials(ctx)
		metadata = newMetadataService()
	})

	// expectRefused waits for the request to fail with VendorAddressNotAllowed
	// and checks that a later reconcile keeps it so, that nothing reached the refused address, and
	// nothing of its answer is anywhere in the status or a Secret.
	expectRefused := func(etr *v1alpha1.EmbedTokenRequest, says ...string) {
		matchers := []OmegaMatcher{haveReason(metav1.ConditionFalse, v1alpha1.ReasonVendorAddressNotAllowed)}
		for _, s := range says {
			matchers = append(matchers, HaveField("Message", ContainSubstring(s)))
		}
		Eventually(readyCondition(ctx, etr)).Should(And(matchers...))
		cur := get(ctx, etr).(*v1alpha1.EmbedTokenRequest)
		Expect(meta.IsStatusConditionTrue(cur.Status.Conditions, v1alpha1.ConditionStalled)).To(BeTrue(), "a refusal is permanent")
		Expect(cur.Status.RenewAt.Time).To(BeTemporally(">", time.Now().Add(time.Minute)), "retried at the slowest backoff")
		for _, c := range cur.Status.Conditions {
			for _, leak := range []string{"ASIAFAKENODEKEY", "node-secret-access-key", "node-session-token", apiKey} {
				Expect(c.Message).NotTo(ContainSubstring(leak), "condition %s", c.Type)
			}
		}
		settle(ctx, etr)
		Expect(metadata.conns.Load()).To(BeZero(), "nothing is sent to a refused address")
		Expect(managedSecrets(ctx, Default, f.ns)).To(BeEmpty())
	}

	DescribeTable("refuses a namespaced EmbedProvider's address before anything is sent",
		func(url func() string, says ...string) {
			f.createNamedProvider(ctx, "attacker", credentialSpec(url()))
			etr := f.httpRequest("steal", "attacker", time.Hour)
			Expect(k8sClient.Create(ctx, etr)).To(Succeed())
			expectRefused(etr, says...)
		},
		Entry("a loopback address outside --allow-vendor-cidrs", func() string { return metadata.srv.URL + "/admin" },
			"vendor address 127.0.0.2 is a loopback address, which the operator never connects to", "--allow-vendor-cidrs"),
		Entry("the cloud metadata address", func() string { return "http://169.254.169.254/latest/meta-data/iam/security-credentials/node" },
			"vendor address 169.254.169.254 is a link-local address, which the operator never connects to"),
		Entry("a name that resolves to the metadata address", func() string {
			testDNS.Set("metadata.egress.test", netip.MustParseAddr("169.254.169.254"))
			return "http://metadata.egress.test/latest/meta-data/"
		}, "vendor host metadata.egress.test resolves to a link-local address (169.254.169.254)"),
		Entry("a name that resolves to loopback", func() string {
			testDNS.Set("loopback.egress.test", netip.MustParseAddr("127.0.0.2"))
			return "http://loopback.egress.test:" + strconv.Itoa(int(metadata.port)) + "/admin"
		}, "vendor host loopback.egress.test resolves to a loopback address (127.0.0.2)"),
		Entry("a name that resolves to the IPv4-mapped form of loopback", func() string {
			testDNS.Set("mapped.egress.test", netip.MustParseAddr("::ffff:127.0.0.2"))
			return "http://mapped.egress.test:" + strconv.Itoa(int(metadata.port)) + "/admin"
		}, "vendor host mapped.egress.test resolves to a loopback address (127.0.0.2)"),
		Entry("a redirect from an allowed vendor to a refused address", func() string {
			origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, metadata.srv.URL+"/latest/meta-data/", http.StatusFound)
			}))
			DeferCleanup(origin.Close)
			Expect(origin.URL).To(HavePrefix("http://127.0.0.1:"), "the origin is allowed")
			return origin.URL + "/token"
		}, "redirect to another host (127.0.0.2:", "refused: vendor address 127.0.0.2 is a loopback address"),
		// Refused in the dialer's control hook, before connect: no packet
		// leaves the machine.
		Entry("a private address", func() string { return "http://10.255.0.1/token" },
			"vendor address 10.255.0.1 is a private address, refused for a namespaced EmbedProvider; use a ClusterEmbedProvider or --allow-vendor-cidrs"),
	)

	It("refuses loopback outside --allow-vendor-cidrs for a ClusterEmbedProvider too, and lets it reach the allowed range", func() {
		clusterProvider := func(name, url string) {
			spec := httpProviderSpec(url)
			spec.HTTP.Headers[0].ValueFrom.SecretKeyRef.Namespace = f.ns
			createClusterProvider(ctx, name+"-"+f.ns, spec, nil)
		}
		vendor := newScriptedVendor(http.StatusOK, tokenBody("cluster-token", time.Now().Add(time.Hour)))
		clusterProvider("allowed", vendor.srv.URL)
		clusterProvider("refused", metadata.srv.URL)

		ok := f.httpRequest("allowed", "allowed-"+f.ns, time.Hour)
		ok.Spec.ProviderRef.Kind = "ClusterEmbedProvider"
		Expect(k8sClient.Create(ctx, ok)).To(Succeed())
		Expect(waitForToken(ctx, ok, "")).To(Equal("cluster-token"))

		refused := f.httpRequest("refused", "refused-"+f.ns, time.Hour)
		refused.Spec.ProviderRef.Kind = "ClusterEmbedProvider"
		Expect(k8sClient.Create(ctx, refused)).To(Succeed())
		Eventually(readyCondition(ctx, refused)).Should(And(
			haveReason(metav1.ConditionFalse, v1alpha1.ReasonVendorAddressNotAllowed),
			HaveField("Message", ContainSubstring("vendor address 127.0.0.2 is a loopback address")),
			HaveField("Message", Not(ContainSubstring("namespaced")))))
		settle(ctx, refused)
		Expect(metadata.conns.Load()).To(BeZero())
	})

	It("keeps allowInsecureHTTP working for a namespaced EmbedProvider within the allowed range", func() {
		vendor := newScriptedVendor(http.StatusOK, tokenBody("plain-http-token", time.Now().Add(time.Hour)))
		Expect(vendor.srv.URL).To(HavePrefix("http://127.0.0.1:"))
		f.createNamedProvider(ctx, "simulator", httpProviderSpec(vendor.srv.URL))
		etr := f.httpRequest("plain", "simulator", time.Hour)
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		Expect(waitForToken(ctx, etr, "")).To(Equal("plain-http-token"))
		Expect(strings.Contains(metadata.srv.URL, "127.0.0.2")).To(BeTrue())
		Expect(metadata.conns.Load()).To(BeZero())
	})
})

// countingServer answers every call on addr (an address with port 0: any
// free one) with body and counts the connections it accepts, so a spec can
// prove nothing was sent to it.
type countingServer struct {
	srv   *httptest.Server
	conns atomic.Int32
	port  uint16
}

func newCountingServer(addr, body string) *countingServer {
	l, err := net.Listen("tcp", addr)
	Expect(err).NotTo(HaveOccurred(), "all of 127.0.0.0/8 is loopback on Linux")
	c := &countingServer{port: l.Addr().(*net.TCPAddr).AddrPort().Port()}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}))
	c.srv.Listener = l
	c.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.conns.Add(1)
		}
	}
	c.srv.Start()
	DeferCleanup(c.srv.Close)
	return c
}

// newCountingVendor is a countingServer on addr answering with a token.
func newCountingVendor(addr string) *countingServer {
	return newCountingServer(addr, tokenBody("port-token", time.Now().Add(time.Hour)))
}

var _ = Describe("Vendor egress guard with ports", Ordered, func() {
	var vendor, otherPort, ownPort *countingServer
	BeforeAll(func() {
		vendor, otherPort = newCountingVendor("127.0.0.3:0"), newCountingVendor("127.0.0.3:0")
		ownPort = newCountingVendor("127.0.0.1:0") // stands for the manager's health probe port
		opts := operatorOptions()
		opts.CredentialCheckInterval = time.Second
		// As --allow-vendor-cidrs=127.0.0.1/32,127.0.0.3:<port>.
		opts.AllowVendorCIDRs = append(slices.Clone(allowVendorCIDRs),
			egress.Allowed{Prefix: netip.MustParsePrefix("127.0.0.3/32"), Port: vendor.port})
		opts.OwnPorts = []uint16{ownPort.port}
		stopMgr()
		stopMgr = startOperator(cfg, logr.Logger{}, 0, opts)
		DeferCleanup(func() {
			stopMgr()
			stopMgr = startManager()
		})
	})

	It("reaches an allowed address only on its allowed port, and never the operator's own ports", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		f.createCredentials(ctx)
		request := func(name string, v *countingServer) *v1alpha1.EmbedTokenRequest {
			f.createNamedProvider(ctx, name, httpProviderSpec(v.srv.URL+"/token"))
			etr := f.httpRequest(name, name, time.Hour)
			Expect(k8sClient.Create(ctx, etr)).To(Succeed())
			return etr
		}
		allowed := request("allowed-port", vendor)
		other := request("other-port", otherPort)
		own := request("own-port", ownPort)

		Expect(waitForToken(ctx, allowed, "")).To(Equal("port-token"))
		Eventually(readyCondition(ctx, other)).Should(And(
			haveReason(metav1.ConditionFalse, v1alpha1.ReasonVendorAddressNotAllowed),
			HaveField("Message", ContainSubstring("vendor address 127.0.0.3 is a loopback address"))))
		Eventually(readyCondition(ctx, own)).Should(And(
			haveReason(metav1.ConditionFalse, v1alpha1.ReasonVendorAddressNotAllowed),
			HaveField("Message", ContainSubstring(fmt.Sprintf("port %d of the operator itself", ownPort.port)))))
		Expect(otherPort.conns.Load()).To(BeZero(), "nothing is sent to a port the entry does not open")
		Expect(ownPort.conns.Load()).To(BeZero(), "nothing is sent to the operator's own port")
	})
})
