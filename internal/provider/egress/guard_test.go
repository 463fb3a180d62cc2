package egress_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/embedtokens/embed-token-operator/internal/provider/egress"
	"github.com/embedtokens/embed-token-operator/internal/provider/egress/egresstest"
)

// countingServer is an HTTP server on addr that counts the connections it
// accepts, so a test can prove a refused dial never reached it.
type countingServer struct {
	*httptest.Server
	conns atomic.Int32
}

func startCounting(t *testing.T, addr string) *countingServer {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("cannot listen on %s (all of 127.0.0.0/8 is loopback on Linux): %v", addr, err)
	}
	s := &countingServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "secret from "+addr)
	}))
	s.Listener = l
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func guardedClient(g egress.Guard) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: g.DialContext}, Timeout: 5 * time.Second}
}

func wantRefused(t *testing.T, err error, host, class string) {
	t.Helper()
	var refused *egress.RefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("error = %v, want a *RefusedError", err)
	}
	if refused.Host != host || refused.Class != class {
		t.Errorf("refused %+v, want host %q class %q", refused, host, class)
	}
}

func TestDialRefusesBeforeConnecting(t *testing.T) {
	srv := startCounting(t, "127.0.0.2:0")
	srvPort := srv.Listener.Addr().(*net.TCPAddr).AddrPort().Port()
	port := int(srvPort)
	allowed := egress.Guard{Policy: egress.NewPolicy(egress.Allowed{Prefix: netip.MustParsePrefix("127.0.0.2/32")})}
	otherPort := egress.Guard{Policy: egress.NewPolicy(egress.Allowed{Prefix: netip.MustParsePrefix("127.0.0.2/32"), Port: srvPort + 1})}
	ownPort := egress.Guard{Policy: allowed.Policy.WithOwnPorts(nil, srvPort)}
	tests := []struct {
		name   string
		guard  egress.Guard
		url    string
		host   string
		class  string
		reach  bool
		nConns int32
	}{
		{name: "a loopback address outside the allow list", guard: egress.Guard{Scope: egress.Cluster},
			url: srv.URL, host: "127.0.0.2", class: "loopback"},
		{name: "a name resolving to loopback", guard: egress.Guard{Scope: egress.Cluster},
			url: "http://localhost:" + strconv.Itoa(port), host: "localhost", class: "loopback"},
		{name: "link-local metadata", guard: allowed, url: "http://169.254.169.254/latest/meta-data/",
			host: "169.254.169.254", class: "link-local"},
		{name: "IPv4-mapped loopback", guard: egress.Guard{},
			url: "http://[::ffff:127.0.0.2]:" + strconv.Itoa(port), host: "::ffff:127.0.0.2", class: "loopback"},
		{name: "IPv4-compatible loopback", guard: allowed,
			url: "http://[::127.0.0.2]:" + strconv.Itoa(port), host: "::127.0.0.2", class: "IPv4-compatible"},
		{name: "an allowed address on a port not allowed", guard: otherPort, url: srv.URL, host: "127.0.0.2", class: "loopback"},
		{name: "the operator's own port in the allowed range", guard: ownPort, url: srv.URL, host: "127.0.0.2", class: "operator's own port"},
		{name: "the allowed range", guard: allowed, url: srv.URL, reach: true, nConns: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.conns.Load()
			resp, err := guardedClient(tc.guard).Get(tc.url)
			if tc.reach {
				if err != nil {
					t.Fatal(err)
				}
				_ = resp.Body.Close()
			} else {
				if err == nil {
					_ = resp.Body.Close()
					t.Fatal("connected")
				}
				wantRefused(t, err, tc.host, tc.class)
			}
			if got := srv.conns.Load() - before; got != tc.nConns {
				t.Errorf("server accepted %d connections, want %d", got, tc.nConns)
			}
		})
	}
}

// A name that first resolves to an allowed address and later to a refused
// one is refused on the later connection: the check is on the address
// dialled, not on an earlier lookup.
func TestDialRefusesARebindingName(t *testing.T) {
	good := startCounting(t, "127.0.0.1:0")
	port := good.Listener.Addr().(*net.TCPAddr).Port
	bad := startCounting(t, "127.0.0.2:"+strconv.Itoa(port))
	dns := egresstest.NewDNS()
	dns.Set("vendor.test", netip.MustParseAddr("127.0.0.1"))
	client := guardedClient(egress.Guard{Policy: egress.NewPolicy(egress.Allowed{Prefix: netip.MustParsePrefix("127.0.0.1/32")}), Resolver: dns.Resolver()})
	target := "http://vendor.test:" + strconv.Itoa(port) + "/token"

	resp, err := client.Get(target)
	if err != nil {
		t.Fatalf("first call to the allowed address: %v", err)
	}
	_ = resp.Body.Close()
	client.CloseIdleConnections()

	dns.Set("vendor.test", netip.MustParseAddr("127.0.0.2"))
	resp, err = client.Get(target)
	if err == nil {
		_ = resp.Body.Close()
		t.Fatal("the rebound name was reached")
	}
	wantRefused(t, err, "vendor.test", "loopback")
	if n := bad.conns.Load(); n != 0 {
		t.Errorf("the refused address accepted %d connections", n)
	}
	if n := good.conns.Load(); n != 1 {
		t.Errorf("the allowed address accepted %d connections, want 1", n)
	}
}

func TestCheckURL(t *testing.T) {
	dns := egresstest.NewDNS()
	dns.Set("metadata.test", netip.MustParseAddr("169.254.169.254"))
	dns.Set("mixed.test", netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("10.0.0.7"))
	dns.Set("public.test", netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8::7"))
	dns.Set("service.test", netip.MustParseAddr("10.96.0.7"))
	policy := egress.NewPolicy(egress.Allowed{Prefix: netip.MustParsePrefix("10.96.0.0/12"), Port: 443})
	tests := []struct {
		url   string
		scope egress.Scope
		class string
	}{
		{url: "http://metadata.test/", scope: egress.Cluster, class: "link-local"},
		{url: "https://mixed.test/", class: "private"},
		{url: "https://mixed.test/", scope: egress.Cluster},
		{url: "https://public.test/"},
		{url: "https://192.168.0.1/", class: "private"},
		{url: "https://[::ffff:169.254.169.254]/", scope: egress.Cluster, class: "link-local"},
		{url: "https://[::127.0.0.1]/", scope: egress.Cluster, class: "IPv4-compatible"},
		{url: "https://service.test/"}, // the scheme's port, 443, is allowed
		{url: "https://service.test:443/"},
		{url: "http://service.test/", class: "private"},
		{url: "https://service.test:8443/", class: "private"},
		{url: "https://unknown.test/"}, // nothing to check: whoever dials resolves it
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			err = egress.Guard{Policy: policy, Scope: tc.scope, Resolver: dns.Resolver()}.CheckURL(context.Background(), u)
			if tc.class == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantRefused(t, err, u.Hostname(), tc.class)
		})
	}
}

func TestProxy(t *testing.T) {
	proxyURL := &url.URL{Scheme: "http", Host: "proxy.test:3128"}
	viaProxy := func(*http.Request) (*url.URL, error) { return proxyURL, nil }
	direct := func(*http.Request) (*url.URL, error) { return nil, nil }
	tests := []struct {
		name   string
		next   func(*http.Request) (*url.URL, error)
		target string
		want   *url.URL
		class  string
	}{
		{name: "a public target goes through the proxy", next: viaProxy, target: "https://203.0.113.7/token", want: proxyURL},
		{name: "the metadata service is not proxied", next: viaProxy, target: "http://169.254.169.254/latest", class: "link-local"},
		{name: "a private target of a namespaced provider is not proxied", next: viaProxy, target: "https://10.1.2.3/token", class: "private"},
		{name: "a target the proxy skips is left to the dialer", next: direct, target: "http://169.254.169.254/latest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, tc.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := egress.Guard{}.Proxy(tc.next)(req)
			if tc.class != "" {
				wantRefused(t, err, req.URL.Hostname(), tc.class)
				if got != nil {
					t.Errorf("proxy %v returned with the error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Proxy = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// The connection to a proxy is checked like any other: a proxy on a refused
// address is never contacted.
func TestProxyDialIsChecked(t *testing.T) {
	proxy := startCounting(t, "127.0.0.2:0")
	proxyURL, err := url.Parse(proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	g := egress.Guard{}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		Proxy: g.Proxy(http.ProxyURL(proxyURL)), DialContext: g.DialContext}}
	resp, err := client.Get("http://203.0.113.7/token")
	if err == nil {
		_ = resp.Body.Close()
		t.Fatal("the proxy was reached")
	}
	wantRefused(t, err, "127.0.0.2", "loopback")
	if n := proxy.conns.Load(); n != 0 {
		t.Errorf("the proxy accepted %d connections", n)
	}
	if strings.Contains(err.Error(), "secret from") {
		t.Errorf("error %q holds a response", err)
	}
}
