package egress_test

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/embedtokens/embed-token-operator/internal/provider/egress"
)

func TestPolicyCheck(t *testing.T) {
	loopback1 := egress.NewPolicy(netip.MustParsePrefix("127.0.0.1/32"))
	inCluster := egress.NewPolicy(netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("fd00:10::/64"))
	metadata := egress.NewPolicy(netip.MustParsePrefix("169.254.169.254/32"))
	tests := []struct {
		addr   string
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
	}
	for _, tc := range tests {
		t.Run(tc.scope.String()+"/"+tc.addr, func(t *testing.T) {
			err := tc.policy.Check("vendor.test", netip.MustParseAddr(tc.addr), tc.scope)
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
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			err := egress.Policy{}.Check(tc.host, netip.MustParseAddr(tc.addr), tc.scope)
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

func TestParseCIDRs(t *testing.T) {
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
		{in: "127.0.0.1", wantErr: "write 127.0.0.1/32"},
		{in: "::1", wantErr: "write ::1/128"},
		{in: "10.1.2.3/8", wantErr: "did you mean 10.0.0.0/8"},
		{in: "10.0.0.0/33", wantErr: "not a CIDR"},
		{in: "10.0.0.0/8,metadata", wantErr: `"metadata" is not a CIDR`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := egress.ParseCIDRs(tc.in)
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
			for _, p := range got {
				s = append(s, p.String())
			}
			if !slices.Equal(s, tc.want) {
				t.Errorf("ParseCIDRs(%q) = %v, want %v", tc.in, s, tc.want)
			}
		})
	}
}
