// Package providertest holds what every vendor's tests need, so each vendor
// package tests its own behaviour instead of re-implementing fakes: an
// in-memory credential reader, a simulator on 127.0.0.1 and error checks that
// also prove no secret leaks into a message.
package providertest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/egress"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

// Epoch is the fixed time of every test: both the request's Now and the
// simulator's clock, so expiries can be compared exactly.
var Epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// Guard lets clients reach the simulators on 127.0.0.1 and nothing else the
// egress guard refuses, as --allow-vendor-cidrs=127.0.0.1/32 does for the
// envtest suite.
var Guard = egress.Guard{Policy: egress.NewPolicy(egress.Allowed{Prefix: netip.MustParsePrefix("127.0.0.1/32")})}

// Creds maps "secret/key" to a value; it implements provider.CredentialReader
// so vendor tests need no cluster.
type Creds map[string]string

// Read implements provider.CredentialReader, failing like the controller's
// reader when the key is missing.
func (c Creds) Read(_ context.Context, ref v1alpha1.SecretKeySelector) ([]byte, error) {
	v, ok := c[ref.Name+"/"+ref.Key]
	if !ok {
		return nil, provider.Transient(v1alpha1.ReasonCredentialsNotFound, "credential Secret %s has no key %q", ref.Name, ref.Key)
	}
	return []byte(v), nil
}

// ServiceAccountToken implements provider.CredentialReader: the value of
// SAKey(ref.Name, audience), failing like the controller's reader when the
// ServiceAccount is missing.
func (c Creds) ServiceAccountToken(_ context.Context, ref v1alpha1.ServiceAccountReference, audience string) (string, error) {
	v, ok := c[SAKey(ref.Name, audience)]
	if !ok {
		return "", provider.Transient(v1alpha1.ReasonCredentialsNotFound, "ServiceAccount %s not found", ref.Name)
	}
	return v, nil
}

// SAKey is the key of Creds holding the token of ServiceAccount name for
// audience.
func SAKey(name, audience string) string { return "serviceaccount:" + name + "@" + audience }

// Ref is the selector of "name/key" in Creds.
func Ref(nameKey string) v1alpha1.SecretKeySelector {
	name, key, _ := strings.Cut(nameKey, "/")
	return v1alpha1.SecretKeySelector{Name: name, Key: key}
}

// StartSim runs a simulator on 127.0.0.1 with a fake clock at Epoch, closed
// when the test ends.
func StartSim(t testing.TB, opts vendorsim.Options) *vendorsim.Server {
	t.Helper()
	opts.Clock = clocktesting.NewFakeClock(Epoch)
	s := vendorsim.New(opts)
	if err := s.Start(); err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Request is a provider.Request at Epoch, with a real HTTP client bounded by
// timeout (one second when zero).
func Request(t testing.TB, creds Creds, timeout time.Duration) provider.Request {
	t.Helper()
	if timeout == 0 {
		timeout = time.Second
	}
	client, err := provider.NewHTTPClient(timeout, nil, Guard)
	if err != nil {
		t.Fatal(err)
	}
	return provider.Request{
		Config:      &v1alpha1.EmbedProviderSpec{},
		Params:      &v1alpha1.VendorParams{},
		Lifetime:    time.Hour,
		Credentials: creds,
		HTTPClient:  client,
		Now:         Epoch,
	}
}

// Want describes an expected classified error; the zero Want expects success.
type Want struct {
	Reason     string
	Permanent  bool
	RetryAfter time.Duration
	// Message, when set, must appear in the error's message.
	Message string
}

// CheckError asserts err matches want and that its message contains none of
// secrets (credentials, tokens), whatever the outcome.
func CheckError(t testing.TB, err error, want Want, secrets ...string) {
	t.Helper()
	if err != nil {
		NoLeak(t, err.Error(), secrets...)
	}
	if want.Reason == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want reason %s", want.Reason)
	}
	e := provider.Classify(err)
	if e.Reason != want.Reason || e.Permanent != want.Permanent || e.RetryAfter != want.RetryAfter || !strings.Contains(e.Message, want.Message) {
		t.Fatalf("error = %q (reason %s, permanent %v, retryAfter %v); want %+v", err, e.Reason, e.Permanent, e.RetryAfter, want)
	}
}

// CheckWindow asserts tok was issued at Epoch and expires ttl later.
func CheckWindow(t testing.TB, tok provider.Token, ttl time.Duration) {
	t.Helper()
	if !tok.IssuedAt.Equal(Epoch) || !tok.ExpiresAt.Equal(Epoch.Add(ttl)) {
		t.Errorf("token window = %v..%v, want %v after %v", tok.IssuedAt, tok.ExpiresAt, ttl, Epoch)
	}
}

// NoLeak fails when msg contains any non-empty secret.
func NoLeak(t testing.TB, msg string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("message leaks a secret: %q", msg)
		}
	}
}

// Serve answers every request with status and body, for response shapes the
// simulator never sends; it returns the server's URL.
func Serve(t testing.TB, status int, body string) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

// Marker stands for a token or secret inside fuzzed bodies; a marker is used
// instead of the fuzzed bytes themselves so that messages made of fixed text
// cannot match by accident.
const Marker = "tokZZ9marker"

// FuzzParser fuzzes a pure response parser with bodies made of a fuzzed
// prefix, Marker and a fuzzed suffix, under any status. It asserts the parser
// does not panic, succeeds only with a token and an expiry, keeps messages
// short, and never quotes Marker unless vendorText (the vendor's own error
// text, which messages quote on purpose) holds it. Seeds are (status,
// prefix, suffix).
func FuzzParser(f *testing.F, parse func(*provider.Response) (provider.Token, error), vendorText func(body []byte) string) {
	f.Fuzz(func(t *testing.T, status int, prefix, suffix []byte) {
		status = 100 + (status%500+500)%500
		body := append(append(append([]byte{}, prefix...), Marker...), suffix...)
		tok, err := parse(&provider.Response{Status: status, Header: http.Header{}, Body: body})
		if err == nil {
			if tok.Value == "" || tok.ExpiresAt.IsZero() {
				t.Fatalf("success without a token or expiry: %v", tok)
			}
			return
		}
		if msg := err.Error(); strings.Contains(msg, Marker) && !strings.Contains(vendorText(body), Marker) {
			t.Fatalf("error quotes the body: %v", err)
		} else if len(msg) > 512 {
			t.Fatalf("error message is %d bytes long", len(msg))
		}
	})
}
