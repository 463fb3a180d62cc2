package provider_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// httpSecret stands for a credential or token a request or body may carry.
const httpSecret = "tok_9f8e7d6c5b4a3210"

// doGet sends a GET for url through client with provider.Do, carrying
// httpSecret in a header as vendors' API keys travel.
func doGet(t *testing.T, client *http.Client, url string) (*provider.Response, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-api-key", httpSecret)
	return provider.Do(context.Background(), client, req)
}

// newClient is NewHTTPClient, trusting caPEM when given, for a test that
// expects it to succeed.
func newClient(t *testing.T, timeout time.Duration, caPEM []byte) *http.Client {
	t.Helper()
	var roots *x509.CertPool
	if caPEM != nil {
		var err error
		if roots, err = provider.CertPool(caPEM); err != nil {
			t.Fatalf("CertPool: %v", err)
		}
	}
	client, err := provider.NewHTTPClient(timeout, roots, pt.Guard)
	if err != nil {
		t.Fatalf("NewHTTPClient: %v", err)
	}
	return client
}

// selfSignedPEM is a new self-signed CA certificate, PEM-encoded.
func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "private CA"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestCertPoolRefusesABundleWithoutCertificates(t *testing.T) {
	tests := []struct {
		name   string
		bundle []byte
	}{
		{"text that is not PEM", []byte("not a certificate\n")},
		{"a PEM private key only", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}})},
		{"a certificate block that does not parse", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("garbage")})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pool, err := provider.CertPool(tc.bundle)
			pt.CheckError(t, err, pt.Want{Reason: v1alpha1.ReasonInvalidCredentials, Permanent: true, Message: "no PEM certificate"})
			if pool != nil {
				t.Errorf("pool returned with the error")
			}
		})
	}
}

// TestCertPoolBoundsTheBundle proves a CA bundle over the size or
// certificate bound is refused before it is parsed, with a message that
// says which bound, and that one at the bounds is accepted.
func TestCertPoolBoundsTheBundle(t *testing.T) {
	cert := selfSignedPEM(t)
	comment := func(n int) []byte { return []byte(strings.Repeat("#", n-1) + "\n") } // text between blocks is allowed
	tests := []struct {
		name    string
		bundle  []byte
		message string // "" when accepted
	}{
		{"A bundle of as many certificates as allowed is accepted",
			bytes.Repeat(cert, provider.MaxCABundleCertificates), ""},
		{"A bundle of one certificate more is refused",
			bytes.Repeat(cert, provider.MaxCABundleCertificates+1),
			fmt.Sprintf("CA bundle holds %d certificates, more than the %d accepted", provider.MaxCABundleCertificates+1, provider.MaxCABundleCertificates)},
		{"A bundle of the largest size allowed is accepted",
			append(comment(provider.MaxCABundleBytes-len(cert)), cert...), ""},
		{"A bundle one byte larger is refused",
			append(comment(provider.MaxCABundleBytes-len(cert)+1), cert...),
			fmt.Sprintf("CA bundle is %d bytes, more than the %d accepted", provider.MaxCABundleBytes+1, provider.MaxCABundleBytes)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pool, err := provider.CertPool(tc.bundle)
			if tc.message == "" {
				if err != nil || pool == nil {
					t.Fatalf("CertPool = %v, %v; want a pool", pool, err)
				}
				return
			}
			pt.CheckError(t, err, pt.Want{Reason: v1alpha1.ReasonInvalidCredentials, Permanent: true, Message: tc.message})
		})
	}
}

func TestNewHTTPClientVerifiesTheServerCertificate(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.StartTLS()
	defer srv.Close()
	serverCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	tests := []struct {
		name  string
		caPEM []byte
		want  pt.Want
	}{
		{name: "a server signed by the custom CA is trusted", caPEM: serverCA},
		{name: "without the custom CA the certificate is refused", caPEM: nil,
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "TLS certificate is not trusted (x509: certificate signed by unknown authority)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := doGet(t, newClient(t, 5*time.Second, tc.caPEM), srv.URL+"/token?key="+httpSecret)
			pt.CheckError(t, err, tc.want, httpSecret)
			if err != nil {
				if !strings.Contains(err.Error(), "certificate") {
					t.Errorf("error %q does not say the certificate is the problem", err)
				}
				return
			}
			if resp.Status != http.StatusOK || string(resp.Body) != `{"ok":true}` {
				t.Errorf("response = %d %q", resp.Status, resp.Body)
			}
		})
	}
}

func TestNewHTTPClientRedirects(t *testing.T) {
	var otherCalls atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		otherCalls.Add(1)
		_, _ = io.WriteString(w, "other host")
	}))
	defer other.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("/same", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/final", http.StatusFound) })
	mux.HandleFunc("/final", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "final, key "+fmt.Sprint(r.Header.Get("x-api-key") == httpSecret))
	})
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/collect", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	origin := httptest.NewServer(mux)
	defer origin.Close()

	tests := []struct {
		name     string
		path     string
		wantBody string
		want     pt.Want
		// says is what the error must add to its message.
		says string
	}{
		{name: "a redirect on the same host is followed with its headers", path: "/same", wantBody: "final, key true"},
		{name: "a redirect to another host is refused before it is sent", path: "/away",
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "vendor unreachable: redirect to another host"}, says: "another host"},
		{name: "an endless redirect loop is cut short", path: "/loop",
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "vendor unreachable: too many redirects"}, says: "too many redirects"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			otherCalls.Store(0)
			resp, err := doGet(t, newClient(t, 5*time.Second, nil), origin.URL+tc.path)
			pt.CheckError(t, err, tc.want, httpSecret)
			if err != nil && !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not say %q", err, tc.says)
			}
			if err == nil && string(resp.Body) != tc.wantBody {
				t.Errorf("body = %q, want %q", resp.Body, tc.wantBody)
			}
			if n := otherCalls.Load(); n != 0 {
				t.Errorf("the other host was called %d times", n)
			}
		})
	}
}

func TestDo(t *testing.T) {
	body := func(n int) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(strings.Repeat("a", n))) }
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		// url, when set, replaces the test server's.
		url     string
		timeout time.Duration
		wantLen int
		want    pt.Want
	}{
		{name: "a body of exactly MaxResponseBytes is read in full",
			handler: body(provider.MaxResponseBytes), wantLen: provider.MaxResponseBytes},
		{name: "a body over MaxResponseBytes is an invalid response",
			handler: body(provider.MaxResponseBytes + 1),
			want:    pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "larger than 1048576 bytes"}},
		{name: "a refused connection names neither the path nor the query",
			url:  "http://127.0.0.1:1/devapi/token?secret=" + httpSecret,
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "vendor unreachable"}},
		{name: "a timeout names the client's timeout and not the URL",
			handler: func(_ http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			},
			timeout: 100 * time.Millisecond,
			want:    pt.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "vendor did not answer within 100ms"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url
			if tc.handler != nil {
				srv := httptest.NewServer(tc.handler)
				defer srv.Close()
				url = srv.URL + "/devapi/token?secret=" + httpSecret
			}
			if tc.timeout == 0 {
				tc.timeout = 5 * time.Second
			}
			resp, err := doGet(t, newClient(t, tc.timeout, nil), url)
			pt.CheckError(t, err, tc.want, httpSecret, "/devapi", "?")
			if err == nil && len(resp.Body) != tc.wantLen {
				t.Errorf("read %d bytes, want %d", len(resp.Body), tc.wantLen)
			}
		})
	}
}

func TestCheckStatus(t *testing.T) {
	httpDate := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(http.TimeFormat) }
	tests := []struct {
		name       string
		status     int
		retryAfter string
		detail     string
		// reason "" means no error.
		reason    string
		permanent bool
		// the Retry-After must lie in [retryMin, retryMax]; HTTP dates
		// have whole seconds, so they need a window.
		retryMin, retryMax time.Duration
	}{
		{name: "200 is success", status: 200},
		{name: "204 is success", status: 204},
		{name: "301 that was not followed is a permanent rejection", status: 301, reason: v1alpha1.ReasonVendorRejected, permanent: true},
		{name: "400 is a permanent rejection", status: 400, detail: "appid is required", reason: v1alpha1.ReasonVendorRejected, permanent: true},
		{name: "401 is a permanent authorization failure", status: 401, reason: v1alpha1.ReasonVendorUnauthorized, permanent: true},
		{name: "403 is a permanent authorization failure", status: 403, reason: v1alpha1.ReasonVendorUnauthorized, permanent: true},
		{name: "404 is a permanent rejection", status: 404, reason: v1alpha1.ReasonVendorRejected, permanent: true},
		{name: "408 is transient", status: 408, reason: v1alpha1.ReasonVendorUnavailable},
		{name: "429 with Retry-After in seconds", status: 429, retryAfter: "30",
			reason: v1alpha1.ReasonVendorQuotaExceeded, retryMin: 30 * time.Second, retryMax: 30 * time.Second},
		{name: "429 with Retry-After as an HTTP date", status: 429, retryAfter: httpDate(90 * time.Second),
			reason: v1alpha1.ReasonVendorQuotaExceeded, retryMin: 85 * time.Second, retryMax: 90 * time.Second},
		{name: "500 is transient without a delay", status: 500, reason: v1alpha1.ReasonVendorUnavailable},
		{name: "503 with Retry-After above ten minutes is capped", status: 503, retryAfter: "3600",
			reason: v1alpha1.ReasonVendorUnavailable, retryMin: 10 * time.Minute, retryMax: 10 * time.Minute},
		{name: "503 with an HTTP date a day away is capped", status: 503, retryAfter: httpDate(24 * time.Hour),
			reason: v1alpha1.ReasonVendorUnavailable, retryMin: 10 * time.Minute, retryMax: 10 * time.Minute},
		{name: "503 with a negative Retry-After ignores it", status: 503, retryAfter: "-5", reason: v1alpha1.ReasonVendorUnavailable},
		{name: "503 with an HTTP date in the past ignores it", status: 503, retryAfter: httpDate(-time.Hour), reason: v1alpha1.ReasonVendorUnavailable},
		{name: "503 with an unreadable Retry-After ignores it", status: 503, retryAfter: "soon", reason: v1alpha1.ReasonVendorUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := &provider.Response{Status: tc.status, Header: http.Header{}}
			if tc.retryAfter != "" {
				resp.Header.Set("Retry-After", tc.retryAfter)
			}
			err := provider.CheckStatus(resp, tc.detail)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("CheckStatus(%d) = %v, want success", tc.status, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckStatus(%d) succeeded, want %s", tc.status, tc.reason)
			}
			e := provider.Classify(err)
			wantMsg := fmt.Sprintf("vendor answered HTTP %d", tc.status)
			if tc.detail != "" {
				wantMsg += ": " + tc.detail
			}
			if e.Reason != tc.reason || e.Permanent != tc.permanent || e.Message != wantMsg ||
				e.RetryAfter < tc.retryMin || e.RetryAfter > tc.retryMax {
				t.Errorf("CheckStatus(%d) = %q (reason %s, permanent %v, retryAfter %v); want %s, permanent %v, message %q, retryAfter in [%v, %v]",
					tc.status, err, e.Reason, e.Permanent, e.RetryAfter, tc.reason, tc.permanent, wantMsg, tc.retryMin, tc.retryMax)
			}
		})
	}
}

func TestDescribeBody(t *testing.T) {
	tests := []struct {
		name string
		body string
		kind string
	}{
		{"an empty body", "", ""},
		{"a body of blanks", " \r\n\t ", ""},
		{"an HTML page", "<html><body>" + httpSecret + "</body></html>", "an HTML or XML document"},
		{"XML after leading blanks", "\n  <?xml version=\"1.0\"?><token>" + httpSecret + "</token>", "an HTML or XML document"},
		{"a JSON object", `{"access":"` + httpSecret + `"}`, "JSON of another shape"},
		{"a JSON list", `["` + httpSecret + `"]`, "JSON of another shape"},
		{"binary data", "\x00\x01\x02" + httpSecret, "binary data"},
		{"plain text", "Bad Gateway " + httpSecret, "text"},
		{"UTF-8 text", "Délai dépassé " + httpSecret, "text"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := "empty body"
			if tc.kind != "" {
				want = fmt.Sprintf("%s, %d bytes", tc.kind, len(tc.body))
			}
			got := provider.DescribeBody([]byte(tc.body))
			pt.NoLeak(t, got, httpSecret)
			if got != want {
				t.Errorf("DescribeBody(%q) = %q, want %q", tc.body, got, want)
			}
		})
	}
}

// describeRE is everything DescribeBody may say: a kind from a closed list
// and a byte count. A literal "no 8-byte substring of the input" check cannot
// hold, since a body may itself read "text, 14 bytes"; a closed vocabulary is
// the property that rules out quoting.
var describeRE = regexp.MustCompile(`^(empty body|(text|binary data|an HTML or XML document|JSON of another shape), ([0-9]+) bytes)$`)

func FuzzDescribeBody(f *testing.F) {
	for _, seed := range []string{
		"", " \n", `{"access_token":"` + httpSecret + `","expires_in":3600}`, `[1,2]`,
		"<!DOCTYPE html><html><body>We'll be right back</body></html>",
		"\x00\x01binary" + httpSecret, "Service Unavailable", "text, 14 bytes", "\xff\xfe\xfd",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got := provider.DescribeBody(body)
		m := describeRE.FindStringSubmatch(got)
		if m == nil {
			t.Fatalf("DescribeBody(%q) = %q, outside the closed vocabulary", body, got)
		}
		blank := strings.Trim(string(body), " \n\r\t") == ""
		if (m[1] == "empty body") != blank {
			t.Fatalf("DescribeBody(%q) = %q, but blank is %v", body, got, blank)
		}
		if !blank && m[3] != fmt.Sprint(len(body)) {
			t.Fatalf("DescribeBody(%q) = %q, want a count of %d bytes", body, got, len(body))
		}
	})
}
