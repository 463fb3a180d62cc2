package powerbi_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

const (
	tenant      = "contoso.onmicrosoft.com"
	clientID    = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
	secret      = "pbi-s3cret~value.42"
	reportID    = "5b218778-e7a5-4d73-8187-f10824047715"
	datasetID   = "cfafbeb1-8037-4d0c-896e-a46fb27ff229"
	workspaceID = "f089354e-8366-4e18-aea3-4cb4a3a50b48"
)

var (
	creds   = providertest.Creds{"pbi/secret": secret, "pbi/wrong": "not-the-secret", "pbi/blank": " \n"}
	success = providertest.Want{}
)

// simOptions is a simulator that accepts the tests' tenant and client.
func simOptions() vendorsim.Options {
	return vendorsim.Options{PowerBITenantID: tenant, PowerBIClientID: clientID, PowerBIClientSecret: secret}
}

// recorded is one HTTP request as the vendor received it.
type recorded struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// vendor serves a handler, which tests may swap, behind a recorder of every
// request, so the tests see the wire exactly as a vendor does.
type vendor struct {
	url     string
	handler atomic.Pointer[http.Handler]
	mu      sync.Mutex
	reqs    []recorded
}

func serve(t *testing.T, h http.Handler) *vendor {
	t.Helper()
	v := &vendor{}
	v.handler.Store(&h)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		v.mu.Lock()
		v.reqs = append(v.reqs, recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		v.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		(*v.handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	v.url = ts.URL
	return v
}

func (v *vendor) swap(h http.Handler) { v.handler.Store(&h) }

func (v *vendor) requests() []recorded {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]recorded(nil), v.reqs...)
}

// sim is a simulator with a fake clock at providertest.Epoch, served behind
// a recorder.
func sim(t *testing.T, opts vendorsim.Options) (*vendorsim.Server, *clocktesting.FakeClock, *vendor) {
	t.Helper()
	clock := clocktesting.NewFakeClock(providertest.Epoch)
	opts.Clock = clock
	s := vendorsim.New(opts)
	t.Cleanup(s.Close)
	return s, clock, serve(t, s.Handler())
}

// scripted answers each request with what answer returns for the n-th
// (from 1) request, for answers the simulator never gives.
func scripted(t *testing.T, answer func(n int, r *http.Request) (status int, header http.Header, body string)) *vendor {
	var n atomic.Int32
	return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, header, body := answer(int(n.Add(1)), r)
		for k, vs := range header {
			w.Header()[k] = vs
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
}

// fixed answers every request alike.
func fixed(status int, header http.Header, body string) func(int, *http.Request) (int, http.Header, string) {
	return func(int, *http.Request) (int, http.Header, string) { return status, header, body }
}

// embedAnswer is a GenerateToken success expiring ttl after Epoch.
func embedAnswer(token string, ttl time.Duration) string {
	return `{"token":"` + token + `","tokenId":"49ae3742-54c0-4c29-af52-619ff93b5c80","expiration":"` +
		providertest.Epoch.Add(ttl).Format(time.RFC3339) + `"}`
}

// fullParams sets every field of the request block.
func fullParams() *v1alpha1.PowerBIParams {
	return &v1alpha1.PowerBIParams{
		Reports:          []v1alpha1.PowerBIReport{{ID: reportID, AllowEdit: ptr.To(true)}},
		Datasets:         []v1alpha1.PowerBIDataset{{ID: datasetID, XMLAPermissions: "ReadOnly"}},
		TargetWorkspaces: []v1alpha1.PowerBIWorkspace{{ID: workspaceID}},
		Identities: []v1alpha1.PowerBIIdentity{{Username: "alice@acme.example", Roles: []string{"Tenant"},
			Datasets: []string{datasetID}, CustomData: "acme"}},
	}
}

// request is a 10-minute Power BI request with Entra ID at authority and
// Power BI at api, reading the secret under key.
func request(t *testing.T, authority, api, key string) provider.Request {
	t.Helper()
	req := providertest.Request(t, creds, 0)
	req.Config.PowerBI = &v1alpha1.PowerBIProvider{TenantID: tenant, ClientID: clientID,
		ClientSecretSecretRef: new(providertest.Ref("pbi/" + key)), AuthorityURL: authority + "/", APIURL: api}
	req.Params.PowerBI = fullParams()
	req.Lifetime = 10 * time.Minute
	return req
}

// entraCalls counts the requests for an access token among reqs.
func entraCalls(reqs []recorded) int {
	n := 0
	for _, r := range reqs {
		if r.Path == vendorsim.PowerBIEntraTokenPath(tenant) {
			n++
		}
	}
	return n
}

// accessTokens lists the access tokens the simulator issued, oldest first.
func accessTokens(s *vendorsim.Server) []string {
	var out []string
	for _, c := range s.Calls() {
		if vendorsim.IsPowerBIEntraCall(c) && c.Token != "" {
			out = append(out, c.Token)
		}
	}
	return out
}
