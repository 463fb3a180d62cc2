package provider_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/egress"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// metadataAnswer is what the stand-in for a metadata service would return;
// it must never reach an error message.
const metadataAnswer = "AccessKeyId=ASIAFAKE SecretAccessKey=node-credential"

func TestNewHTTPClientEgressGuard(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("cannot listen on 127.0.0.2 (all of 127.0.0.0/8 is loopback on Linux): %v", err)
	}
	var metadataConns atomic.Int32
	metadata := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, metadataAnswer)
	}))
	metadata.Listener = l
	metadata.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			metadataConns.Add(1)
		}
	}
	metadata.Start()
	defer metadata.Close()
	metadataHost := strings.TrimPrefix(metadata.URL, "http://")
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	}))
	defer origin.Close()

	tests := []struct {
		name  string
		guard egress.Guard
		url   string
		says  string
	}{
		{name: "a loopback address outside the allow list", guard: pt.Guard, url: metadata.URL + "/latest/meta-data/",
			says: "vendor address 127.0.0.2 is a loopback address, which the operator never connects to"},
		{name: "the link-local metadata address", guard: pt.Guard, url: "http://169.254.169.254/latest/meta-data/",
			says: "vendor address 169.254.169.254 is a link-local address"},
		{name: "a name resolving to loopback", guard: egress.Guard{Scope: egress.Cluster}, url: "http://localhost:" + metadata.URL[strings.LastIndex(metadata.URL, ":")+1:],
			says: "vendor host localhost resolves to a loopback address (127.0.0.1)"},
		{name: "a redirect from an allowed vendor to a refused address", guard: pt.Guard, url: origin.URL + "/?to=" + metadata.URL,
			says: "redirect to another host (" + metadataHost + ") refused: vendor address 127.0.0.2 is a loopback address"},
		{name: "a redirect to the metadata address", guard: pt.Guard, url: origin.URL + "/?to=http://169.254.169.254/latest",
			says: "redirect to another host (169.254.169.254) refused: vendor address 169.254.169.254 is a link-local address"},
		{name: "a private address for a namespaced provider", guard: pt.Guard, url: "https://10.255.0.1/token",
			says: "vendor address 10.255.0.1 is a private address, refused for a namespaced EmbedProvider"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, err := provider.NewHTTPClient(5*time.Second, nil, tc.guard)
			if err != nil {
				t.Fatal(err)
			}
			_, err = doGet(t, client, tc.url)
			pt.CheckError(t, err, pt.Want{Reason: v1alpha1.ReasonVendorAddressNotAllowed, Permanent: true, Message: tc.says},
				httpSecret, metadataAnswer, "node-credential")
			if n := metadataConns.Load(); n != 0 {
				t.Errorf("the refused address accepted %d connections", n)
			}
		})
	}
}
