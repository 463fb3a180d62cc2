// Package vendorsim is an in-process or standalone HTTP server that speaks the
// token-issuing wire formats of the analytics vendors the operator supports.
// It exists so controller tests and local demos can exercise the real HTTP
// client code paths (auth headers, JSON bodies, error statuses, retries)
// without vendor accounts or internet access.
//
// The shared core in this file owns the token store, the call log and the
// request pipeline; fault.go adds fault injection, admin.go the /_sim/ admin
// API, and each vendor lives in its own file (qrvey.go, ...) that declares
// its routes, state and flags (vendor.go).
package vendorsim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// maxBodyBytes bounds request bodies so a misbehaving client cannot exhaust memory.
const maxBodyBytes = 1 << 20

// Server simulates vendor token endpoints and records every call so tests can
// assert how the operator talked to the vendor. All methods are safe for
// concurrent use.
type Server struct {
	clock   clock.PassiveClock
	opts    Options
	handler http.Handler
	vendors []string
	banners []func(base string, opts Options) string
	// resets forget the vendors' own state, on Reset.
	resets []func()

	mu     sync.Mutex
	calls  []*callRecord
	issued int
	tokens map[string]tokenRecord
	fault  *Fault
	// superset is the Superset routes' shared state (logins, sessions).
	superset supersetState
	// powerBIProfiles maps Power BI embed tokens to the profile they were
	// generated as.
	powerBIProfiles map[string]string
	// quickSight is the QuickSight and STS routes' shared state (STS
	// sessions, unredeemed embed URLs).
	quickSight quickSightState

	lifeMu    sync.Mutex
	srv       *http.Server
	url       string
	done      chan struct{} // closed by Close/Shutdown to cut fault delays short
	closeOnce sync.Once
}

// Call is one request to a vendor endpoint, kept so tests can assert on how
// often and with what the operator called the vendor.
type Call struct {
	Vendor string
	Path   string
	// Status is the HTTP status answered; 0 while the call is still in
	// flight and 499 when the client gave up during a fault delay.
	Status int
	Time   time.Time
	// Body is the decoded request body; callers must treat it as read-only.
	Body map[string]any
	// Token is the token issued by this call, "" on failure.
	Token string
}

// callRecord keeps the endpoint's secret field names next to the call so the
// admin API can redact them.
type callRecord struct {
	Call
	secretFields []string
}

type tokenRecord struct {
	expiresAt time.Time
	body      map[string]any
}

// Validity says whether a token would be accepted by the simulated vendor, so
// tests can check that the operator stored a live token.
type Validity string

// Validity values, also used verbatim by the admin API.
const (
	ValidityValid   Validity = "valid"
	ValidityExpired Validity = "expired"
	ValidityUnknown Validity = "unknown"
)

// String implements fmt.Stringer for readable test failures.
func (v Validity) String() string { return string(v) }

// endpoint is one vendor's token route; each vendor file builds one and the
// core wraps it with call logging, fault injection and the token store.
type endpoint struct {
	vendor       string
	method       string
	path         string
	secretFields []string // request-body fields the admin API must never reveal
	// emptyToken is the 200 body served by the EmptyToken fault.
	emptyToken any
	// exactPaths are served by this endpoint as they are, before ServeMux
	// would redirect them to a cleaned path: Bold BI Cloud's empty site
	// identifier leaves an empty segment, and a client following that
	// redirect would turn its POST into a GET.
	exactPaths []string
	// formBodies accepts application/x-www-form-urlencoded bodies too.
	formBodies bool
	// queryBody reads the URL's query as the body, for GET endpoints.
	queryBody bool
	// methodRoute mounts the endpoint for its method only, so it can share
	// its path with another vendor's endpoint (Domo's GET /oauth/token beside
	// Qlik Cloud's POST); other methods then reach the other endpoint.
	methodRoute bool
	// errorBody renders an error in the vendor's own shape.
	errorBody func(status int, msg string) any
	// issue validates the request and issues a token; body is the request
	// decoded as a JSON object and decodeErr why that failed, if it did.
	issue func(r *http.Request, body map[string]any, decodeErr error) reply
}

// rawBody is an answer body written as it is, for vendors that answer in
// another format than JSON (STS's XML).
type rawBody struct {
	contentType string
	data        []byte
}

// reply is a vendor's answer; a non-empty token is stored with lifetime ttl.
type reply struct {
	status int
	body   any
	token  string
	ttl    time.Duration
	header http.Header // added to the answer's headers, e.g. Set-Cookie
}

// New builds a Server with every vendor endpoint mounted; call Start, StartOn
// or wrap Handler to serve it.
func New(opts Options) *Server {
	s := &Server{clock: opts.Clock, opts: opts, tokens: map[string]tokenRecord{}, done: make(chan struct{})}
	if s.clock == nil {
		s.clock = clock.RealClock{}
	}
	mux := http.NewServeMux()
	exact := map[string]http.HandlerFunc{}
	for _, v := range vendors() {
		r := v.mount(s, opts)
		if r.reset != nil {
			s.resets = append(s.resets, r.reset)
		}
		s.banners = append(s.banners, v.banner)
		for _, e := range r.endpoints {
			handle := s.serveVendor(e)
			pattern := e.path
			if e.methodRoute {
				pattern = e.method + " " + e.path
			}
			mux.HandleFunc(pattern, handle)
			for _, p := range e.exactPaths {
				exact[p] = handle
			}
			if !slices.Contains(s.vendors, e.vendor) {
				s.vendors = append(s.vendors, e.vendor)
			}
		}
	}
	s.mountAdmin(mux)
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if handle, ok := exact[r.URL.Path]; ok {
			handle(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	return s
}

// Vendors lists the vendors the simulator serves, by the name its call log
// gives them: the operator's vendor name (qrvey, qlikCloud, boldBI, oauth2,
// powerBI, superset, looker, sigma, quickSight) where the vendor has its own
// block, else the product's (thoughtspot and domo, which the generic http
// block reaches, tableau, whose connected-app JWTs the jwt block signs, and
// sts, which QuickSight's web identities call). Tests check it against the
// vendors the operator supports.
func (s *Server) Vendors() []string { return slices.Clone(s.vendors) }

// Banner says, one line per vendor, where below URL each vendor is served,
// for the standalone binary's startup log once the server has started. It
// names paths and accounts, never a credential.
func (s *Server) Banner() []string {
	base := s.URL()
	lines := make([]string, len(s.banners))
	for i, b := range s.banners {
		lines[i] = b(base, s.opts)
	}
	return lines
}

// Handler returns the simulator's handler so callers can serve it themselves,
// for example behind httptest.NewTLSServer to test TLS settings.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on a random loopback port, which lets parallel tests each run
// their own simulator.
func (s *Server) Start() error { return s.StartOn("127.0.0.1:0") }

// StartOn listens on addr and serves in the background until Close.
func (s *Server) StartOn(addr string) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.srv != nil {
		return errors.New("vendorsim: server already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("vendorsim: listen on %s: %w", addr, err)
	}
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	s.url = "http://" + dialable(ln.Addr().(*net.TCPAddr))
	go func() { _ = s.srv.Serve(ln) }() // Serve only fails once the server is closed
	return nil
}

// dialable turns a wildcard listen address into one clients can dial.
func dialable(a *net.TCPAddr) string {
	if a.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", fmt.Sprint(a.Port))
	}
	return a.String()
}

// URL is the base URL to configure vendor clients with, such as
// "http://127.0.0.1:PORT"; "" until Start or StartOn succeeds.
func (s *Server) URL() string {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	return s.url
}

// Close stops serving immediately and aborts pending fault delays; it is safe
// to call more than once and on a server that was never started.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.srv != nil {
		_ = s.srv.Close() // only reports listener close errors, which do not matter here
	}
}

// Shutdown stops accepting connections and waits for in-flight requests until
// ctx ends, so the standalone binary can exit gracefully.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() { close(s.done) })
	s.lifeMu.Lock()
	srv := s.srv
	s.lifeMu.Unlock()
	if srv == nil {
		return nil
	}
	if err := srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("vendorsim: shutdown: %w", err)
	}
	return nil
}

// Calls returns a snapshot of the call log, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		out[i] = c.Call
	}
	return out
}

// CallCount is the number of vendor endpoint calls (admin calls excluded),
// the usual assertion for "the operator did not call the vendor again".
func (s *Server) CallCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// IssuedCount is the number of tokens successfully issued.
func (s *Server) IssuedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// Reset forgets calls, tokens and faults so one server can serve many test cases.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls, s.issued, s.tokens, s.fault = nil, 0, map[string]tokenRecord{}, nil
	for _, reset := range s.resets {
		reset()
	}
}

// Validate reports whether token was issued by this server and has not
// expired by the current time of Options.Clock.
func (s *Server) Validate(token string) Validity {
	v, _ := s.validate(token)
	return v
}

func (s *Server) validate(token string) (Validity, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.tokens[token]
	switch {
	case !ok:
		return ValidityUnknown, time.Time{}
	case s.clock.Now().Before(rec.expiresAt):
		return ValidityValid, rec.expiresAt
	default:
		return ValidityExpired, rec.expiresAt
	}
}

// serveVendor wraps a vendor endpoint with call logging, fault injection and
// token bookkeeping.
func (s *Server) serveVendor(e endpoint) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		r.Body = io.NopCloser(bytes.NewReader(raw)) // for vendors that hash the body (SigV4)
		body, decodeErr := decodeObject(raw)
		if e.formBodies && isFormBody(r) {
			body, decodeErr = decodeForm(raw)
		}
		if e.queryBody {
			body, decodeErr = decodeForm([]byte(r.URL.RawQuery))
		}
		if readErr != nil {
			decodeErr = fmt.Errorf("read body: %w", readErr)
		}
		rec := &callRecord{Call: Call{Vendor: e.vendor, Path: r.URL.Path, Time: s.clock.Now(), Body: body}, secretFields: e.secretFields}
		s.mu.Lock()
		s.calls = append(s.calls, rec)
		s.mu.Unlock()

		if r.Method != e.method {
			w.Header().Set("Allow", e.method)
			s.answer(w, rec, reply{status: http.StatusMethodNotAllowed, body: e.errorBody(http.StatusMethodNotAllowed, "method not allowed")})
			return
		}
		if f, ok := s.takeFault(); ok {
			if !s.delay(r.Context(), f.Delay) {
				s.answer(nil, rec, reply{status: 499})
				return
			}
			if f.RetryAfter > 0 {
				w.Header().Set("Retry-After", fmt.Sprint(int64((f.RetryAfter+time.Second-1)/time.Second)))
			}
			switch {
			case f.Status != 0:
				s.answer(w, rec, reply{status: f.Status, body: e.errorBody(f.Status, "simulated fault")})
				return
			case f.OKWithError != 0:
				s.answer(w, rec, reply{status: http.StatusOK, body: e.errorBody(f.OKWithError, "simulated fault")})
				return
			case f.Garbage:
				s.finish(rec, http.StatusOK, "")
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				_, _ = io.WriteString(w, garbageHTML)
				return
			case f.EmptyToken:
				s.answer(w, rec, reply{status: http.StatusOK, body: e.emptyToken})
				return
			}
		}
		s.answer(w, rec, e.issue(r, body, decodeErr))
	}
}

// garbageHTML is what a misconfigured proxy or maintenance page might return.
const garbageHTML = "<!DOCTYPE html><html><head><title>Maintenance</title></head><body><h1>We'll be right back</h1></body></html>\n"

// answer stores any issued token, finalises the call record and, when w is
// not nil, writes rep as JSON.
func (s *Server) answer(w http.ResponseWriter, rec *callRecord, rep reply) {
	if rep.token != "" {
		s.mu.Lock()
		s.tokens[rep.token] = tokenRecord{expiresAt: s.clock.Now().Add(rep.ttl), body: rec.Body}
		s.issued++
		s.mu.Unlock()
	}
	s.finish(rec, rep.status, rep.token)
	if w == nil {
		return
	}
	var buf bytes.Buffer
	contentType := "application/json"
	if raw, ok := rep.body.(rawBody); ok {
		buf.Write(raw.data)
		contentType = raw.contentType
	} else if err := json.NewEncoder(&buf).Encode(rep.body); err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	for k, v := range rep.header {
		w.Header()[k] = v
	}
	// Date comes from the simulator's clock, as a vendor's comes from its
	// own, so a test can put the vendor's clock ahead of or behind the
	// operator's.
	w.Header().Set("Date", s.clock.Now().UTC().Format(http.TimeFormat))
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(rep.status)
	_, _ = w.Write(buf.Bytes())
}

// finish records the outcome before the response is written, so a client
// that has its answer always sees the call's final status in the log.
func (s *Server) finish(rec *callRecord, status int, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.Status, rec.Token = status, token
}

// decodeObject parses a JSON object body; vendors decide whether a failure matters.
func decodeObject(raw []byte) (map[string]any, error) {
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, fmt.Errorf("decode JSON body: %w", err)
	}
	if body == nil {
		return nil, errors.New("body is not a JSON object")
	}
	return body, nil
}

// newToken returns an unguessable opaque token with a vendor prefix.
func newToken(prefix string) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails since Go 1.24
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}
