package looker_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/looker"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// The two URLs below were produced by the signing code of Looker's official
// Embed SDK (looker-open-source/embed-sdk, server_utils/auth_utils.ts:
// createSignedUrl, signEmbedUrl, stringify), run under Node.js with the
// nonce and time fixed, on the inputs of Looker's official SSO examples
// (looker/looker_embed_sso_examples, python_example.py and ruby_example.rb).
// The first sets every optional parameter and a target with a query and
// characters that need encoding; the second only the required ones, on a
// host with a port.
const (
	sdkSecret = "f7f48d6d13d195bec62f625045b26f4a2f4b2a8199fa1e6370f3935f5f519d3c"
	sdkURLAll = "https://looker.example.com/login/embed/%2Fembed%2Fdashboards%2F3%3FRegion%3DEMEA%20%26%20APAC" +
		"?external_user_id=%2257%22&first_name=%22Embed%20Wil%22&last_name=%22Krouse%22" +
		"&permissions=%5B%22see_lookml_dashboards%22%2C%22access_data%22%5D&models=%5B%22thelook%22%5D" +
		"&group_ids=%5B5%2C4%5D&user_attributes=%7B%22an_attribute_name%22%3A%22my_attribute_value%22%2C%22my_number_attribute%22%3A%2242%22%7D" +
		"&external_group_id=%22awesome_engineers%22&access_filters=%7B%7D&force_logout_login=true&session_length=900" +
		"&nonce=%228e3d0c1f5a7b9d2e%22&time=1700000000&signature=kviEotXaqhLU7Wvqn2lyDMvl1Ss%3D"
	sdkURLMinimal = "https://looker.example.com:19999/login/embed/%2Fembed%2Fdashboards%2F42" +
		"?external_user_id=%22user-1%22&permissions=%5B%22access_data%22%2C%22see_user_dashboards%22%5D" +
		"&models=%5B%22sales%22%5D&access_filters=%7B%7D&force_logout_login=false&session_length=3600" +
		"&nonce=%22nonce-2%22&time=1700000123&signature=xVxKCx7%2BL4x08ehLYHCX8VegWmc%3D"
)

func TestSignMatchesTheOfficialEmbedSDK(t *testing.T) {
	tests := []struct {
		name, host, nonce string
		unix, session     int64
		params            v1alpha1.LookerParams
		want              string
	}{
		{
			name: "every parameter set, and a target whose query needs encoding", host: "looker.example.com",
			nonce: "8e3d0c1f5a7b9d2e", unix: 1700000000, session: 900,
			params: v1alpha1.LookerParams{
				TargetPath: "/embed/dashboards/3?Region=EMEA & APAC", ExternalUserID: "57",
				FirstName: "Embed Wil", LastName: "Krouse",
				Permissions: []string{"see_lookml_dashboards", "access_data"}, Models: []string{"thelook"},
				GroupIDs: []int64{5, 4}, ExternalGroupID: "awesome_engineers",
				UserAttributes: map[string]string{"an_attribute_name": "my_attribute_value", "my_number_attribute": "42"},
			},
			want: sdkURLAll,
		},
		{
			name: "only the required parameters, on a host with a port", host: "looker.example.com:19999",
			nonce: "nonce-2", unix: 1700000123, session: 3600,
			params: v1alpha1.LookerParams{
				TargetPath: "/embed/dashboards/42", ExternalUserID: "user-1",
				Permissions: []string{"access_data", "see_user_dashboards"}, Models: []string{"sales"},
				ForceLogoutLogin: ptr.To(false),
			},
			want: sdkURLMinimal,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			secret := sdkSecret
			if tc.want == sdkURLMinimal {
				secret = "secret"
			}
			got, err := looker.Sign([]byte(secret), "https", tc.host, &tc.params, tc.nonce, tc.unix, tc.session)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("signed URL differs from the Embed SDK's\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
}

func TestEncodeURIComponentIsJavaScripts(t *testing.T) {
	for in, want := range map[string]string{
		"/embed/dashboards/1":   "%2Fembed%2Fdashboards%2F1",
		"a b+c&d=e?f#g":         "a%20b%2Bc%26d%3De%3Ff%23g",
		"-_.!~*'()":             "-_.!~*'()",
		"é":                     "%C3%A9",
		`{"k":["v"]}`:           "%7B%22k%22%3A%5B%22v%22%5D%7D",
		"ABCxyz019":             "ABCxyz019",
		"$,;:@/":                "%24%2C%3B%3A%40%2F",
		"multi\nline\ttabbed\r": "multi%0Aline%09tabbed%0D",
	} {
		if got := looker.EncodeURIComponent(in); got != want {
			t.Errorf("EncodeURIComponent(%q) = %q, want %q", in, got, want)
		}
	}
}

const secretValue = "looker-embed-secret-value"

func config(url string) *v1alpha1.EmbedProviderSpec {
	return &v1alpha1.EmbedProviderSpec{AllowInsecureHTTP: true, VendorConfig: v1alpha1.VendorConfig{
		Looker: &v1alpha1.LookerProvider{URL: url, EmbedSecretSecretRef: pt.Ref("looker/secret")}}}
}

func params() *v1alpha1.LookerParams {
	return &v1alpha1.LookerParams{TargetPath: "/embed/dashboards/7", ExternalUserID: "alice",
		Permissions: []string{"access_data", "see_user_dashboards"}, Models: []string{"sales"}}
}

func TestIssue(t *testing.T) {
	tests := []struct {
		name     string
		creds    pt.Creds
		lifetime time.Duration
		edit     func(*v1alpha1.EmbedProviderSpec, *v1alpha1.LookerParams)
		want     pt.Want
		// session is the expected session_length, in seconds.
		session int64
	}{
		{name: "the lifetime becomes the session length and the expiry", lifetime: 15 * time.Minute, session: 900},
		{name: "an unset lifetime asks for an hour", session: 3600},
		{name: "a fraction of a second is cut, not rounded up", lifetime: 90*time.Second + 900*time.Millisecond, session: 90},
		{name: "a lifetime beyond 30 days is cut to Looker's maximum", lifetime: 40 * 24 * time.Hour, session: v1alpha1.MaxLookerSessionLength},
		{name: "a Secret ending in a newline signs with the secret alone", creds: pt.Creds{"looker/secret": secretValue + "\n"}, lifetime: time.Hour, session: 3600},
		{name: "access filters are sent compact", lifetime: time.Hour, session: 3600, edit: func(_ *v1alpha1.EmbedProviderSpec, p *v1alpha1.LookerParams) {
			p.AccessFilters = &apiextensionsv1.JSON{Raw: []byte(`{ "m": {"v.d": "x"} }`)}
		}},
		{name: "access filters that are no object are refused", edit: func(_ *v1alpha1.EmbedProviderSpec, p *v1alpha1.LookerParams) {
			p.AccessFilters = &apiextensionsv1.JSON{Raw: []byte(`["m"]`)}
		}, want: pt.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true, Message: "accessFilters"}},
		{name: "a target outside /embed/ is refused", edit: func(_ *v1alpha1.EmbedProviderSpec, p *v1alpha1.LookerParams) {
			p.TargetPath = "/admin"
		}, want: pt.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true, Message: "targetPath"}},
		{name: "an empty embed secret is refused", creds: pt.Creds{"looker/secret": " \n"},
			want: pt.Want{Reason: v1alpha1.ReasonInvalidCredentials, Permanent: true, Message: "empty"}},
		{name: "a missing Secret key is transient", creds: pt.Creds{},
			want: pt.Want{Reason: v1alpha1.ReasonCredentialsNotFound}},
		{name: "a URL without a host is refused", edit: func(c *v1alpha1.EmbedProviderSpec, _ *v1alpha1.LookerParams) {
			c.Looker.URL = "https:///"
		}, want: pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true}},
		{name: "a request for another vendor is a mismatch", edit: func(c *v1alpha1.EmbedProviderSpec, _ *v1alpha1.LookerParams) {
			c.Looker = nil
		}, want: pt.Want{Reason: v1alpha1.ReasonVendorMismatch, Permanent: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			creds := tc.creds
			if creds == nil {
				creds = pt.Creds{"looker/secret": secretValue}
			}
			req := pt.Request(t, creds, 0)
			req.Config, req.Lifetime = config("https://looker.example.com"), tc.lifetime
			p := params()
			if tc.edit != nil {
				tc.edit(req.Config, p)
			}
			req.Params = &v1alpha1.VendorParams{Looker: p}
			tok, err := looker.NewWithNonce(func() string { return "fixed-nonce" }).Issue(t.Context(), req)
			pt.CheckError(t, err, tc.want, secretValue)
			if tc.want.Reason != "" {
				return
			}
			pt.CheckWindow(t, tok, time.Duration(tc.session)*time.Second)
			u, err := url.Parse(tok.Value)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if q.Get("session_length") != strconv.FormatInt(tc.session, 10) || q.Get("time") != strconv.FormatInt(pt.Epoch.Unix(), 10) || q.Get("nonce") != `"fixed-nonce"` {
				t.Errorf("query = %v", q)
			}
			lines := looker.StringToSign(u.Host, u.EscapedPath(), q.Get)
			if got := looker.Signature([]byte(secretValue), lines); q.Get("signature") != got {
				t.Errorf("signature %q, want %q over %q", q.Get("signature"), got, lines)
			}
			pt.NoLeak(t, tok.String(), secretValue, tok.Value)
		})
	}
}

// TestSimulatorRedeemsEachURLOnce signs URLs for the simulator and opens
// them as a browser would: the first opening starts a session, a second one
// is refused, and so are a URL signed with another secret and one opened
// more than five minutes after it was signed.
func TestSimulatorRedeemsEachURLOnce(t *testing.T) {
	clock := clocktesting.NewFakeClock(pt.Epoch)
	sim := vendorsim.New(vendorsim.Options{Clock: clock, LookerEmbedSecret: secretValue})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	issue := func(secret string) string {
		t.Helper()
		req := pt.Request(t, pt.Creds{"looker/secret": secret}, 0)
		req.Config, req.Params, req.Now = config(sim.URL()), &v1alpha1.VendorParams{Looker: params()}, clock.Now()
		p := params()
		p.TargetPath = "/embed/dashboards/7?Region=EMEA & APAC"
		p.UserAttributes = map[string]string{"tenant": "acme"}
		p.GroupIDs = []int64{3}
		p.ExternalGroupID = "acme"
		req.Params.Looker = p
		tok, err := looker.New().Issue(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		return tok.Value
	}
	open := func(u string) int {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close() //nolint:errcheck // test
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	first := issue(secretValue)
	for i, want := range []int{http.StatusOK, http.StatusForbidden} {
		if got := open(first); got != want {
			t.Errorf("opening %d: status %d, want %d", i+1, got, want)
		}
	}
	if got := open(issue("another-secret")); got != http.StatusUnauthorized {
		t.Errorf("URL signed with another secret: status %d, want 401", got)
	}
	late := issue(secretValue)
	clock.Step(vendorsim.LookerURLMaxAge + time.Second)
	if got := open(late); got != http.StatusUnauthorized {
		t.Errorf("URL opened after 5m: status %d, want 401", got)
	}
	if sim.IssuedCount() != 1 {
		t.Errorf("sessions opened = %d, want 1", sim.IssuedCount())
	}
}

func TestTokensAreSingleUseAndNeverRepeat(t *testing.T) {
	p := looker.New()
	if !provider.IsSingleUse(p, config("https://looker.example.com")) {
		t.Error("Looker URLs are not declared single-use")
	}
	req := pt.Request(t, pt.Creds{"looker/secret": secretValue}, 0)
	req.Config, req.Params = config("https://looker.example.com"), &v1alpha1.VendorParams{Looker: params()}
	a, errA := p.Issue(t.Context(), req)
	b, errB := p.Issue(t.Context(), req)
	if errA != nil || errB != nil || a.Value == b.Value {
		t.Errorf("two issues at the same instant: equal=%v, errors %v %v", a.Value == b.Value, errA, errB)
	}
}

// FuzzSign signs arbitrary user values and checks the URL round-trips:
// it parses, every JSON value decodes back to what was signed, and the
// signature verifies over the values as received.
func FuzzSign(f *testing.F) {
	f.Add("/embed/dashboards/1", "alice", "Ann", "tenant", "acme & co", "grp")
	f.Add("/embed/looks/2?f=a%20b&g=<>", "ü\"", "", "k", " ", "")
	f.Fuzz(func(t *testing.T, suffix, user, first, attr, value, group string) {
		if !utf8.ValidString(user) {
			t.Skip("the API server admits only UTF-8 strings")
		}
		p := &v1alpha1.LookerParams{TargetPath: "/embed/" + suffix, ExternalUserID: user, FirstName: first,
			Permissions: []string{"access_data"}, Models: []string{"m"}, ExternalGroupID: group}
		if attr != "" {
			p.UserAttributes = map[string]string{attr: value}
		}
		signed, err := looker.Sign([]byte("k"), "https", "h.example", p, "n", 1, 60)
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(signed)
		if err != nil {
			t.Fatalf("signed URL does not parse: %v", err)
		}
		q := u.Query()
		if !strings.HasPrefix(u.EscapedPath(), looker.EmbedPathPrefix) || u.Path != looker.EmbedPathPrefix+p.TargetPath {
			t.Fatalf("path %q does not carry the target %q", u.Path, p.TargetPath)
		}
		var gotUser string
		if err := json.Unmarshal([]byte(q.Get("external_user_id")), &gotUser); err != nil || gotUser != user {
			t.Fatalf("external_user_id %q does not decode to %q: %v", q.Get("external_user_id"), user, err)
		}
		if want := looker.Signature([]byte("k"), looker.StringToSign(u.Host, u.EscapedPath(), q.Get)); q.Get("signature") != want {
			t.Fatalf("signature does not verify over the received values")
		}
	})
}
