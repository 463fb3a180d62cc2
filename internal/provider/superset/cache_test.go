package superset_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/superset"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// issueN issues n tokens with req, failing on any error, and returns them.
func issueN(t *testing.T, p *superset.Provider, req provider.Request, n int) []provider.Token {
	t.Helper()
	var out []provider.Token
	for range n {
		tok, err := p.Issue(context.Background(), req)
		pt.CheckError(t, err, pt.Want{}, password)
		out = append(out, tok)
	}
	return out
}

func TestTenTokensOneLogin(t *testing.T) {
	w := newWire(t, vendorsim.Options{})
	p, req := superset.New(), request(t, w.url, params())
	seen := map[string]bool{}
	for _, tok := range issueN(t, p, req, 10) {
		if seen[tok.Value] || w.sim.Validate(tok.Value) != vendorsim.ValidityValid {
			t.Errorf("token %v is repeated or unknown to the simulator", tok)
		}
		seen[tok.Value] = true
	}
	if logins, csrf, guests := len(w.to(superset.LoginPath)), len(w.to(superset.CSRFPath)), len(w.to(superset.GuestTokenPath)); logins != 1 || csrf != 10 || guests != 10 {
		t.Errorf("%d logins, %d CSRF calls, %d guest calls; want 1, 10, 10", logins, csrf, guests)
	}
	bearers := map[string]bool{}
	for _, g := range w.to(superset.GuestTokenPath) {
		bearers[g.header.Get("Authorization")] = true
	}
	if len(bearers) != 1 {
		t.Errorf("the guest calls used %d access tokens", len(bearers))
	}
}

func TestConcurrentMissesShareOneLogin(t *testing.T) {
	w := newWire(t, vendorsim.Options{})
	w.sim.SetFault(vendorsim.Fault{Delay: 200 * time.Millisecond, Count: 1}) // the login is slow
	p, req := superset.New(), request(t, w.url, params())
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			_, err := p.Issue(context.Background(), req)
			pt.CheckError(t, err, pt.Want{}, password)
		})
	}
	wg.Wait()
	if n := len(w.to(superset.LoginPath)); n != 1 {
		t.Errorf("%d logins, want 1", n)
	}
}

// TestLoginLivesUntilShortlyBeforeItsExp: the simulator's access tokens
// live 15 minutes, and are reused until one minute before.
func TestLoginLivesUntilShortlyBeforeItsExp(t *testing.T) {
	w := newWire(t, vendorsim.Options{})
	p, req := superset.New(), request(t, w.url, params())
	for _, tc := range []struct {
		after  time.Duration
		logins int
	}{{0, 1}, {13*time.Minute + 59*time.Second, 1}, {14 * time.Minute, 2}, {27*time.Minute + 59*time.Second, 2}, {28 * time.Minute, 3}} {
		req.Now = pt.Epoch.Add(tc.after)
		w.clock.SetTime(req.Now)
		issueN(t, p, req, 1)
		if n := len(w.to(superset.LoginPath)); n != tc.logins {
			t.Errorf("after %s: %d logins, want %d", tc.after, n, tc.logins)
		}
	}
}

// TestLoginKey: a login is reused only by the same provider (its HTTP
// client), URL, user and password.
func TestLoginKey(t *testing.T) {
	refused := pt.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "Superset login"}
	tests := []struct {
		name   string
		edit   func(t *testing.T, r *provider.Request, url string)
		want   pt.Want
		logins int
	}{
		{"another provider's client", func(t *testing.T, r *provider.Request, _ string) {
			r.HTTPClient = pt.Request(t, nil, 0).HTTPClient
		}, pt.Want{}, 2},
		{"a rotated password", func(_ *testing.T, r *provider.Request, _ string) {
			r.Credentials = pt.Creds{"superset/password": "rotated-password"}
		}, refused, 2},
		{"another user", func(_ *testing.T, r *provider.Request, _ string) { r.Config.Superset.Username = "someone" }, refused, 2},
		{"another auth provider", func(_ *testing.T, r *provider.Request, _ string) { r.Config.Superset.Provider = "ldap" }, pt.Want{}, 2},
		{"the same URL without its slash", func(_ *testing.T, r *provider.Request, url string) { r.Config.Superset.URL = url }, pt.Want{}, 1},
		{"the same password with a newline", func(_ *testing.T, r *provider.Request, _ string) {
			r.Credentials = pt.Creds{"superset/password": password}
		}, pt.Want{}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWire(t, vendorsim.Options{})
			p, req := superset.New(), request(t, w.url, params())
			issueN(t, p, req, 1)
			cfg := *req.Config.Superset
			req.Config = &v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{Superset: &cfg}}
			tc.edit(t, &req, w.url)
			_, err := p.Issue(context.Background(), req)
			pt.CheckError(t, err, tc.want, password, "rotated-password")
			if n := len(w.to(superset.LoginPath)); n != tc.logins {
				t.Errorf("%d logins, want %d", n, tc.logins)
			}
		})
	}
}

// TestRefusedLoginIsReplacedOnce: Superset refusing a cached access token
// (401 on the CSRF or the guest call) costs one new login and one retry,
// never more; a fresh login is not retried, nor is a 403.
func TestRefusedLoginIsReplacedOnce(t *testing.T) {
	const always = -1
	tests := []struct {
		name        string
		guest401    int // guest calls answered 401 after the first token, always or a count
		guest403    bool
		expire      bool // the simulator forgets its access tokens: the CSRF call gets 401
		want        pt.Want
		logins      int
		guestCalls  int
		csrf401Seen bool
	}{
		{name: "CSRF call refuses the cached token", expire: true, logins: 2, guestCalls: 2, csrf401Seen: true},
		{name: "guest call refuses the cached token", guest401: 1, logins: 2, guestCalls: 3},
		{name: "the new login is refused too", guest401: always, logins: 2, guestCalls: 3,
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "Superset guest token: vendor answered HTTP 401"}},
		{name: "403 is not a stale login", guest403: true, logins: 1, guestCalls: 2,
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "HTTP 403"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWire(t, vendorsim.Options{})
			p, req := superset.New(), request(t, w.url, params())
			issueN(t, p, req, 1)
			if tc.expire {
				w.sim.ExpireSupersetLogins()
			}
			left := tc.guest401
			w.setHook(func(r *http.Request) (int, string, bool) {
				switch {
				case r.URL.Path != superset.GuestTokenPath:
					return 0, "", false
				case tc.guest403:
					return 403, `{"message":"Forbidden"}`, true
				case left == always:
					return 401, `{"msg":"Token has expired"}`, true
				case left > 0:
					left--
					return 401, `{"msg":"Token has expired"}`, true
				}
				return 0, "", false
			})
			tok, err := p.Issue(context.Background(), req)
			pt.CheckError(t, err, tc.want, password)
			if err == nil && w.sim.Validate(tok.Value) != vendorsim.ValidityValid {
				t.Errorf("token unknown to the simulator")
			}
			if logins, guests := len(w.to(superset.LoginPath)), len(w.to(superset.GuestTokenPath)); logins != tc.logins || guests != tc.guestCalls {
				t.Errorf("%d logins and %d guest calls, want %d and %d", logins, guests, tc.logins, tc.guestCalls)
			}
			if tc.csrf401Seen && !csrfRefused(w.sim) {
				t.Errorf("no CSRF call was refused: %+v", w.sim.Calls())
			}
		})
	}
}

func TestFreshLoginRefusedIsNotRetried(t *testing.T) {
	w := newWire(t, vendorsim.Options{})
	w.setHook(func(r *http.Request) (int, string, bool) {
		return 401, `{"msg":"Token has expired"}`, r.URL.Path == superset.CSRFPath
	})
	_, err := superset.New().Issue(context.Background(), request(t, w.url, params()))
	pt.CheckError(t, err, pt.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "Superset CSRF token"}, password)
	if n := len(w.to(superset.LoginPath)); n != 1 {
		t.Errorf("%d logins, want 1", n)
	}
}

// TestNothingSecretInMessages: a Superset that echoes everything it was
// sent (the password, the access token, the CSRF token and cookie) has
// each replaced in the message.
func TestNothingSecretInMessages(t *testing.T) {
	access := pt.JWTWithExp(t, pt.Epoch.Add(time.Hour))
	const csrf, session = "csrf-value-123", "sess-value-456"
	for _, tc := range []struct {
		name    string
		answers map[string]answer
	}{
		{"login echoes the password", map[string]answer{superset.LoginPath: {status: 400, body: `{"message":"bad password ` + password + `"}`}}},
		{"guest call echoes the session", map[string]answer{
			superset.LoginPath: {status: 200, body: `{"access_token":"` + access + `"}`},
			superset.CSRFPath:  {status: 200, body: `{"result":"` + csrf + `"}`, header: http.Header{"Set-Cookie": {"session=" + session}}},
			superset.GuestTokenPath: {status: 400, body: `{"errors":[{"message":"Bearer ` + access + ` csrf ` + csrf +
				` cookie ` + session + `"}]}`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := superset.New().Issue(context.Background(), request(t, serve(t, tc.answers), params()))
			pt.CheckError(t, err, pt.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "[redacted]"},
				password, access, csrf, session)
			if strings.Count(err.Error(), "[redacted]") < 1 {
				t.Errorf("message = %q", err)
			}
		})
	}
}

// csrfRefused reports whether the simulator answered a CSRF call 401.
func csrfRefused(sim *vendorsim.Server) bool {
	for _, c := range sim.Calls() {
		if c.Path == superset.CSRFPath && c.Status == http.StatusUnauthorized {
			return true
		}
	}
	return false
}
