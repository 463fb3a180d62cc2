package egress_test

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/embedtokens/embed-token-operator/internal/provider/egress"
)

func TestPolicyCheck(t *testing.T) {
	allow := func(entries string) egress.Policy {
		a, err := egress.ParseAllowed(entries)
		if err != nil {
			t.Fatal(err)
		}
		return egress.NewPolicy(a...)
	}
	loopback1 := allow("127.0.0.1/32")
	inCluster := allow("10.96.0.0/12,fd00:10::/64")
	metadata := allow("169.254.169.254/32")
	simulator := allow("127.0.0.1:8089")
	oneService := allow("10.96.0.0/12:443,[fd00:10::/64]:8443")
	ownAddrs := []netip.Addr{netip.MustParseAddr("10.244.1.7"), netip.MustParseAddr("fd00:244::7")}
	withOwnPorts := allow("127.0.0.0/8,10.244.0.0/16,fd00:244::/64").WithOwnPorts(ownAddrs, 8443, 8081, 0)
	tests := []struct {
		addr   string
		port   uint16 // 443 when 0
		policy egress.Policy
		scope  egress.Scope
		// class is the refusing rule; "" means allowed.
		class  string
		always bool
	}{
		// Public addresses: every provider.
		{addr: "203.0.113.7", class: ""},
		{addr: "2001:db8::1", class: ""},
		{addr: "8.8.8.8", scope: egress.Cluster, class: ""},
		{addr: "172.32.0.1", class: ""},  // just outside 172.16/12
		{addr: "100.128.0.1", class: ""}, // just outside 100.64/10
		// Refused for every provider.
		{addr: "127.0.0.1", class: "loopback", always: true},
		{addr: "127.255.255.254", scope: egress.Cluster, class: "loopback", always: true},
		{addr: "::1", scope: egress.Cluster, class: "loopback", always: true},
		{addr: "169.254.169.254", scope: egress.Cluster, class: "link-local", always: true},
		{addr: "169.254.170.2", class: "link-local", always: true},
		{addr: "fe80::1", scope: egress.Cluster, class: "link-local", always: true},
		{addr: "fe80::1%eth0", class: "link-local", always: true},
		{addr: "0.0.0.0", scope: egress.Cluster, class: "unspecified", always: true},
		{addr: "0.1.2.3", class: "unspecified", always: true},
		{addr: "::", scope: egress.Cluster, class: "unspecified", always: true},
		{addr: "224.0.0.1", scope: egress.Cluster, class: "multicast", always: true},
		{addr: "239.255.255.250", class: "multicast", always: true},
		{addr: "ff02::1", scope: egress.Cluster, class: "multicast", always: true},
		{addr: "255.255.255.255", scope: egress.Cluster, class: "broadcast", always: true},
		{addr: "100.100.100.200", scope: egress.Cluster, class: "cloud metadata", always: true},
		{addr: "168.63.129.16", scope: egress.Cluster, class: "cloud metadata", always: true},
		{addr: "fd00:ec2::254", scope: egress.Cluster, class: "cloud metadata", always: true},
		// IPv4-mapped IPv6 is judged as the IPv4 address it maps.
		{addr: "::ffff:127.0.0.1", scope: egress.Cluster, class: "loopback", always: true},
		{addr: "::ffff:169.254.169.254", scope: egress.Cluster, class: "link-local", always: true},
		{addr: "::ffff:0.0.0.0", scope: egress.Cluster, class: "unspecified", always: true},
		{addr: "::ffff:224.0.0.251", scope: egress.Cluster, class: "multicast", always: true},
		{addr: "::ffff:10.1.2.3", class: "private"},
		{addr: "::ffff:10.1.2.3", scope: egress.Cluster, class: ""},
		{addr: "::ffff:203.0.113.7", class: ""},
		// Private and shared ranges: refused for EmbedProviders only.
		{addr: "10.0.0.1", class: "private"},
		{addr: "10.0.0.1", scope: egress.Cluster, class: ""},
		{addr: "172.16.0.1", class: "private"},
		{addr: "172.31.255.255", scope: egress.Cluster, class: ""},
		{addr: "192.168.1.1", class: "private"},
		{addr: "192.168.1.1", scope: egress.Cluster, class: ""},
		{addr: "100.64.0.1", class: "shared (carrier-grade NAT)"},
		{addr: "100.127.255.254", scope: egress.Cluster, class: ""},
		{addr: "fd12:3456::1", class: "private"},
		{addr: "fc00::1", scope: egress.Cluster, class: ""},
		// --allow-vendor-cidrs lets every provider reach exactly its ranges.
		{addr: "127.0.0.1", policy: loopback1, class: ""},
		{addr: "::ffff:127.0.0.1", policy: loopback1, class: ""},
		{addr: "127.0.0.2", policy: loopback1, class: "loopback", always: true},
		{addr: "::1", policy: loopback1, class: "loopback", always: true},
		{addr: "169.254.169.254", policy: loopback1, scope: egress.Cluster, class: "link-local", always: true},
		{addr: "10.100.0.5", policy: inCluster, class: ""},
		{addr: "10.0.0.5", policy: inCluster, class: "private"},
		{addr: "fd00:10::5", policy: inCluster, class: ""},
		{addr: "169.254.169.254", policy: metadata, class: ""},
		// An entry with a port opens that port only.
		{addr: "127.0.0.1", port: 8089, policy: simulator, class: ""},
		{addr: "127.0.0.1", port: 8081, policy: simulator, class: "loopback", always: true},
		{addr: "10.100.0.5", policy: oneService, class: ""},
		{addr: "10.100.0.5", port: 80, policy: oneService, class: "private"},
		{addr: "10.100.0.5", port: 80, policy: oneService, scope: egress.Cluster, class: ""},
		{addr: "fd00:10::5", port: 8443, policy: oneService, class: ""},
		{addr: "fd00:10::5", port: 443, policy: oneService, class: "private"},
		// The operator's own ports, on loopback and its own addresses, are
		// refused whatever the allow list says; elsewhere they are ports
		// like any other.
		{addr: "127.0.0.1", port: 8081, policy: withOwnPorts, scope: egress.Cluster, class: "operator's own port", always: true},
		{addr: "127.0.0.5", port: 8443, policy: withOwnPorts, class: "operator's own port", always: true},
		{addr: "::ffff:127.0.0.1", port: 8443, policy: withOwnPorts, class: "operator's own port", always: true},
		{addr: "::1", port: 8081, policy: withOwnPorts, scope: egress.Cluster, class: "operator's own port", always: true},
		{addr: "0.0.0.0", port: 8081, policy: withOwnPorts, scope: egress.Cluster, class: "operator's own port", always: true},
		{addr: "10.244.1.7", port: 8443, policy: withOwnPorts, class: "operator's own port", always: true},
		{addr: "fd00:244::7", port: 8081, policy: withOwnPorts, scope: egress.Cluster, class: "operator's own port", always: true},
		{addr: "127.0.0.1", port: 8080, policy: withOwnPorts, class: ""},
		{addr: "10.244.1.8", port: 8443, policy: withOwnPorts, class: ""},
		{addr: "203.0.113.7", port: 8443, policy: withOwnPorts, class: ""},
		{addr: "127.0.0.1", port: 0, policy: withOwnPorts, class: ""}, // 443: port 0 was ignored
		// IPv4-compatible addresses (::/96) are refused outright.
		{addr: "::127.0.0.2", scope: egress.Cluster, class: "IPv4-compatible", always: true},
		{addr: "::8.8.8.8", scope: egress.Cluster, class: "IPv4-compatible", always: true},
		{addr: "::169.254.169.254", class: "IPv4-compatible", always: true},
		{addr: "::127.0.0.2", policy: loopback1, class: "IPv4-compatible", always: true},
		// Other IPv6 forms of IPv4 addresses are judged as the IPv4 address
		// they lead to as well.
		{addr: "64:ff9b::127.0.0.1", scope: egress.Cluster, class: "NAT64 loopback", always: true},
		{addr: "64:ff9b::169.254.169.254", scope: egress.Cluster, class: "NAT64 link-local", always: true},
		{addr: "64:ff9b::10.0.0.1", class: "NAT64 private"},
		{addr: "64:ff9b::10.0.0.1", scope: egress.Cluster, class: ""},
		{addr: "64:ff9b::203.0.113.7", class: ""},
		{addr: "64:ff9b::100.100.100.200", scope: egress.Cluster, class: "NAT64 cloud metadata", always: true},
		{addr: "64:ff9b:1::a00:1", class: "local-use NAT64"},
		{addr: "64:ff9b:1::a00:1", scope: egress.Cluster, class: ""},
		{addr: "::ffff:0:127.0.0.1", scope: egress.Cluster, class: "IPv4-translated loopback", always: true},
		{addr: "::ffff:0:192.168.0.1", class: "IPv4-translated private"},
		{addr: "2002:7f00:1::1", scope: egress.Cluster, class: "6to4 loopback", always: true},
		{addr: "2002:a9fe:a9fe::1", scope: egress.Cluster, class: "6to4 link-local", always: true},
		{addr: "2002:c0a8:101::1", class: "6to4 private"},
		{addr: "2002:c0a8:101::1", scope: egress.Cluster, class: ""},
		{addr: "2002:cb00:7107::1", class: ""},
		// Teredo: server 203.0.113.7, client 127.0.0.1 (inverted: 80ff:fffe).
		{addr: "2001:0:cb00:7107::80ff:fffe", scope: egress.Cluster, class: "Teredo loopback", always: true},
		// Teredo: server 10.0.0.1, client 203.0.113.7 (inverted: 34ff:8ef8).
		{addr: "2001:0:a00:1::34ff:8ef8", class: "Teredo private"},
		{addr: "2001:0:cb00:7107::34ff:8ef8", class: ""},
		{addr: "2001:db8::1", class: ""}, // documentation, not Teredo
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s:%d", tc.scope, tc.addr, tc.port), func(t *testing.T) {
			port := cmp.Or(tc.port, 443)
			err := tc.policy.Check("vendor.test", netip.AddrPortFrom(netip.MustParseAddr(tc.addr), port), tc.scope)
			if tc.class == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var refused *egress.RefusedError
			if !errors.As(err, &refused) {
				t.Fatalf("error = %v, want a *RefusedError", err)
			}
			if refused.Class != tc.class || refused.Always != tc.always || refused.Host != "vendor.test" {
				t.Errorf("refused = %+v, want class %q, always %v", refused, tc.class, tc.always)
			}
		})
	}
}

func TestRefusedErrorNamesHostAndRule(t *testing.T) {
	tests := []struct {
		host, addr string
		scope      egress.Scope
		want       []string
	}{
		{"metadata.internal", "169.254.169.254", egress.Cluster, []string{
			"vendor host metadata.internal resolves to a link-local address (169.254.169.254)",
			"which the operator never connects to", "--allow-vendor-cidrs"}},
		{"169.254.169.254", "169.254.169.254", egress.Namespaced, []string{
			"vendor address 169.254.169.254 is a link-local address, which the operator never connects to"}},
		{"localhost", "::1", egress.Namespaced, []string{"vendor host localhost resolves to a loopback address (::1)"}},
		{"db.team-a.svc", "10.96.4.2", egress.Namespaced, []string{
			"vendor host db.team-a.svc resolves to a private address (10.96.4.2)",
			"refused for a namespaced EmbedProvider; use a ClusterEmbedProvider or --allow-vendor-cidrs"}},
		{"0.0.0.0", "0.0.0.0", egress.Cluster, []string{"vendor address 0.0.0.0 is an unspecified address"}},
		{"::127.0.0.2", "::127.0.0.2", egress.Cluster, []string{"vendor address ::127.0.0.2 is an IPv4-compatible address"}},
		{"tunnel.test", "2002:7f00:1::1", egress.Cluster, []string{
			"vendor host tunnel.test resolves to a 6to4 loopback address (2002:7f00:1::1)"}},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			err := egress.Policy{}.Check(tc.host, netip.AddrPortFrom(netip.MustParseAddr(tc.addr), 443), tc.scope)
			if err == nil {
				t.Fatal("allowed")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestOwnPortMessage(t *testing.T) {
	p := egress.NewPolicy().WithOwnPorts(nil, 8081)
	err := p.Check("localhost", netip.MustParseAddrPort("127.0.0.1:8081"), egress.Cluster)
	want := "vendor host localhost resolves to 127.0.0.1, port 8081 of the operator itself, which no provider may reach"
	if err == nil || err.Error() != want {
		t.Errorf("Check = %v, want %q", err, want)
	}
}

func TestParseAllowed(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "", want: nil},
		{in: "127.0.0.1/32", want: []string{"127.0.0.1/32"}},
		{in: " 10.0.0.0/8 , fd00::/8,, ", want: []string{"10.0.0.0/8", "fd00::/8"}},
		{in: "::ffff:127.0.0.1/128", want: []string{"127.0.0.1/32"}},
		{in: "::ffff:10.0.0.0/104", want: []string{"10.0.0.0/8"}},
		{in: "127.0.0.1:8089", want: []string{"127.0.0.1:8089"}},
		{in: "10.96.0.0/12:443, 10.96.12.34:8443", want: []string{"10.96.0.0/12:443", "10.96.12.34:8443"}},
		{in: "[fd00::1]:443,[fd00::/8]:443", want: []string{"[fd00::1]:443", "[fd00::/8]:443"}},
		{in: "[::ffff:127.0.0.1]:80", want: []string{"127.0.0.1:80"}},
		{in: "127.0.0.1", wantErr: "write 127.0.0.1/32, or 127.0.0.1:443 to open one port only"},
		{in: "::1", wantErr: "write ::1/128, or [::1]:443"},
		{in: "10.1.2.3/8", wantErr: "did you mean 10.0.0.0/8"},
		{in: "10.1.2.3/8:443", wantErr: "did you mean 10.0.0.0/8:443"},
		{in: "10.0.0.0/33", wantErr: "not a CIDR"},
		{in: "10.0.0.0/8,metadata", wantErr: `"metadata" is not a CIDR`},
		{in: "vendor.test:443", wantErr: `"vendor.test:443" is not a CIDR`},
		{in: "10.0.0.0/8:0", wantErr: "no port between 1 and 65535"},
		{in: "10.0.0.0/8:65536", wantErr: "no port between 1 and 65535"},
		{in: "10.0.0.0/8:", wantErr: "no port between 1 and 65535"},
		{in: "fd00::/8:443", wantErr: "written [fd00::/8]:443"},
		{in: "[fd00::/8]", wantErr: "neither a CIDR nor [address]:port"},
		{in: "[fd00::1:443", wantErr: "neither a CIDR nor [address]:port"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := egress.ParseAllowed(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, a := range got {
				s = append(s, a.String())
			}
			if !slices.Equal(s, tc.want) {
				t.Errorf("ParseAllowed(%q) = %v, want %v", tc.in, s, tc.want)
			}
			if again, err := egress.ParseAllowed(strings.Join(s, ",")); err != nil || !slices.Equal(again, got) {
				t.Errorf("ParseAllowed(%q) = %v, %v; want %v back", s, again, err, got)
			}
		})
	}
}
