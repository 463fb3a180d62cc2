package sigma_test

import (
	"encoding/base64"
	"flag"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/sigma"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

var update = flag.Bool("update", false, "rewrite the golden wire captures under testdata")

const secretValue = "sigma-embed-secret-value"

func config() *v1alpha1.EmbedProviderSpec {
	return &v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{
		Sigma: &v1alpha1.SigmaProvider{ClientID: "client-123", SecretSecretRef: pt.Ref("sigma/secret")}}}
}

func fullParams() *v1alpha1.SigmaParams {
	return &v1alpha1.SigmaParams{Email: "alice@acme.example", AccountType: "viewer", Teams: []string{"acme", "emea"},
		UserAttributes: map[string]string{"region": "EMEA", "tenant": "acme"}, EvalConnectionID: "conn-7",
		FirstName: "Alice", LastName: "Liddell"}
}

// TestWireCapture compares the header and claims of a token, decoded from
// the JWT as Sigma receives it, with the captures in testdata: every claim
// name is Sigma's, from its JWT claims reference.
func TestWireCapture(t *testing.T) {
	tests := []struct {
		name, golden string
		params       *v1alpha1.SigmaParams
	}{
		{"every claim set", "full", fullParams()},
		{"only the required claims", "minimal", &v1alpha1.SigmaParams{Email: "bob@acme.example"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := pt.Request(t, pt.Creds{"sigma/secret": secretValue}, 0)
			req.Config, req.Params, req.Lifetime = config(), &v1alpha1.VendorParams{Sigma: tc.params}, 15*time.Minute
			tok, err := sigma.NewWithJTI(func() string { return "jti-0001" }).Issue(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(tok.Value, ".")
			if len(parts) != 3 {
				t.Fatalf("not a JWT: %d parts", len(parts))
			}
			var got strings.Builder
			for _, part := range parts[:2] {
				raw, err := base64.RawURLEncoding.DecodeString(part)
				if err != nil {
					t.Fatal(err)
				}
				got.Write(raw)
				got.WriteByte('\n')
			}
			golden(t, filepath.Join("testdata", tc.golden+".golden"), got.String())
			if !tok.IssuedAt.Equal(pt.Epoch) || !tok.ExpiresAt.Equal(pt.Epoch.Add(15*time.Minute)) {
				t.Errorf("window %v..%v", tok.IssuedAt, tok.ExpiresAt)
			}
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("wire capture differs from %s\n got: %s\nwant: %s", path, got, want)
	}
}

func TestClaims(t *testing.T) {
	cfg := config().Sigma
	tests := []struct {
		name     string
		lifetime time.Duration
		wantExp  time.Time
	}{
		{"exp is now plus the lifetime", 10 * time.Minute, pt.Epoch.Add(10 * time.Minute)},
		{"an unset lifetime is an hour", 0, pt.Epoch.Add(time.Hour)},
		{"a fraction of a second is cut", time.Minute + 999*time.Millisecond, pt.Epoch.Add(time.Minute)},
		{"exp is at most 30 days after the backdated iat", 40 * 24 * time.Hour,
			pt.Epoch.Add(-v1alpha1.DefaultJWTClockSkew).Add(v1alpha1.MaxSigmaLifetime * time.Second)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			claims, exp := sigma.Claims(cfg, &v1alpha1.SigmaParams{Email: "a@b.c"}, "j", pt.Epoch, tc.lifetime)
			if !exp.Equal(tc.wantExp) || claims["exp"] != tc.wantExp.Unix() {
				t.Errorf("exp = %v (claim %v), want %v", exp, claims["exp"], tc.wantExp)
			}
			if claims["iat"] != pt.Epoch.Add(-v1alpha1.DefaultJWTClockSkew).Unix() || claims["iss"] != "client-123" || claims["sub"] != "a@b.c" {
				t.Errorf("claims = %v", claims)
			}
		})
	}
}

func TestIssueErrors(t *testing.T) {
	tests := []struct {
		name  string
		creds pt.Creds
		edit  func(*v1alpha1.EmbedProviderSpec)
		want  pt.Want
	}{
		{"an empty secret is refused", pt.Creds{"sigma/secret": "\n"}, nil, pt.Want{Reason: v1alpha1.ReasonInvalidCredentials, Permanent: true, Message: "empty"}},
		{"a missing Secret key is transient", pt.Creds{}, nil, pt.Want{Reason: v1alpha1.ReasonCredentialsNotFound}},
		{"a request for another vendor is a mismatch", pt.Creds{"sigma/secret": secretValue},
			func(c *v1alpha1.EmbedProviderSpec) { c.Sigma = nil }, pt.Want{Reason: v1alpha1.ReasonVendorMismatch, Permanent: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := pt.Request(t, tc.creds, 0)
			req.Config, req.Params = config(), &v1alpha1.VendorParams{Sigma: fullParams()}
			if tc.edit != nil {
				tc.edit(req.Config)
			}
			_, err := sigma.New().Issue(t.Context(), req)
			pt.CheckError(t, err, tc.want, secretValue)
		})
	}
}

// TestSimulatorRedeemsEachTokenOnce opens the embed URL with a token as a
// browser would: the first opening starts a session, the same token again
// is refused, and so are tokens signed with another secret or client ID.
func TestSimulatorRedeemsEachTokenOnce(t *testing.T) {
	clock := clocktesting.NewFakeClock(pt.Epoch)
	sim := vendorsim.New(vendorsim.Options{Clock: clock, SigmaClientID: "client-123", SigmaSecret: secretValue})
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	issue := func(secret, clientID string) string {
		t.Helper()
		req := pt.Request(t, pt.Creds{"sigma/secret": secret}, 0)
		req.Config, req.Params = config(), &v1alpha1.VendorParams{Sigma: fullParams()}
		req.Config.Sigma.ClientID = clientID
		tok, err := sigma.New().Issue(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		return tok.Value
	}
	open := func(token string) int {
		t.Helper()
		resp, err := http.Get(sim.URL() + vendorsim.SigmaEmbedPath + "sales-1a2b3c?:jwt=" + url.QueryEscape(token) + "&:embed=true")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close() //nolint:errcheck // test
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	token := issue(secretValue, "client-123")
	for i, want := range []int{http.StatusOK, http.StatusForbidden} {
		if got := open(token); got != want {
			t.Errorf("opening %d: status %d, want %d", i+1, got, want)
		}
	}
	if got := open(issue("other-secret", "client-123")); got != http.StatusUnauthorized {
		t.Errorf("token signed with another secret: %d, want 401", got)
	}
	if got := open(issue(secretValue, "other-client")); got != http.StatusUnauthorized {
		t.Errorf("token of another client: %d, want 401", got)
	}
	if !provider.IsSingleUse(sigma.New(), config()) || sim.IssuedCount() != 1 {
		t.Errorf("single-use %v, sessions %d", provider.IsSingleUse(sigma.New(), config()), sim.IssuedCount())
	}
}
