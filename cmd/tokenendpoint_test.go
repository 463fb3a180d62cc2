package main

import (
	"flag"
	"strings"
	"testing"
)

func TestTokenEndpointFlags(t *testing.T) {
	cases := []struct {
		name, podNamespace string
		args               []string
		wantErr            string
		wantEnabled        bool
		wantNamespace      string
		wantSecret         string
		wantReusePort      bool
	}{
		{name: "the defaults serve on 8443 with the Secret named after the Service", podNamespace: "ops",
			wantEnabled: true, wantNamespace: "ops", wantSecret: "embed-token-operator-token-endpoint-tls"},
		{name: "0 turns the endpoint off", args: []string{"--token-endpoint-bind-address=0"}},
		{name: "the namespace flag wins over POD_NAMESPACE", podNamespace: "ops",
			args:        []string{"--token-endpoint-namespace=other", "--token-endpoint-cert-secret=from-cert-manager"},
			wantEnabled: true, wantNamespace: "other", wantSecret: "from-cert-manager"},
		{name: "replicas on one host network share the address with --token-endpoint-reuse-port", podNamespace: "ops",
			args:        []string{"--token-endpoint-reuse-port"},
			wantEnabled: true, wantNamespace: "ops", wantSecret: "embed-token-operator-token-endpoint-tls", wantReusePort: true},
		{name: "a Service name that is no DNS label is refused", podNamespace: "ops",
			args: []string{"--token-endpoint-service-name=Not_A_Name"}, wantEnabled: true, wantErr: "invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("POD_NAMESPACE", tc.podNamespace)
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			var f tokenEndpointFlags
			f.bind(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if f.enabled() != tc.wantEnabled {
				t.Fatalf("enabled() = %v, want %v", f.enabled(), tc.wantEnabled)
			}
			if !f.enabled() {
				return
			}
			err := f.resolve()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("resolve() = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.namespace != tc.wantNamespace || f.certSecret != tc.wantSecret || f.reusePort != tc.wantReusePort {
				t.Fatalf("namespace, secret, reuse port = %q, %q, %v; want %q, %q, %v",
					f.namespace, f.certSecret, f.reusePort, tc.wantNamespace, tc.wantSecret, tc.wantReusePort)
			}
		})
	}
}

func TestSharesPort(t *testing.T) {
	cases := []struct {
		name   string
		addr   string
		others []string
		want   bool
	}{
		{name: "the metrics server on the same port clashes", addr: ":8443", others: []string{":8443", ":8081"}, want: true},
		{name: "another host with the same port clashes too", addr: "127.0.0.1:8443", others: []string{":8443"}, want: true},
		{name: "ports of their own do not clash", addr: ":8443", others: []string{":8444", ":8081", ""}},
		{name: "disabled addresses never clash", addr: ":8443", others: []string{"0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := sharesPort(tc.addr, tc.others...); got != tc.want {
				t.Fatalf("sharesPort(%q, %q) = %v, want %v", tc.addr, tc.others, got, tc.want)
			}
		})
	}
}
