package endpointserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// staticCerts serves httptest's certificate (localhost, 127.0.0.1), so the
// client verifies it against the matching pool.
type staticCerts struct{ cert *tls.Certificate }

func (s staticCerts) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cert, nil
}

// testCertificate returns httptest's serving certificate and a pool holding
// its issuer.
func testCertificate(t *testing.T) (staticCerts, *x509.CertPool) {
	t.Helper()
	ts := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(ts.Close)
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	return staticCerts{&ts.TLS.Certificates[0]}, pool
}

// start runs s until the test ends and returns its base URL.
func start(t *testing.T, s *Server) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start() = %v on shutdown", err)
		}
	})
	waitCtx, waitCancel := context.WithTimeout(ctx, 10*time.Second)
	defer waitCancel()
	addr := s.Addr(waitCtx)
	if addr == nil {
		t.Fatal("server never listened")
	}
	return "https://" + addr.String(), cancel, done
}

func client(pool *x509.CertPool, tlsCfg func(*tls.Config)) *http.Client {
	cfg := &tls.Config{RootCAs: pool}
	if tlsCfg != nil {
		tlsCfg(cfg)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}}
}

func TestPlaceholderAnswersNotImplemented(t *testing.T) {
	certs, pool := testCertificate(t)
	url, _, _ := start(t, New("127.0.0.1:0", NotImplemented(), certs))
	resp, err := client(pool, nil).Post(url+"/apis/embedtokens.io/v1alpha1/namespaces/a/embedtokentemplates/b/token", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var body struct{ Reason string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || body.Reason != "NotImplemented" {
		t.Fatalf("got %d %q, want 503 NotImplemented", resp.StatusCode, body.Reason)
	}
	if resp.ProtoMajor != 1 {
		t.Fatalf("negotiated %s with HTTP/2 off", resp.Proto)
	}
}

func TestTLSAndProtocols(t *testing.T) {
	certs, pool := testCertificate(t)
	cases := []struct {
		name      string
		http2     bool
		clientTLS func(*tls.Config)
		wantErr   string
		wantMajor int
	}{
		{name: "a TLS 1.1 client is refused", clientTLS: func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 },
			wantErr: "protocol version"},
		{name: "a TLS 1.2 client is served", clientTLS: func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }, wantMajor: 1},
		{name: "HTTP/2 is offered only when enabled", http2: true, wantMajor: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New("127.0.0.1:0", NotImplemented(), certs)
			s.EnableHTTP2 = tc.http2
			url, _, _ := start(t, s)
			resp, err := client(pool, tc.clientTLS).Get(url)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.ProtoMajor != tc.wantMajor {
				t.Fatalf("negotiated %s, want HTTP/%d", resp.Proto, tc.wantMajor)
			}
		})
	}
}

func TestShutdownLetsRequestsInFlightFinish(t *testing.T) {
	certs, pool := testCertificate(t)
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "done")
	})
	url, cancel, done := start(t, New("127.0.0.1:0", h, certs))
	got := make(chan string, 1)
	go func() {
		resp, err := client(pool, nil).Get(url)
		if err != nil {
			got <- err.Error()
			return
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-entered
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Start returned %v with a request in flight", err)
	default:
	}
	close(release)
	if body := <-got; body != "done" {
		t.Fatalf("request in flight got %q, want its answer", body)
	}
	if err := <-done; err != nil {
		t.Fatalf("Start() = %v after a graceful shutdown", err)
	}
}

func TestServerRunsOnEveryReplicaAndWaitsForItsCertificate(t *testing.T) {
	certs, _ := testCertificate(t)
	s := New("127.0.0.1:0", NotImplemented(), certs)
	if s.NeedLeaderElection() {
		t.Fatal("the endpoint must serve on every replica, not only the leader")
	}
	notReady := errors.New("no certificate")
	s.Ready = func(context.Context) error { return notReady }
	if err := s.Start(context.Background()); !errors.Is(err, notReady) {
		t.Fatalf("Start() = %v, want the readiness error", err)
	}
}

// answering answers every request with name, so a test sees which replica
// served it.
func answering(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, name) })
}

func TestReusePortReplicasShareOneAddress(t *testing.T) {
	certs, pool := testCertificate(t)
	cases := []struct {
		name                      string
		firstReuse, secondReuse   bool
		wantSecondListenerRefused bool
	}{
		{name: "a second listener without SO_REUSEPORT is refused the address", firstReuse: true, wantSecondListenerRefused: true},
		{name: "a listener without SO_REUSEPORT cannot be joined", secondReuse: true, wantSecondListenerRefused: true},
		{name: "two listeners with SO_REUSEPORT share the address, and one keeps answering after the other stops",
			firstReuse: true, secondReuse: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			first := New("127.0.0.1:0", answering("first"), certs)
			first.ReusePort = tc.firstReuse
			url, stopFirst, firstDone := start(t, first)
			second := New(strings.TrimPrefix(url, "https://"), answering("second"), certs)
			second.ReusePort = tc.secondReuse
			if tc.wantSecondListenerRefused {
				err := second.Start(t.Context())
				if err == nil || !strings.Contains(err.Error(), "address already in use") {
					t.Fatalf("second Start() = %v, want address already in use", err)
				}
				return
			}
			if secondURL, _, _ := start(t, second); secondURL != url {
				t.Fatalf("second replica listens on %s, want %s", secondURL, url)
			}

			// One connection per request, as new callers open them.
			c := client(pool, nil)
			c.Transport.(*http.Transport).DisableKeepAlives = true
			ask := func() string {
				t.Helper()
				resp, err := c.Get(url)
				if err != nil {
					t.Fatalf("request failed: %v", err)
				}
				defer func() { _ = resp.Body.Close() }()
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
			// The kernel picks a listener by a hash of each connection's
			// addresses and ports; 200 connections all hashing to one of two
			// listeners has a probability of 2^-199.
			seen := map[string]int{}
			for i := 0; i < 200 && len(seen) < 2; i++ {
				seen[ask()]++
			}
			if seen["first"] == 0 || seen["second"] == 0 {
				t.Fatalf("answers by replica %v, want both replicas to answer", seen)
			}

			stopFirst()
			if err := <-firstDone; err != nil {
				t.Fatalf("first Start() = %v", err)
			}
			for range 50 {
				if got := ask(); got != "second" {
					t.Fatalf("after the first replica stopped, %q answered", got)
				}
			}
		})
	}
}
