package vendorsim_test

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // Looker's signature is HMAC-SHA1
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

var simEpoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// lookerURL signs a minimal Looker embed URL for host as the Embed SDK does.
func lookerURL(host, secret, nonce string, unix int64) string {
	path := "/login/embed/" + url.PathEscape("/embed/dashboards/1")
	v := map[string]string{"nonce": strconv.Quote(nonce), "time": strconv.FormatInt(unix, 10), "session_length": "600",
		"external_user_id": `"u"`, "permissions": `["access_data"]`, "models": `["m"]`, "access_filters": "{}"}
	lines := []string{host, path}
	for _, k := range []string{"nonce", "time", "session_length", "external_user_id", "permissions", "models", "access_filters"} {
		lines = append(lines, v[k])
	}
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(strings.Join(lines, "\n")))
	q := url.Values{"signature": {base64.StdEncoding.EncodeToString(mac.Sum(nil))}}
	for k, val := range v {
		q.Set(k, val)
	}
	return path + "?" + q.Encode()
}

func get(t *testing.T, h http.Handler, target string) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://sim.example"+target, nil))
	return rec.Code
}

// TestRedeemersForgetOnReset: a nonce or jti redeemed once is refused again
// until Reset, which a test runner calls between cases.
func TestRedeemersForgetOnReset(t *testing.T) {
	s := vendorsim.New(vendorsim.Options{Clock: clocktesting.NewFakeClock(simEpoch)})
	u := lookerURL("sim.example", vendorsim.DefaultLookerEmbedSecret, "n1", simEpoch.Unix())
	for i, want := range []int{200, 403} {
		if got := get(t, s.Handler(), u); got != want {
			t.Errorf("redemption %d: %d, want %d", i+1, got, want)
		}
	}
	s.Reset()
	if got := get(t, s.Handler(), u); got != 200 {
		t.Errorf("after Reset: %d, want 200", got)
	}
}

func TestLookerRedemption(t *testing.T) {
	tests := []struct {
		name   string
		target func() string
		want   int
	}{
		{"a URL signed for the simulator's host opens a session", func() string {
			return lookerURL("sim.example", vendorsim.DefaultLookerEmbedSecret, "a", simEpoch.Unix())
		}, 200},
		{"a URL signed for another host is refused", func() string {
			return lookerURL("other.example", vendorsim.DefaultLookerEmbedSecret, "b", simEpoch.Unix())
		}, 401},
		{"a URL whose time is 6 minutes old is refused", func() string {
			return lookerURL("sim.example", vendorsim.DefaultLookerEmbedSecret, "c", simEpoch.Add(-6*time.Minute).Unix())
		}, 401},
		{"a URL whose time is 6 minutes ahead is refused", func() string {
			return lookerURL("sim.example", vendorsim.DefaultLookerEmbedSecret, "d", simEpoch.Add(6*time.Minute).Unix())
		}, 401},
		{"a repeated parameter is refused", func() string {
			return lookerURL("sim.example", vendorsim.DefaultLookerEmbedSecret, "e", simEpoch.Unix()) + "&nonce=%22f%22"
		}, 400},
		{"a URL without a signature is refused", func() string {
			u := lookerURL("sim.example", vendorsim.DefaultLookerEmbedSecret, "g", simEpoch.Unix())
			return strings.Replace(u, "signature=", "sig=", 1)
		}, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := vendorsim.New(vendorsim.Options{Clock: clocktesting.NewFakeClock(simEpoch)})
			if got := get(t, s.Handler(), tc.target()); got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
		})
	}
}

// TestAdminRedactsSingleUseTokens: the call log never shows a redeemable
// token, signature or nonce.
func TestAdminRedactsSingleUseTokens(t *testing.T) {
	s := vendorsim.New(vendorsim.Options{Clock: clocktesting.NewFakeClock(simEpoch)})
	claims := jwt.MapClaims{"sub": "a@b.c", "jti": "j", "iat": simEpoch.Unix(), "exp": simEpoch.Add(time.Minute).Unix()}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = vendorsim.DefaultSigmaClientID
	signed, err := tok.SignedString([]byte(vendorsim.DefaultSigmaSecret))
	if err != nil {
		t.Fatal(err)
	}
	looker := lookerURL("sim.example", vendorsim.DefaultLookerEmbedSecret, "secret-nonce", simEpoch.Unix())
	for _, target := range []string{vendorsim.SigmaEmbedPath + "w?:jwt=" + signed, vendorsim.TableauSessionPath + "?token=" + signed, looker} {
		get(t, s.Handler(), target)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/_sim/calls", nil))
	var out struct {
		Calls int `json:"calls"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Calls != 3 {
		t.Fatalf("calls = %d, %v", out.Calls, err)
	}
	sig, _ := url.ParseQuery(strings.SplitN(looker, "?", 2)[1])
	for _, secret := range []string{signed, sig.Get("signature"), "secret-nonce"} {
		if strings.Contains(rec.Body.String(), secret) || strings.Contains(rec.Body.String(), url.QueryEscape(secret)) {
			t.Errorf("the admin call log shows %q", secret)
		}
	}
}

// FuzzLookerRedemption sends arbitrary queries to the Looker redeemer: it
// never panics and never opens a session for a URL it did not check.
func FuzzLookerRedemption(f *testing.F) {
	f.Add(strings.SplitN(lookerURL("sim.example", "x", "n", 1), "?", 2)[1])
	f.Add("nonce=&time=-1&session_length=99999999999999999999")
	f.Add("%zz")
	f.Fuzz(func(t *testing.T, query string) {
		s := vendorsim.New(vendorsim.Options{Clock: clocktesting.NewFakeClock(simEpoch)})
		req := httptest.NewRequest(http.MethodGet, "http://sim.example/login/embed/%2Fembed%2Fdashboards%2F1", nil)
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if rec.Code == http.StatusOK {
			t.Fatalf("an unsigned query opened a session: %q", query)
		}
	})
}

// FuzzJWTRedemption sends arbitrary JWTs to the Sigma and Tableau
// redeemers: they never panic and never open a session for a token not
// signed with their secret.
func FuzzJWTRedemption(f *testing.F) {
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.sig")
	f.Add("a.b.c.d")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		s := vendorsim.New(vendorsim.Options{Clock: clocktesting.NewFakeClock(simEpoch)})
		q := url.QueryEscape(token)
		for _, target := range []string{vendorsim.SigmaEmbedPath + "w?:jwt=" + q, vendorsim.TableauSessionPath + "?token=" + q} {
			if got := get(t, s.Handler(), target); got == http.StatusOK {
				t.Fatalf("%s: an unsigned token opened a session", target)
			}
		}
	})
}
