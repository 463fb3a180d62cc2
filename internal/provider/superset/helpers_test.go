package superset_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

const password = "s3cret-superset-pass"

// params is a request for one dashboard with one row level security rule.
func params() *v1alpha1.SupersetParams {
	return &v1alpha1.SupersetParams{
		User:      v1alpha1.SupersetGuestUser{Username: "guest-alice", FirstName: "Alice", LastName: "Liddell"},
		Resources: []v1alpha1.SupersetResource{{Type: "dashboard", ID: "7b3e-dash"}},
		RLS:       []v1alpha1.SupersetRLSRule{{Clause: "tenant_id = 'acme'"}},
	}
}

// request is an Issue request for the Superset at url, with the test's
// password (and a trailing newline, as from a file).
func request(t *testing.T, url string, p *v1alpha1.SupersetParams) provider.Request {
	t.Helper()
	req := pt.Request(t, pt.Creds{"superset/password": password + "\n"}, 0)
	req.Config.Superset = &v1alpha1.SupersetProvider{URL: url + "/", Username: vendorsim.DefaultSupersetUsername,
		PasswordSecretRef: pt.Ref("superset/password"), Provider: "db"}
	req.Params.Superset = p
	return req
}

// seen is one request as it reached Superset.
type seen struct {
	method, path string
	header       http.Header
	body         map[string]any
}

// wire serves the simulator behind a recorder of every request, headers
// included, and an optional hook that answers instead of the simulator.
type wire struct {
	sim   *vendorsim.Server
	clock *clocktesting.FakeClock
	url   string

	mu   sync.Mutex
	reqs []seen
	hook func(r *http.Request) (status int, body string, ok bool)
}

func newWire(t *testing.T, opts vendorsim.Options) *wire {
	t.Helper()
	clock := clocktesting.NewFakeClock(pt.Epoch)
	opts.Clock = clock
	opts.Superset.Password = password
	w := &wire{sim: vendorsim.New(opts), clock: clock}
	ts := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		w.mu.Lock()
		w.reqs = append(w.reqs, seen{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body})
		hook := w.hook
		w.mu.Unlock()
		if hook != nil {
			if status, answer, ok := hook(r); ok {
				rw.Header().Set("Content-Type", "application/json")
				rw.WriteHeader(status)
				_, _ = rw.Write([]byte(answer))
				return
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		w.sim.Handler().ServeHTTP(rw, r)
	}))
	t.Cleanup(ts.Close)
	t.Cleanup(w.sim.Close)
	w.url = ts.URL
	return w
}

// setHook answers requests hook accepts instead of the simulator.
func (w *wire) setHook(hook func(r *http.Request) (int, string, bool)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.hook = hook
}

// to returns the requests made to path, oldest first.
func (w *wire) to(path string) []seen {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []seen
	for _, r := range w.reqs {
		if r.path == path {
			out = append(out, r)
		}
	}
	return out
}

// serve is a fake Superset answering each path with a fixed status, body
// and headers, for answers the simulator never gives.
func serve(t *testing.T, answers map[string]answer) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		a, ok := answers[r.URL.Path]
		if !ok {
			http.NotFound(rw, r)
			return
		}
		for k, v := range a.header {
			rw.Header()[k] = v
		}
		rw.WriteHeader(a.status)
		_, _ = rw.Write([]byte(a.body))
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

type answer struct {
	status int
	body   string
	header http.Header
}
