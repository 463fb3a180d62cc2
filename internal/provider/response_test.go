package provider_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

func TestExpiresIn(t *testing.T) {
	tests := []struct {
		raw     string
		want    time.Duration
		wantOK  bool
		wantErr bool
	}{
		{"", 0, false, false},
		{"null", 0, false, false},
		{"3600", time.Hour, true, false},
		{"1.5", 1500 * time.Millisecond, true, false},
		{`"3600"`, time.Hour, true, false},
		{`" 60 "`, time.Minute, true, false},
		{"0", 0, true, true},
		{"-5", 0, true, true},
		{`""`, 0, true, true},
		{`"soon"`, 0, true, true},
		{`"0x10"`, 0, true, true},
		{`"NaN"`, 0, true, true},
		{"1e300", 0, true, true},
		{"true", 0, true, true},
		{`{"s":1}`, 0, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			got, ok, err := provider.ExpiresIn(json.RawMessage(tc.raw))
			if got != tc.want || ok != tc.wantOK || (err != nil) != tc.wantErr {
				t.Fatalf("ExpiresIn(%s) = %v, %v, %v; want %v, %v, err %v", tc.raw, got, ok, err, tc.want, tc.wantOK, tc.wantErr)
			}
			if err != nil && provider.Classify(err).Reason != v1alpha1.ReasonInvalidResponse {
				t.Errorf("reason = %q", provider.Classify(err).Reason)
			}
		})
	}
}

func TestJWTExpiry(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	sign := func(claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("k"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name, token string
		wantOK      bool
	}{
		{"exp claim", sign(jwt.MapClaims{"exp": exp.Unix()}), true},
		{"no exp", sign(jwt.MapClaims{"sub": "x"}), false},
		{"exp not a number", sign(jwt.MapClaims{"exp": "tomorrow"}), false},
		{"opaque", "qlk_abcdef", false},
		{"empty", "", false},
		{"three garbage parts", "a.b.c", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := provider.JWTExpiry(tc.token)
			if ok != tc.wantOK || (ok && !got.Equal(exp)) {
				t.Fatalf("JWTExpiry = %v, %v; want ok %v", got, ok, tc.wantOK)
			}
		})
	}
}

func TestExpiresInOrJWT(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": now.Add(time.Minute).Unix()}).SignedString([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, expiresIn, token string
		want                   time.Time
		wantErr                bool
	}{
		{"expires_in wins", "60", token, now.Add(time.Minute), false},
		{"expires_in, opaque token", `"3600"`, "opaque", now.Add(time.Hour), false},
		{"JWT exp", "", token, now.Add(time.Minute), false},
		{"null expires_in, JWT exp", "null", token, now.Add(time.Minute), false},
		{"bad expires_in is not overridden", `"soon"`, token, time.Time{}, true},
		{"neither", "", "opaque", time.Time{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := provider.ExpiresInOrJWT(now, json.RawMessage(tc.expiresIn), tc.token)
			if !got.Equal(tc.want) || (err != nil) != tc.wantErr {
				t.Fatalf("ExpiresInOrJWT = %v, %v; want %v, err %v", got, err, tc.want, tc.wantErr)
			}
			if err != nil && (provider.Classify(err).Reason != v1alpha1.ReasonInvalidResponse || strings.Contains(err.Error(), tc.token)) {
				t.Errorf("error = %v", err)
			}
		})
	}
}

func TestDetail(t *testing.T) {
	tests := []struct {
		parts []string
		want  string
	}{
		{nil, ""},
		{[]string{"", "  "}, ""},
		{[]string{"invalid_client", "client authentication failed"}, "invalid_client: client authentication failed"},
		{[]string{"Too many tokens", "Too many tokens"}, "Too many tokens"},
		{[]string{"line\nbreak\x00nul"}, "line break nul"},
		{[]string{strings.Repeat("é", 300)}, strings.Repeat("é", 200) + "…"},
	}
	for _, tc := range tests {
		if got := provider.Detail(tc.parts...); got != tc.want {
			t.Errorf("Detail(%q) = %q, want %q", tc.parts, got, tc.want)
		}
	}
}

func TestDecodeObject(t *testing.T) {
	tests := []struct {
		name, raw string
		want      string // the object re-encoded, or "" for an error
	}{
		{"absent", "", "{}"},
		{"object", `{"a":1.50,"b":{"c":[true]}}`, `{"a":1.50,"b":{"c":[true]}}`},
		{"reserved", `{"a":1,"exp":2}`, ""},
		{"array", `[1]`, ""},
		{"null", `null`, ""},
		{"string", `"x"`, ""},
		{"two objects", `{} {}`, ""},
		{"truncated", `{"a":`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var raw *apiextensionsv1.JSON
			if tc.raw != "" {
				raw = &apiextensionsv1.JSON{Raw: []byte(tc.raw)}
			}
			got, err := provider.DecodeObject("spec.x", raw, "exp", "iat")
			if tc.want == "" {
				e := provider.Classify(err)
				if err == nil || e.Reason != v1alpha1.ReasonInvalidRequest || !e.Permanent || !strings.HasPrefix(e.Message, "spec.x must") {
					t.Fatalf("err = %#v", err)
				}
				return
			}
			enc, _ := json.Marshal(got)
			if err != nil || string(enc) != tc.want {
				t.Fatalf("DecodeObject = %s, %v; want %s", enc, err, tc.want)
			}
		})
	}
}

// TestCheckTokenSize checks the bound every vendor's token is held to: a
// token over provider.MaxTokenBytes is a permanent InvalidResponse error
// that states its size and quotes none of it.
func TestCheckTokenSize(t *testing.T) {
	tests := []struct {
		name  string
		size  int
		error string
	}{
		{"a typical token is accepted", 2 << 10, ""},
		{"a token of exactly 64 KiB is accepted", 64 << 10, ""},
		{"a token one byte over 64 KiB is refused", 64<<10 + 1, "the access token is 65537 bytes, more than the 65536 bytes the operator accepts for a token"},
		{"a token of a megabyte is refused", 1 << 20, "the access token is 1048576 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token := strings.Repeat("t", tc.size)
			err := provider.CheckTokenSize("the access token", token)
			if tc.error == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			e := provider.Classify(err)
			if err == nil || e.Reason != v1alpha1.ReasonInvalidResponse || !e.Permanent || !strings.Contains(e.Message, tc.error) {
				t.Fatalf("error = %v, want a permanent %s error saying %q", err, v1alpha1.ReasonInvalidResponse, tc.error)
			}
			if strings.Contains(e.Message, "tttttttt") {
				t.Error("the message quotes the token")
			}
		})
	}
}
