package httpprovider_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/httpprovider"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

const (
	chainClientID = "chain-client"
	chainSecret   = "chain-s3cret-value"
)

// chainServer is a scripted vendor with an auth endpoint (/token, or /login)
// that issues access tokens at-1, at-2, ... and a main endpoint (/embed)
// that issues an embed token to a live access token, sent as Bearer or in
// the body's "access" field.
type chainServer struct {
	*httptest.Server
	mu sync.Mutex
	// authAnswer is the nth auth call's JSON answer; by default the token
	// with expires_in 3600.
	authAnswer func(n int) string
	authStatus int             // when set, the auth endpoint fails with it
	revoked    map[string]bool // access tokens the main endpoint refuses
	echo       bool            // the main endpoint fails, echoing what it got
	authCalls  []*http.Request
	authBodies []string
	mainCalls  []string // the access token each main call carried
}

func newChainServer(t *testing.T) *chainServer {
	s := &chainServer{revoked: map[string]bool{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *chainServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.URL.Path {
	case "/token", "/login":
		s.authCalls, s.authBodies = append(s.authCalls, r), append(s.authBodies, string(body))
		if s.authStatus != 0 {
			w.WriteHeader(s.authStatus)
			_, _ = fmt.Fprintf(w, `{"error":"invalid_client","error_description":"client %s refused"}`, r.Header.Get("Authorization"))
			return
		}
		n := len(s.authCalls)
		answer := fmt.Sprintf(`{"access_token":"at-%d","token":"at-%d","expires_in":3600}`, n, n)
		if s.authAnswer != nil {
			answer = s.authAnswer(n)
		}
		_, _ = io.WriteString(w, answer)
	case "/embed":
		access, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if i := strings.Index(string(body), `"access":"`); i >= 0 {
			access, _, _ = strings.Cut(string(body)[i+len(`"access":"`):], `"`)
		}
		s.mainCalls = append(s.mainCalls, access)
		switch {
		case s.echo:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprintf(w, `{"message":"bad request with token %s"}`, access)
		case !strings.HasPrefix(access, "at-") && !strings.HasPrefix(access, "eyJ") || s.revoked[access]:
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"message":"access token refused"}`)
		default:
			_, _ = fmt.Fprintf(w, `{"token":"emb-%d","expires_in":60}`, len(s.mainCalls))
		}
	default:
		http.NotFound(w, r)
	}
}

// counts returns the number of auth and main calls so far.
func (s *chainServer) counts() (auth, main int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.authCalls), len(s.mainCalls)
}

// chainSpec is a provider whose client-credentials auth step's token goes
// in the main request's Authorization header.
func chainSpec(url string) *v1alpha1.HTTPProvider {
	return &v1alpha1.HTTPProvider{
		URL: url + "/embed", TokenPath: ".token", ExpiresInPath: ".expires_in", Body: `{"user":"{{ .Vars.user }}"}`,
		Auth: &v1alpha1.HTTPAuth{
			ClientCredentials: &v1alpha1.HTTPAuthClientCredentials{TokenURL: url + "/token", ClientID: chainClientID,
				ClientSecretSecretRef: pt.Ref("chain/secret"), Scopes: []string{"embed"}},
			Header: &v1alpha1.HTTPAuthHeader{Name: "Authorization", Prefix: "Bearer "},
		},
	}
}

func chainRequest(t *testing.T, spec *v1alpha1.HTTPProvider, creds pt.Creds, now time.Time) provider.Request {
	req := pt.Request(t, creds, time.Second)
	req.Config.HTTP, req.Params.HTTP = spec, &v1alpha1.HTTPParams{Variables: map[string]string{"user": "alice"}}
	req.Now = now
	return req
}

var chainCreds = pt.Creds{"chain/secret": chainSecret}

// TestAuthTokenIsCached follows one provider through time: the access
// token is reused until a minute before it expires, then fetched again.
func TestAuthTokenIsCached(t *testing.T) {
	s := newChainServer(t)
	p := httpprovider.New()
	spec := chainSpec(s.URL)
	steps := []struct {
		after             time.Duration
		wantAuth, wantTok string
	}{
		{0, "at-1", "emb-1"},
		{time.Minute, "at-1", "emb-2"},
		{58*time.Minute + 59*time.Second, "at-1", "emb-3"},
		{59 * time.Minute, "at-2", "emb-4"}, // expires_in 3600 less the one-minute margin
		{time.Hour, "at-2", "emb-5"},
	}
	for _, st := range steps {
		tok, err := p.Issue(context.Background(), chainRequest(t, spec, chainCreds, pt.Epoch.Add(st.after)))
		pt.CheckError(t, err, pt.Want{}, chainSecret)
		if tok.Value != st.wantTok || s.mainCalls[len(s.mainCalls)-1] != st.wantAuth {
			t.Errorf("after %v: token %s with %s, want %s with %s", st.after, tok.Value, s.mainCalls[len(s.mainCalls)-1], st.wantTok, st.wantAuth)
		}
	}
	first := s.authCalls[0]
	user, pass, ok := first.BasicAuth()
	if first.Method != http.MethodPost || !ok || user != chainClientID || pass != chainSecret ||
		s.authBodies[0] != "grant_type=client_credentials&scope=embed" {
		t.Errorf("auth call %s %v %q", first.Method, first.Header, s.authBodies[0])
	}
}

// TestAuthTokenSharedByConcurrentRequests issues ten tokens at once: one
// auth call serves them all, whether they overlap it or follow it.
func TestAuthTokenSharedByConcurrentRequests(t *testing.T) {
	s := newChainServer(t)
	p := httpprovider.New()
	spec := chainSpec(s.URL)
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Go(func() {
			_, err := p.Issue(context.Background(), chainRequest(t, spec, chainCreds, pt.Epoch))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		pt.CheckError(t, err, pt.Want{}, chainSecret)
	}
	if auth, main := s.counts(); auth != 1 || main != 10 {
		t.Errorf("auth calls %d, main calls %d; want 1 and 10", auth, main)
	}
}

// TestAuthTokenKey checks what makes a new auth call: a rotated secret or
// a changed spec, but not another provider instance's cache.
func TestAuthTokenKey(t *testing.T) {
	s := newChainServer(t)
	p := httpprovider.New()
	spec := chainSpec(s.URL)
	issue := func(p *httpprovider.Provider, spec *v1alpha1.HTTPProvider, creds pt.Creds) {
		t.Helper()
		_, err := p.Issue(context.Background(), chainRequest(t, spec, creds, pt.Epoch))
		pt.CheckError(t, err, pt.Want{}, chainSecret)
	}
	issue(p, spec, chainCreds)
	issue(p, spec, chainCreds)
	if auth, _ := s.counts(); auth != 1 {
		t.Fatalf("auth calls = %d, want 1", auth)
	}
	issue(p, spec, pt.Creds{"chain/secret": "rotated-s3cret"})
	if _, pass, _ := s.authCalls[1].BasicAuth(); len(s.authCalls) != 2 || pass != "rotated-s3cret" {
		t.Fatalf("after rotation: %d auth calls", len(s.authCalls))
	}
	changed := chainSpec(s.URL)
	changed.Auth.ClientCredentials.Scopes = []string{"embed", "more"}
	issue(p, changed, chainCreds)
	issue(httpprovider.New(), spec, chainCreds)
	if auth, _ := s.counts(); auth != 4 {
		t.Errorf("auth calls = %d, want 4: rotation, a new spec and a new provider each need one", auth)
	}
}

// TestAuthToken401 checks the main call's 401: a cached token is dropped
// and both calls are tried once more; a fresh token is not retried.
func TestAuthToken401(t *testing.T) {
	s := newChainServer(t)
	p := httpprovider.New()
	spec := chainSpec(s.URL)
	if _, err := p.Issue(context.Background(), chainRequest(t, spec, chainCreds, pt.Epoch)); err != nil {
		t.Fatal(err)
	}
	s.revoked["at-1"] = true
	tok, err := p.Issue(context.Background(), chainRequest(t, spec, chainCreds, pt.Epoch))
	pt.CheckError(t, err, pt.Want{}, chainSecret)
	if auth, main := s.counts(); auth != 2 || main != 3 || tok.Value != "emb-3" || s.mainCalls[2] != "at-2" {
		t.Fatalf("after revoking the cached token: %d auth and %d main calls, token %s", auth, main, tok.Value)
	}

	s.revoked["at-2"], s.revoked["at-3"], s.revoked["at-4"] = true, true, true
	_, err = p.Issue(context.Background(), chainRequest(t, spec, chainCreds, pt.Epoch))
	pt.CheckError(t, err, pt.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "access token refused"}, "at-3", chainSecret)
	if auth, main := s.counts(); auth != 3 || main != 5 {
		t.Fatalf("cached token refused, then its fresh successor: %d auth and %d main calls, want 3 and 5", auth, main)
	}
	_, err = p.Issue(context.Background(), chainRequest(t, spec, chainCreds, pt.Epoch))
	pt.CheckError(t, err, pt.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true}, "at-4")
	if auth, main := s.counts(); auth != 4 || main != 6 {
		t.Errorf("a refused fresh token is dropped too: %d auth and %d main calls, want 4 and 6", auth, main)
	}
}

// TestAuthStepErrors covers failures of the auth call and the redaction of
// the client secret and the access token from every message.
func TestAuthStepErrors(t *testing.T) {
	jwtTok := pt.JWTWithExp(t, pt.Epoch.Add(30*time.Minute))
	tests := []struct {
		name   string
		setup  func(s *chainServer, spec *v1alpha1.HTTPProvider)
		want   pt.Want
		expiry time.Time // of the access token, seen through the cache
	}{
		{"auth refused, secret echoed", func(s *chainServer, _ *v1alpha1.HTTPProvider) { s.authStatus = http.StatusUnauthorized },
			pt.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "spec.http.auth: vendor answered HTTP 401: invalid_client"}, time.Time{}},
		{"auth unavailable", func(s *chainServer, _ *v1alpha1.HTTPProvider) { s.authStatus = http.StatusServiceUnavailable },
			pt.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "spec.http.auth: vendor answered HTTP 503"}, time.Time{}},
		{"main call echoes the access token", func(s *chainServer, _ *v1alpha1.HTTPProvider) { s.echo = true },
			pt.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "[redacted]"}, time.Time{}},
		{"no expiry anywhere", func(s *chainServer, _ *v1alpha1.HTTPProvider) {
			s.authAnswer = func(n int) string { return fmt.Sprintf(`{"access_token":"at-%d"}`, n) }
		}, pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "set spec.http.auth.clientCredentials.expiry.duration"}, time.Time{}},
		{"JWT exp", func(s *chainServer, _ *v1alpha1.HTTPProvider) {
			s.authAnswer = func(int) string { return `{"access_token":"` + jwtTok + `"}` }
		}, pt.Want{}, pt.Epoch.Add(30 * time.Minute)},
		{"fixed duration", func(s *chainServer, spec *v1alpha1.HTTPProvider) {
			s.authAnswer = func(n int) string { return fmt.Sprintf(`{"access_token":"at-%d"}`, n) }
			spec.Auth.ClientCredentials.Expiry = &v1alpha1.ExpiryFallback{Duration: &metav1.Duration{Duration: 10 * time.Minute}}
		}, pt.Want{}, pt.Epoch.Add(10 * time.Minute)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newChainServer(t)
			spec := chainSpec(s.URL)
			tc.setup(s, spec)
			p := httpprovider.New()
			_, err := p.Issue(context.Background(), chainRequest(t, spec, chainCreds, pt.Epoch))
			basic := base64.StdEncoding.EncodeToString([]byte(chainClientID + ":" + chainSecret))
			pt.CheckError(t, err, tc.want, chainSecret, basic, "at-1", jwtTok)
			if tc.want.Reason != "" {
				_, _ = p.Issue(context.Background(), chainRequest(t, spec, chainCreds, pt.Epoch))
				wantAuth := 2 // a failed auth call is not cached
				if s.echo {
					wantAuth = 1 // a main call failing otherwise than with 401 keeps the token
				}
				if auth, _ := s.counts(); auth != wantAuth {
					t.Errorf("auth calls = %d, want %d", auth, wantAuth)
				}
				return
			}
			// Reused until a quarter of its life (at most a minute) before expiry.
			margin := min(time.Minute, tc.expiry.Sub(pt.Epoch)/4)
			for _, at := range []time.Time{tc.expiry.Add(-margin - time.Second), tc.expiry.Add(-margin)} {
				if _, err := p.Issue(context.Background(), chainRequest(t, spec, chainCreds, at)); err != nil {
					t.Fatal(err)
				}
			}
			if auth, _ := s.counts(); auth != 2 {
				t.Errorf("auth calls = %d, want 2: the token is reused until %v", auth, tc.expiry.Add(-margin))
			}
		})
	}
}

// TestLoginAuthStep runs a login request whose token the main body prints.
func TestLoginAuthStep(t *testing.T) {
	s := newChainServer(t)
	spec := &v1alpha1.HTTPProvider{
		URL: s.URL + "/embed", TokenPath: ".token", ExpiresInPath: ".expires_in",
		Body: `{"user":"{{ .Vars.user }}","access":"{{ .Auth.AccessToken }}"}`,
		Auth: &v1alpha1.HTTPAuth{Login: &v1alpha1.HTTPAuthLogin{
			URL: s.URL + "/login", Headers: []v1alpha1.HTTPHeader{{Name: "X-Client", Value: ptr.To(chainClientID)}},
			Body:      `{"client_id":"` + chainClientID + `","client_secret":"{{ secret "chain" "secret" }}"}`,
			TokenPath: ".token", ExpiresInPath: ".expires_in",
		}},
	}
	p := httpprovider.New()
	for range 3 {
		tok, err := p.Issue(context.Background(), chainRequest(t, spec, chainCreds, pt.Epoch))
		pt.CheckError(t, err, pt.Want{}, chainSecret)
		if !tok.ExpiresAt.Equal(pt.Epoch.Add(time.Minute)) {
			t.Errorf("token = %v", tok)
		}
	}
	if auth, main := s.counts(); auth != 1 || main != 3 || !slices.Equal(s.mainCalls, []string{"at-1", "at-1", "at-1"}) {
		t.Errorf("%d auth and %d main calls with %v", auth, main, s.mainCalls)
	}
	if r := s.authCalls[0]; r.Method != http.MethodPost || r.Header.Get("X-Client") != chainClientID ||
		s.authBodies[0] != `{"client_id":"`+chainClientID+`","client_secret":"`+chainSecret+`"}` {
		t.Errorf("login call %s %v %s", r.Method, r.Header, s.authBodies[0])
	}
}

func TestValidateAuth(t *testing.T) {
	invalid := func(msg string) pt.Want {
		return pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: msg}
	}
	login := func() *v1alpha1.HTTPAuthLogin {
		return &v1alpha1.HTTPAuthLogin{URL: "https://vendor.example.com/login", TokenPath: ".token",
			Body: `{"password":"{{ secret "login" "password" }}"}`}
	}
	tests := []struct {
		name   string
		mutate func(s *v1alpha1.HTTPProvider)
		creds  pt.Creds
		want   pt.Want
	}{
		{"client credentials", func(*v1alpha1.HTTPProvider) {}, chainCreds, pt.Want{}},
		{"login, token in the body only", func(s *v1alpha1.HTTPProvider) {
			s.Auth.ClientCredentials, s.Auth.Login, s.Auth.Header = nil, login(), nil
			s.Body = `{"token":"{{ $.Auth.AccessToken }}"}`
		}, pt.Creds{"login/password": "pw"}, pt.Want{}},
		{"client secret missing", func(*v1alpha1.HTTPProvider) {}, pt.Creds{}, pt.Want{Reason: v1alpha1.ReasonCredentialsNotFound, Message: "chain"}},
		{"login Secret missing", func(s *v1alpha1.HTTPProvider) { s.Auth.ClientCredentials, s.Auth.Login = nil, login() }, chainCreds,
			pt.Want{Reason: v1alpha1.ReasonCredentialsNotFound, Message: "login"}},
		{"both steps", func(s *v1alpha1.HTTPProvider) { s.Auth.Login = login() }, chainCreds, invalid("exactly one of clientCredentials and login")},
		{"no step", func(s *v1alpha1.HTTPProvider) { s.Auth.ClientCredentials = nil }, chainCreds, invalid("exactly one of clientCredentials and login")},
		{"token unused", func(s *v1alpha1.HTTPProvider) { s.Auth.Header = nil }, chainCreds, invalid("the access token is not used")},
		{".Auth without auth", func(s *v1alpha1.HTTPProvider) { s.Auth, s.Body = nil, `{"t":"{{ .Auth.AccessToken }}"}` }, chainCreds,
			invalid("spec.http.auth is not set")},
		{"header set twice", func(s *v1alpha1.HTTPProvider) {
			s.Headers = []v1alpha1.HTTPHeader{{Name: "authorization", Value: ptr.To("x")}}
		}, chainCreds, invalid("also set in spec.http.headers")},
		{"bad header name", func(s *v1alpha1.HTTPProvider) { s.Auth.Header.Name = "X Token" }, chainCreds, invalid("field name")},
		{"login body reads a variable", func(s *v1alpha1.HTTPProvider) {
			s.Auth.ClientCredentials, s.Auth.Login = nil, login()
			s.Auth.Login.Body = `{"user":"{{ .Vars.user }}"}`
		}, chainCreds, invalid("spec.http.auth.login.body may only read Secrets")},
		{"login body does not parse", func(s *v1alpha1.HTTPProvider) {
			s.Auth.ClientCredentials, s.Auth.Login = nil, login()
			s.Auth.Login.Body = `{{ secret "a" `
		}, chainCreds, invalid("spec.http.auth.login.body is not a valid template")},
		{"login token path", func(s *v1alpha1.HTTPProvider) {
			s.Auth.ClientCredentials, s.Auth.Login = nil, login()
			s.Auth.Login.TokenPath = "a..b"
		}, pt.Creds{"login/password": "pw"}, invalid("spec.http.auth.login: ")},
		{"GET with the secret in the body", func(s *v1alpha1.HTTPProvider) {
			s.Auth.ClientCredentials.Method, s.Auth.ClientCredentials.ClientAuthMethod = http.MethodGet, "client_secret_post"
		}, chainCreds, invalid("needs clientAuthMethod client_secret_basic")},
		{"relative token URL", func(s *v1alpha1.HTTPProvider) { s.Auth.ClientCredentials.TokenURL = "/token" }, chainCreds, invalid("tokenURL")},
		{"fromJWT false", func(s *v1alpha1.HTTPProvider) {
			s.Auth.ClientCredentials.Expiry = &v1alpha1.ExpiryFallback{FromJWT: ptr.To(false)}
		}, chainCreds, invalid("expiry must set fromJWT: true or a positive duration")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := chainSpec("https://vendor.example.com")
			tc.mutate(s)
			err := httpprovider.New().Validate(context.Background(), &v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{HTTP: s}}, tc.creds)
			pt.CheckError(t, err, tc.want, chainSecret, "pw")
		})
	}
}

func TestAuthSecretRefs(t *testing.T) {
	s := chainSpec("https://vendor.example.com")
	s.Auth.Login = &v1alpha1.HTTPAuthLogin{Body: `{{ secret "login" "password" }}`,
		Headers: []v1alpha1.HTTPHeader{{Name: "X-Key", ValueFrom: &v1alpha1.HTTPHeaderSource{SecretKeyRef: pt.Ref("login/key")}}}}
	got := httpprovider.New().SecretRefs(&v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{HTTP: s}})
	for _, want := range []string{"chain/secret", "login/key", "login/password"} {
		if !slices.Contains(got, pt.Ref(want)) {
			t.Errorf("SecretRefs = %v, misses %s", got, want)
		}
	}
}

// TestLargeAuthTokensAreBounded has a namespace's 200 providers each get
// an access token of a megabyte, then of 60 KiB, beside another
// namespace's provider: the megabyte tokens are refused without being
// quoted or cached, and the others stay within the namespace's share of
// the cache without evicting the other namespace's token.
func TestLargeAuthTokensAreBounded(t *testing.T) {
	s := newChainServer(t)
	p := httpprovider.New()
	size := 0 // of the access tokens the auth endpoint answers
	s.authAnswer = func(n int) string {
		return fmt.Sprintf(`{"access_token":"at-%d-%s","expires_in":3600}`, n, strings.Repeat("x", size))
	}
	issue := func(namespace string, i int) (provider.Token, error) {
		spec := chainSpec(s.URL)
		spec.Auth.ClientCredentials.ClientID = fmt.Sprint("client-", i) // a provider of its own
		req := chainRequest(t, spec, chainCreds, pt.Epoch)
		req.ProviderNamespace = namespace
		return p.Issue(context.Background(), req)
	}
	tok, err := issue("tenant-b", -1)
	pt.CheckError(t, err, pt.Want{}, chainSecret)

	size = 1_000_000
	for i := range 200 {
		_, err := issue("tenant-a", i)
		pt.CheckError(t, err, pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Permanent: true,
			Message: "spec.http.auth: the access_token is 10000"}, strings.Repeat("x", 64), chainSecret)
	}
	if entries, bytes := p.AuthCacheSize(); entries != 1 || bytes > 1024 {
		t.Fatalf("after 200 refused megabyte tokens the cache holds %d entries, %d bytes; want tenant-b's alone", entries, bytes)
	}

	size = 60 << 10
	for i := range 200 {
		_, err := issue("tenant-a", i)
		pt.CheckError(t, err, pt.Want{}, chainSecret)
		if _, bytes := p.AuthCacheSize(); bytes > httpprovider.MaxAuthShareBytes+1024 {
			t.Fatalf("after %d large tokens the cache holds %d bytes, over a namespace's share of %d", i+1, bytes, httpprovider.MaxAuthShareBytes)
		}
	}
	authBefore, _ := s.counts()
	again, err := issue("tenant-b", -1)
	pt.CheckError(t, err, pt.Want{}, chainSecret)
	if authAfter, _ := s.counts(); authAfter != authBefore || again.Value == tok.Value {
		t.Errorf("tenant-b's token was evicted: %d auth calls for its next embed token, want 0", authAfter-authBefore)
	}
}
