package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider/egress"
)

// MaxResponseBytes bounds what is read from a vendor, so a misbehaving
// endpoint cannot exhaust the manager's memory.
const MaxResponseBytes = 1 << 20

// maxRetryAfter caps a vendor's Retry-After so a bad header cannot park a
// request for days.
const maxRetryAfter = 10 * time.Minute

// NewHTTPClient builds the client for one provider: every connection it
// opens (redirects, chained calls, the dial to a proxy) is checked by guard
// after DNS resolution, certificates are always verified (against roots,
// or the system roots when roots is nil; see CertPool), the timeout bounds
// the whole call, and redirects are followed only to the same host so
// credentials never travel to another one. roots is only read, so one pool
// may serve many clients.
func NewHTTPClient(timeout time.Duration, roots *x509.CertPool, guard egress.Guard) (*http.Client, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = guard.DialContext
	transport.Proxy = guard.Proxy(http.ProxyFromEnvironment)
	if roots != nil {
		transport.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return &redirectError{msg: "too many redirects"}
			}
			if req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
				msg := fmt.Sprintf("redirect to another host (%s) refused", req.URL.Host)
				// Say why the target is refused if the guard would refuse
				// it anyway: that is the more useful reason.
				return &redirectError{msg: msg, err: guard.CheckURL(req.Context(), req.URL)}
			}
			return nil
		},
	}, nil
}

// Bounds on a provider's CA bundle (caBundleSecretRef). The bundle adds
// private CAs to the system roots, so it never needs to repeat the public
// ones; the bounds keep what one bundle costs to parse and to keep small.
const (
	// MaxCABundleBytes bounds a CA bundle's size.
	MaxCABundleBytes = 128 << 10
	// MaxCABundleCertificates bounds the certificates in a CA bundle.
	MaxCABundleCertificates = 100
)

// CertPool returns the system roots plus the certificates in caPEM, or a
// permanent InvalidCredentials error when caPEM holds none, or is larger
// than MaxCABundleBytes or holds more than MaxCABundleCertificates
// certificates (checked before any is parsed), so a provider's CA bundle
// can be checked without building a client.
func CertPool(caPEM []byte) (*x509.CertPool, error) {
	if len(caPEM) > MaxCABundleBytes {
		return nil, Permanent(v1alpha1.ReasonInvalidCredentials, "CA bundle is %d bytes, more than the %d accepted; "+
			"it need only hold the private CAs, not the system roots", len(caPEM), MaxCABundleBytes)
	}
	if n := countPEMCertificates(caPEM); n > MaxCABundleCertificates {
		return nil, Permanent(v1alpha1.ReasonInvalidCredentials, "CA bundle holds %d certificates, more than the %d accepted; "+
			"it need only hold the private CAs, not the system roots", n, MaxCABundleCertificates)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, Permanent(v1alpha1.ReasonInvalidCredentials, "CA bundle holds no PEM certificate")
	}
	return pool, nil
}

// countPEMCertificates counts the CERTIFICATE blocks in caPEM, as
// x509.CertPool.AppendCertsFromPEM finds them, without parsing them.
func countPEMCertificates(caPEM []byte) int {
	n := 0
	for len(caPEM) > 0 {
		var block *pem.Block
		if block, caPEM = pem.Decode(caPEM); block == nil {
			break
		}
		if block.Type == "CERTIFICATE" && len(block.Headers) == 0 {
			n++
		}
	}
	return n
}

// Response is a vendor's answer, read in full up to MaxResponseBytes.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends req and reads the answer. Transport failures come back as
// transient VendorUnavailable errors that name neither the URL's query nor
// any header, since those may carry credentials. The answer's Date header
// sets VendorClockSkew for the vendor WithVendor named on ctx.
func Do(ctx context.Context, client *http.Client, req *http.Request) (*Response, error) {
	sent := time.Now()
	resp, err := client.Do(req.WithContext(ctx)) //nolint:gosec // G704: calling the configured vendor is the point; the client's egress guard decides where it may connect
	if err != nil {
		return nil, transportError(ctx, client, err)
	}
	observeClockSkew(ctx, resp.Header, sent, time.Now())
	defer resp.Body.Close() //nolint:errcheck // read-only body
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, transportError(ctx, client, err)
	}
	if len(body) > MaxResponseBytes {
		return nil, Transient(v1alpha1.ReasonInvalidResponse, "vendor response is larger than %d bytes", MaxResponseBytes)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// redirectError is a redirect the client refused to follow; its text names
// only the target host (and, through err, the egress rule that also refuses
// it), so it is safe to show.
type redirectError struct {
	msg string
	err error
}

func (e *redirectError) Error() string { return e.msg }

func (e *redirectError) Unwrap() error { return e.err }

func transportError(ctx context.Context, client *http.Client, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err // drop the URL: it may carry credentials in its query
	}
	var certErr *tls.CertificateVerificationError
	var redirErr *redirectError
	var refused *egress.RefusedError
	switch {
	case errors.As(err, &refused):
		// Before the timeout and unreachable cases: nothing was sent, and
		// retrying will not change the rule.
		msg := refused.Error()
		if errors.As(err, &redirErr) {
			msg = redirErr.msg + ": " + msg
		}
		return &Error{Reason: v1alpha1.ReasonVendorAddressNotAllowed, Message: msg, Permanent: true}
	case uerr != nil && uerr.Timeout() || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		return &Error{Reason: v1alpha1.ReasonVendorUnavailable, Message: fmt.Sprintf("vendor did not answer within %s", client.Timeout)}
	case errors.As(err, &certErr):
		// The condition shows only the message, so the cause goes in it:
		// without it a person sees "unreachable" for a trust problem.
		return &Error{Reason: v1alpha1.ReasonVendorUnavailable, Message: fmt.Sprintf(
			"vendor unreachable: its TLS certificate is not trusted (%v); put the CA that signed it in the Secret named by caBundleSecretRef", certErr.Err)}
	case errors.As(err, &redirErr):
		return &Error{Reason: v1alpha1.ReasonVendorUnavailable, Message: "vendor unreachable: " + redirErr.Error()}
	}
	return &Error{Reason: v1alpha1.ReasonVendorUnavailable, Message: "vendor unreachable", Err: err}
}

// CheckStatus turns a non-2xx answer into a classified error. detail is a
// vendor-specific explanation parsed from the error body (never the raw body).
// It is the one place HTTP statuses become reasons: 401 and 403 are
// VendorUnauthorized, 429 VendorQuotaExceeded, 408 and 5xx
// VendorUnavailable, any other VendorRejected; Retry-After is kept on every
// one of them.
func CheckStatus(resp *Response, detail string) error {
	code := resp.Status
	if code >= 200 && code < 300 {
		return nil
	}
	msg := fmt.Sprintf("vendor answered HTTP %d", code)
	if detail != "" {
		msg += ": " + detail
	}
	e := &Error{Message: msg, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		e.Reason, e.Permanent = v1alpha1.ReasonVendorUnauthorized, true
	case code == http.StatusTooManyRequests:
		e.Reason = v1alpha1.ReasonVendorQuotaExceeded
	case code >= 500 || code == http.StatusRequestTimeout:
		e.Reason = v1alpha1.ReasonVendorUnavailable
	default:
		e.Reason, e.Permanent = v1alpha1.ReasonVendorRejected, true
	}
	return e
}

// retryAfter reads a Retry-After header in either of its forms.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// DecodeJSON parses a vendor body into v, describing garbage without echoing
// it: the body of a failed parse might still hold a token.
func DecodeJSON(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return Transient(v1alpha1.ReasonInvalidResponse, "vendor response is not the expected JSON (%s)", DescribeBody(body))
	}
	return nil
}

// DescribeBody characterises a body for an error message without quoting it.
func DescribeBody(body []byte) string {
	trimmed := body
	for len(trimmed) > 0 && (trimmed[0] == ' ' || trimmed[0] == '\n' || trimmed[0] == '\r' || trimmed[0] == '\t') {
		trimmed = trimmed[1:]
	}
	kind := "text"
	switch {
	case len(trimmed) == 0:
		return "empty body"
	case trimmed[0] == '<':
		kind = "an HTML or XML document"
	case trimmed[0] == '{' || trimmed[0] == '[':
		kind = "JSON of another shape"
	case !utf8Printable(trimmed):
		kind = "binary data"
	}
	return fmt.Sprintf("%s, %d bytes", kind, len(body))
}

func utf8Printable(b []byte) bool {
	for _, c := range b[:min(len(b), 64)] {
		if c < 0x09 || (c > 0x0d && c < 0x20) {
			return false
		}
	}
	return true
}
