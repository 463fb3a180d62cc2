// Package endpointserver serves the token endpoint's HTTP handler over TLS
// on every replica of the manager, not only the leader, with bounded
// timeouts and header sizes and a graceful shutdown.
package endpointserver

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Limits of every connection, so a slow or hostile caller holds a
// connection and its memory for a bounded time.
const (
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout = 5 * time.Second
	// ReadTimeout bounds reading a whole request; bodies are at most a few
	// KiB.
	ReadTimeout = 10 * time.Second
	// WriteTimeout bounds a request from the end of its headers to the end
	// of the answer, and so covers the vendor call behind a cold token.
	WriteTimeout = 60 * time.Second
	// IdleTimeout bounds a kept-alive connection between requests.
	IdleTimeout = 90 * time.Second
	// MaxHeaderBytes bounds a request's headers; a bearer token is a few
	// KiB.
	MaxHeaderBytes = 64 << 10
	// ShutdownTimeout bounds how long requests in flight may finish once
	// the manager stops.
	ShutdownTimeout = 8 * time.Second
)

// CertificateSource supplies the serving certificate at each handshake, so
// a rotated certificate is served without a restart.
// servingcert.Source implements it.
type CertificateSource interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// Server is a manager Runnable serving one handler over HTTPS.
type Server struct {
	addr    string
	handler http.Handler
	certs   CertificateSource
	// EnableHTTP2 offers h2 through ALPN; off by default, as for the
	// metrics server (CVE-2023-44487).
	EnableHTTP2 bool
	// ReusePort sets SO_REUSEPORT on the listener, so several replicas
	// sharing one network namespace (pods on the host network) bind the
	// same address: the kernel spreads new connections across them, and
	// when one replica stops, its share goes to the others. Linux admits
	// only listeners of the same effective user to the group.
	ReusePort bool
	// Ready, when set, is waited for before listening, so no connection
	// is accepted before a certificate is loaded.
	Ready func(context.Context) error
	// listening receives the bound address, for tests that listen on port
	// 0.
	listening chan net.Addr
}

// New returns a Server for handler on addr (host:port) with the
// certificates of certs.
func New(addr string, handler http.Handler, certs CertificateSource) *Server {
	return &Server{addr: addr, handler: handler, certs: certs, listening: make(chan net.Addr, 1)}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: the
// endpoint answers on every replica, so losing or never winning the lease
// does not stop it.
func (s *Server) NeedLeaderElection() bool { return false }

// Addr returns the address the server listens on once it does, or nil if
// ctx ends first.
func (s *Server) Addr(ctx context.Context) net.Addr {
	select {
	case a := <-s.listening:
		s.listening <- a
		return a
	case <-ctx.Done():
		return nil
	}
}

// TLSConfig is the server's TLS configuration: TLS 1.2 or later, the
// certificate from certs at each handshake, HTTP/1.1 only unless http2.
func TLSConfig(certs CertificateSource, http2 bool) *tls.Config {
	protos := []string{"http/1.1"}
	if http2 {
		protos = []string{"h2", "http/1.1"}
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.GetCertificate, NextProtos: protos}
}

// Start implements manager.Runnable: it serves until ctx ends, then lets
// requests in flight finish for up to ShutdownTimeout.
func (s *Server) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("token-endpoint")
	if s.Ready != nil {
		if err := s.Ready(ctx); err != nil {
			return fmt.Errorf("token endpoint: %w", err)
		}
	}
	srv := &http.Server{
		Handler:           s.handler,
		TLSConfig:         TLSConfig(s.certs, s.EnableHTTP2),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
	if !s.EnableHTTP2 {
		// A non-nil empty map turns off the server's built-in HTTP/2.
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	lc := &net.ListenConfig{}
	if s.ReusePort {
		lc.Control = reusePort
	}
	ln, err := lc.Listen(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("token endpoint: listen on %s: %w", s.addr, err)
	}
	s.listening <- ln.Addr()
	logger.Info("Serving the token endpoint", "address", ln.Addr().String())
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-done:
		return fmt.Errorf("token endpoint: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Error(err, "Token endpoint requests did not finish in time")
		_ = srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("token endpoint: %w", err)
	}
	logger.Info("Stopped serving the token endpoint")
	return nil
}

// NotImplemented answers every request 503 {"reason":"NotImplemented"}:
// the listener, its certificate and its Service work before the handler
// does.
func NotImplemented() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{
			"reason": "NotImplemented", "message": "the token endpoint is not served by this build",
		})
	})
}
