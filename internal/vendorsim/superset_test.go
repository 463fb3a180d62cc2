package vendorsim_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

const supersetPassword = "superset-pass"

const guestOK = `{"user":{"username":"guest-1","first_name":"Ada","last_name":"L"},` +
	`"resources":[{"type":"dashboard","id":"d-1"}],"rls":[{"clause":"tenant_id = 'acme'","dataset":12}]}`

// supersetSim starts a simulator whose Superset accepts supersetPassword.
func supersetSim(t *testing.T, opts vendorsim.SupersetOptions) (*vendorsim.Server, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(epoch)
	opts.Password = supersetPassword
	s := vendorsim.New(vendorsim.Options{Clock: clk, Superset: opts})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, clk
}

// call sends one request with the given headers and returns the status,
// the decoded body and the answer's headers.
func call(t *testing.T, method, url, body string, header map[string]string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out, resp.Header
}

// supersetSession logs in and fetches a CSRF token: the access token, the
// CSRF token and the session cookie.
func supersetSession(t *testing.T, s *vendorsim.Server) (access, csrf, cookie string) {
	t.Helper()
	status, out, _ := call(t, http.MethodPost, s.URL()+vendorsim.SupersetLoginPath,
		`{"username":"`+vendorsim.DefaultSupersetUsername+`","password":"`+supersetPassword+`","provider":"db","refresh":true}`, nil)
	access, _ = out["access_token"].(string)
	if status != 200 || access == "" || out["refresh_token"] == nil {
		t.Fatalf("login: %d %v", status, out)
	}
	status, out, h := call(t, http.MethodGet, s.URL()+vendorsim.SupersetCSRFPath, "", map[string]string{"Authorization": "Bearer " + access})
	csrf, _ = out["result"].(string)
	cookies := (&http.Response{Header: h}).Cookies()
	if status != 200 || csrf == "" || len(cookies) != 1 || cookies[0].Name != vendorsim.SupersetSessionCookie || !cookies[0].HttpOnly {
		t.Fatalf("csrf: %d %v %v", status, out, h)
	}
	return access, csrf, cookies[0].Name + "=" + cookies[0].Value
}

func guestHeaders(s *vendorsim.Server, access, csrf, cookie string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + access, "X-CSRFToken": csrf, "Cookie": cookie,
		"Referer": s.URL() + "/", "Content-Type": "application/json"}
}

func TestSupersetGuestToken(t *testing.T) {
	s, _ := supersetSim(t, vendorsim.SupersetOptions{})
	access, csrf, cookie := supersetSession(t, s)
	status, out, _ := call(t, http.MethodPost, s.URL()+vendorsim.SupersetGuestTokenPath, guestOK, guestHeaders(s, access, csrf, cookie))
	token, _ := out["token"].(string)
	if status != 200 || s.Validate(token) != vendorsim.ValidityValid || s.IssuedCount() != 1 || s.SupersetLogins() != 1 {
		t.Fatalf("guest token: %d %v (issued %d, logins %d)", status, out, s.IssuedCount(), s.SupersetLogins())
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return []byte(vendorsim.SupersetGuestSigningKey), nil },
		jwt.WithTimeFunc(func() time.Time { return epoch }), jwt.WithAudience("superset")); err != nil {
		t.Fatalf("guest token does not verify: %v", err)
	}
	exp, _ := claims.GetExpirationTime()
	user, _ := claims["user"].(map[string]any)
	rules, _ := claims["rls_rules"].([]any)
	if !exp.Equal(epoch.Add(vendorsim.DefaultSupersetGuestTokenLifetime)) || claims["type"] != "guest" || user["username"] != "guest-1" || len(rules) != 1 {
		t.Errorf("claims = %v", claims)
	}
	if _, calls, _ := call(t, http.MethodGet, s.URL()+"/_sim/calls", "", nil); strings.Contains(toJSON(calls), supersetPassword) {
		t.Errorf("the admin API reveals the password: %v", calls)
	}
}

func TestSupersetGuestTokenLifetime(t *testing.T) {
	s, _ := supersetSim(t, vendorsim.SupersetOptions{GuestTokenLifetime: time.Hour})
	access, csrf, cookie := supersetSession(t, s)
	_, out, _ := call(t, http.MethodPost, s.URL()+vendorsim.SupersetGuestTokenPath, guestOK, guestHeaders(s, access, csrf, cookie))
	claims := jwt.MapClaims{}
	_, _, _ = jwt.NewParser().ParseUnverified(out["token"].(string), claims)
	if exp, _ := claims.GetExpirationTime(); exp == nil || !exp.Equal(epoch.Add(time.Hour)) {
		t.Errorf("exp = %v, want an hour", exp)
	}
}

func TestSupersetLoginRefusals(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"wrong password", `{"username":"` + vendorsim.DefaultSupersetUsername + `","password":"nope","provider":"db"}`, "Not authorized"},
		{"wrong user", `{"username":"eve","password":"` + supersetPassword + `","provider":"db"}`, "Not authorized"},
		{"no provider", `{"username":"a","password":"b"}`, "provider"},
		{"unknown field", `{"username":"a","password":"b","provider":"db","remember":true}`, "remember"},
		{"refresh not a boolean", `{"username":"a","password":"b","provider":"db","refresh":"yes"}`, "refresh"},
		{"not JSON", `username=a`, "JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := supersetSim(t, vendorsim.SupersetOptions{})
			status, out, _ := call(t, http.MethodPost, s.URL()+vendorsim.SupersetLoginPath, tc.body, nil)
			if status/100 != 4 || !strings.Contains(toJSON(out), tc.want) || s.SupersetLogins() != 0 {
				t.Fatalf("got %d %v", status, out)
			}
		})
	}
}

func TestSupersetGuestRefusals(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		edit   func(s *vendorsim.Server, clk *clocktesting.FakeClock, h map[string]string)
		status int
		want   string
	}{
		{"no bearer", guestOK, func(_ *vendorsim.Server, _ *clocktesting.FakeClock, h map[string]string) { delete(h, "Authorization") },
			401, "Missing Authorization"},
		{"expired access token", guestOK, func(_ *vendorsim.Server, clk *clocktesting.FakeClock, _ map[string]string) {
			clk.Step(vendorsim.SupersetAccessTokenLifetime)
		}, 401, "expired"},
		{"logins expired by the simulator", guestOK, func(s *vendorsim.Server, _ *clocktesting.FakeClock, _ map[string]string) {
			s.ExpireSupersetLogins()
		}, 401, "expired"},
		{"no session cookie", guestOK, func(_ *vendorsim.Server, _ *clocktesting.FakeClock, h map[string]string) { delete(h, "Cookie") },
			400, "CSRF session token is missing"},
		{"no CSRF header", guestOK, func(_ *vendorsim.Server, _ *clocktesting.FakeClock, h map[string]string) { delete(h, "X-CSRFToken") },
			400, "CSRF token is missing"},
		{"CSRF token of another session", guestOK, func(_ *vendorsim.Server, _ *clocktesting.FakeClock, h map[string]string) {
			h["X-CSRFToken"] = "forged"
		}, 400, "do not match"},
		{"no Referer", guestOK, func(_ *vendorsim.Server, _ *clocktesting.FakeClock, h map[string]string) { delete(h, "Referer") },
			400, "referrer header is missing"},
		{"Referer of another host", guestOK, func(_ *vendorsim.Server, _ *clocktesting.FakeClock, h map[string]string) {
			h["Referer"] = "http://evil.example/"
		}, 400, "does not match the host"},
		{"chart resource", strings.Replace(guestOK, `"dashboard"`, `"chart"`, 1), nil, 400, "resources.0.type"},
		{"no resources", `{"user":{"username":"g"},"resources":[],"rls":[]}`, nil, 400, "resources"},
		{"no rls", `{"user":{"username":"g"},"resources":[{"type":"dashboard","id":"d"}]}`, nil, 400, "rls"},
		{"dataset as a string", strings.Replace(guestOK, `12`, `"12"`, 1), nil, 400, "rls.0.dataset"},
		{"empty clause", `{"resources":[{"type":"dashboard","id":"d"}],"rls":[{"clause":""}]}`, nil, 400, "rls.0.clause"},
		{"unknown field", strings.Replace(guestOK, `"rls"`, `"extra":1,"rls"`, 1), nil, 400, "extra"},
		{"camelCase user field", strings.Replace(guestOK, `first_name`, `firstName`, 1), nil, 400, "user.firstName"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, clk := supersetSim(t, vendorsim.SupersetOptions{})
			access, csrf, cookie := supersetSession(t, s)
			h := guestHeaders(s, access, csrf, cookie)
			if tc.edit != nil {
				tc.edit(s, clk, h)
			}
			status, out, _ := call(t, http.MethodPost, s.URL()+vendorsim.SupersetGuestTokenPath, tc.body, h)
			if status != tc.status || !strings.Contains(toJSON(out), tc.want) || s.IssuedCount() != 0 {
				t.Fatalf("got %d %v, want %d with %q", status, out, tc.status, tc.want)
			}
		})
	}
}

func TestSupersetCSRFNeedsALogin(t *testing.T) {
	s, _ := supersetSim(t, vendorsim.SupersetOptions{})
	status, out, h := call(t, http.MethodGet, s.URL()+vendorsim.SupersetCSRFPath, "", map[string]string{"Authorization": "Bearer forged"})
	if status != 401 || h.Get("Set-Cookie") != "" || out["msg"] == nil {
		t.Fatalf("got %d %v %v", status, out, h)
	}
}

func toJSON(v any) string {
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(v)
	return b.String()
}
