package kubectlplugin

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) *metav1.Time {
	t := metav1.NewTime(now.Add(d))
	return &t
}

func etrWith(name string, expires, renew *metav1.Time, failed int32, suspend bool, ready ...string) v1alpha1.EmbedTokenRequest {
	etr := v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}}
	etr.Spec.ProviderRef.Name = "qrvey"
	etr.Spec.Suspend = suspend
	etr.Status.ExpiresAt, etr.Status.RenewAt, etr.Status.FailedAttempts = expires, renew, failed
	if len(ready) == 2 {
		etr.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionStatus(ready[0]), Reason: ready[1]}}
	}
	return etr
}

func TestState(t *testing.T) {
	tests := []struct {
		name   string
		etr    v1alpha1.EmbedTokenRequest
		within time.Duration
		want   string
	}{
		{"no token yet", etrWith("a", nil, nil, 0, false), 0, StateNoToken},
		{"fresh", etrWith("a", at(time.Hour), at(40*time.Minute), 0, false), 0, StateFresh},
		{"renewal time passed", etrWith("a", at(10*time.Minute), at(-time.Minute), 0, false), 0, StateExpiring},
		{"inside --expiring-within", etrWith("a", at(time.Hour), at(40*time.Minute), 0, false), 2 * time.Hour, StateExpiring},
		{"outside --expiring-within", etrWith("a", at(time.Hour), at(40*time.Minute), 0, false), 30 * time.Minute, StateFresh},
		{"refresh failing, still valid", etrWith("a", at(10*time.Minute), at(time.Minute), 2, false), 0, StateFailing},
		{"expired", etrWith("a", at(-time.Second), at(time.Minute), 3, false), 0, StateExpired},
		{"expires exactly now", etrWith("a", at(0), nil, 0, false), 0, StateExpired},
		{"suspended with a valid token", etrWith("a", at(time.Hour), nil, 0, true), 0, StateSuspend},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := State(&tt.etr, now, tt.within); got != tt.want {
				t.Errorf("State = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestUntil(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{59 * time.Minute, "59m"}, {90 * time.Second, "90s"}, {26 * time.Hour, "26h"}, {-5 * time.Minute, "5m ago"}, {0, "0s"},
	} {
		if got := Until(now.Add(tt.d), now); got != tt.want {
			t.Errorf("Until(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestPrintStatus(t *testing.T) {
	items := []v1alpha1.EmbedTokenRequest{
		etrWith("zeta", at(-2*time.Minute), at(5*time.Second), 4, false, "False", "TokenExpired"),
		etrWith("alpha", at(time.Hour), at(40*time.Minute), 0, false, "True", "TokenIssued"),
		etrWith("new", nil, nil, 0, false),
	}
	items[0].Namespace = "web"
	var out bytes.Buffer
	if err := PrintStatus(&out, StatusRows(items, now, 0), true); err != nil {
		t.Fatal(err)
	}
	want := `NAMESPACE   NAME    PROVIDER   READY     REASON         EXPIRES IN   RENEWS IN   STATE
shop        alpha   qrvey      True      TokenIssued    60m          40m         FRESH
shop        new     qrvey      Unknown   -              -            -           NO TOKEN
web         zeta    qrvey      False     TokenExpired   2m ago       5s          EXPIRED
`
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	if err := PrintStatus(&out, StatusRows(items[1:2], now, 0), false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "NAMESPACE") || !strings.HasPrefix(out.String(), "NAME ") {
		t.Errorf("without -A the namespace column is left out:\n%s", out.String())
	}
}

// jwtOf builds a compact JWS from raw header and claims JSON and a
// recognisable signature.
func jwtOf(header, claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(claims)) + ".c2lnbmF0dXJlLXNlY3JldC1ieXRlcw"
}

func TestDecodeJWT(t *testing.T) {
	tests := []struct {
		name   string
		token  string
		wantOK bool
		sub    string
	}{
		{"JWT", jwtOf(`{"alg":"HS256","typ":"JWT"}`, `{"sub":"alice","exp":1795000000}`), true, "alice"},
		{"padded segments", strings.ReplaceAll(jwtOf(`{"alg":"RS256"}`, `{"sub":"bob"}`), ".", "=."), true, "bob"},
		{"opaque", "qv-0f9e8d7c6b5a", false, ""},
		{"JWE has five parts", "a.b.c.d.e", false, ""},
		{"header without alg", jwtOf(`{"typ":"JWT"}`, `{"sub":"x"}`), false, ""},
		{"claims not JSON", jwtOf(`{"alg":"HS256"}`, `not json`), false, ""},
		{"not base64", "###.###.###", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, claims, ok := DecodeJWT(tt.token)
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if ok && claims["sub"] != tt.sub {
				t.Errorf("sub = %v, want %s", claims["sub"], tt.sub)
			}
		})
	}
}

func FuzzDecodeJWT(f *testing.F) {
	f.Add(jwtOf(`{"alg":"HS256"}`, `{"sub":"alice"}`))
	f.Add("opaque")
	f.Add("..")
	f.Fuzz(func(t *testing.T, token string) {
		DecodeJWT(token) // must not panic
	})
}

func TestInspectNeverPrintsTheSignatureOrTokenUnlessAsked(t *testing.T) {
	token := jwtOf(`{"alg":"HS256","kid":"k1"}`, `{"sub":"alice","exp":1795000000,"iat":1794996400}`)
	etr := etrWith("dash", at(time.Hour), at(40*time.Minute), 0, false)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "dash"}, Data: map[string][]byte{
		v1alpha1.SecretTokenKey: []byte(token), v1alpha1.SecretExpiresAtKey: []byte(now.Add(time.Hour).Format(time.RFC3339)),
	}}
	var out bytes.Buffer
	if err := Inspect(&out, &etr, secret, now, false); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"Token:      JWT", `"kid": "k1"`, `"sub": "alice"`, "exp: 2026-11-18T11:06:40Z (3d ago)", "Expires:    2026-11-21T13:00:00Z (in 60m)"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	for _, secretPart := range []string{"c2lnbmF0dXJl", token, strings.Split(token, ".")[1]} {
		if strings.Contains(got, secretPart) {
			t.Errorf("output contains %q:\n%s", secretPart, got)
		}
	}

	out.Reset()
	if err := Inspect(&out, &etr, secret, now, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Raw token:  "+token) {
		t.Errorf("--show-token does not print the token:\n%s", out.String())
	}

	out.Reset()
	secret.Data[v1alpha1.SecretTokenKey] = []byte("opaque-qrvey-token")
	if err := Inspect(&out, &etr, secret, now, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "opaque, 18 bytes") || strings.Contains(out.String(), "opaque-qrvey-token") {
		t.Errorf("opaque token output:\n%s", out.String())
	}
}

// errClosed is what a writer whose reader went away returns.
var errClosed = errors.New("write: broken pipe")

type closedWriter struct{}

func (closedWriter) Write([]byte) (int, error) { return 0, errClosed }

func TestPrintersReportAFailedWrite(t *testing.T) {
	etr := etrWith("dash", at(time.Hour), at(40*time.Minute), 0, false)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "dash"}, Data: map[string][]byte{
		v1alpha1.SecretTokenKey: []byte(jwtOf(`{"alg":"HS256"}`, `{"exp":1795000000}`)),
	}}
	tests := []struct {
		name  string
		print func() error
	}{
		{"inspect reports the failed write of a JWT's description", func() error { return Inspect(closedWriter{}, &etr, secret, now, true) }},
		{"inspect reports the failed write of an empty Secret's description", func() error {
			return Inspect(closedWriter{}, &etr, &corev1.Secret{}, now, false)
		}},
		{"status reports the failed write of its table", func() error {
			return PrintStatus(closedWriter{}, StatusRows([]v1alpha1.EmbedTokenRequest{etr}, now, 0), true)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.print(); !errors.Is(err, errClosed) {
				t.Errorf("got %v, want %v", err, errClosed)
			}
		})
	}
}
