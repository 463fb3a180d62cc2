package provider_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// These fuzz targets cover the shared parsers every vendor package relies
// on. Each asserts a property, not only the absence of a panic; `make fuzz`
// runs each briefly and testdata/fuzz keeps what earlier runs found.

// maxVendorLifetime mirrors provider.maxExpiresIn: ten leap-ish years.
const maxVendorLifetime = 10 * 366 * 24 * time.Hour

func FuzzExpiresIn(f *testing.F) {
	for _, s := range []string{"3600", `"3600"`, `" 60 "`, "1.5", "0", "-1", "1e308", `"NaN"`, "null", "", "true", `{}`, "3.2e9", `"0x10"`} {
		f.Add([]byte(s), uint32(3600))
	}
	f.Fuzz(func(t *testing.T, raw []byte, secs uint32) {
		d, ok, err := provider.ExpiresIn(raw)
		switch {
		case err != nil:
			if !ok {
				t.Fatalf("ExpiresIn(%q): an error must come with ok", raw)
			}
			if e := provider.Classify(err); e.Reason != v1alpha1.ReasonInvalidResponse || e.Permanent {
				t.Fatalf("ExpiresIn(%q) error %v is not a transient InvalidResponse", raw, err)
			}
			if len(raw) > 3 && strings.Contains(err.Error(), string(raw)) {
				t.Fatalf("error quotes the value: %v", err)
			}
		case ok && (d <= 0 || d > maxVendorLifetime):
			t.Fatalf("ExpiresIn(%q) = %v, outside (0, 10y]", raw, d)
		case !ok && d != 0:
			t.Fatalf("ExpiresIn(%q) = %v without ok", raw, d)
		}

		// Whole seconds round-trip in both the number and the string form.
		n := time.Duration(secs%uint32(maxVendorLifetime/time.Second)+1) * time.Second
		num := strconv.FormatInt(int64(n/time.Second), 10)
		for _, form := range []string{num, `"` + num + `"`} {
			if got, ok, err := provider.ExpiresIn(json.RawMessage(form)); err != nil || !ok || got != n {
				t.Fatalf("ExpiresIn(%s) = %v, %v, %v; want %v", form, got, ok, err, n)
			}
		}
	})
}

func FuzzJWTExpiry(f *testing.F) {
	f.Add("", int64(1893553445))
	f.Add("eyJhbGciOiJub25lIn0.eyJleHAiOjF9.", int64(1))
	f.Add("a.b.c", int64(-1))
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJleHAiOiIxIn0.x", int64(253402300799))
	f.Add("...", int64(0))
	f.Fuzz(func(t *testing.T, token string, exp int64) {
		// Arbitrary input: no panic, and only three-part tokens can succeed.
		if _, ok := provider.JWTExpiry(token); ok && strings.Count(token, ".") != 2 {
			t.Fatalf("JWTExpiry(%q) read an exp from something that is not a JWS", token)
		}

		// A real JWT's exp round-trips exactly, signed with any key (exp 0
		// means "no exp" to golang-jwt, like an absent claim).
		exp = 1 + (exp%253402300799+253402300799)%253402300799
		signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": exp}).SignedString([]byte("fuzz-key"))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := provider.JWTExpiry(signed)
		if !ok || got.Unix() != exp {
			t.Fatalf("JWTExpiry(exp=%d) = %v, %v", exp, got, ok)
		}
		// ExpiresInOrJWT falls back to it when expires_in is absent.
		now := pt.Epoch
		at, err := provider.ExpiresInOrJWT(now, nil, signed)
		if err != nil || !at.Equal(got) {
			t.Fatalf("ExpiresInOrJWT without expires_in = %v, %v; want %v", at, err, got)
		}
		// and never uses it when expires_in is present.
		at, err = provider.ExpiresInOrJWT(now, json.RawMessage("60"), signed)
		if err != nil || !at.Equal(now.Add(time.Minute)) {
			t.Fatalf("ExpiresInOrJWT with expires_in = %v, %v", at, err)
		}
	})
}

func FuzzExpiresAtRoundTrip(f *testing.F) {
	for _, secs := range []int64{1, 1893553445, 253402300799, 99999999999, 100000000000, -5, 0} {
		f.Add(secs, uint16(0))
	}
	f.Fuzz(func(t *testing.T, secs int64, millis uint16) {
		// (0, the last whole second of 9999): a fraction on top of
		// 9999-12-31T23:59:59 is out of range, by design.
		secs = 1 + (secs%253402300798+253402300798)%253402300798
		want := time.Unix(secs, 0).UTC()
		forms := map[string]any{
			provider.ExpiresAtRFC3339:      want.Format(time.RFC3339),
			provider.ExpiresAtEpochSeconds: json.Number(strconv.FormatInt(secs, 10)),
		}
		for format, v := range forms {
			if got, err := provider.ParseExpiresAt(v, format); err != nil || !got.Equal(want) {
				t.Fatalf("ParseExpiresAt(%v, %s) = %v, %v; want %v", v, format, got, err, want)
			}
		}
		if secs < provider.EpochMillisecondsThreshold/1000 {
			return // milliseconds below the detection threshold read as seconds, by design
		}
		ms := secs*1000 + int64(millis%1000)
		wantMS := time.UnixMilli(ms).UTC()
		for _, format := range []string{provider.ExpiresAtEpochMilliseconds, provider.ExpiresAtDetect} {
			got, err := provider.ParseExpiresAt(json.Number(strconv.FormatInt(ms, 10)), format)
			if err != nil || !got.Equal(wantMS) {
				t.Fatalf("ParseExpiresAt(%d ms, %q) = %v, %v; want %v", ms, format, got, err, wantMS)
			}
		}
	})
}

func FuzzDetail(f *testing.F) {
	f.Add("OAUTH-14", "Too many tokens", "detail\nwith\x00control")
	f.Add("", " ", "\xff\xfe")
	f.Add(strings.Repeat("é", 300), "x", "x")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		got := provider.Detail(a, b, c)
		if n := utf8.RuneCountInString(got); n > 201 {
			t.Fatalf("Detail is %d runes long", n)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("Detail(%q, %q, %q) = %q is not valid UTF-8", a, b, c, got)
		}
		for _, r := range got {
			if unicode.IsControl(r) {
				t.Fatalf("Detail(%q, %q, %q) = %q holds a control character", a, b, c, got)
			}
		}
	})
}

func FuzzErrorDetail(f *testing.F) {
	for _, seed := range [][2]string{
		{`{"error":"invalid_client","error_description":"`, `"}`},
		{`{"message":"ok","access_token":"`, `"}`},
		{`{"error":{"message":"`, `"}}`},
		{`{"Message":1,"token":"`, `"}`},
		{`{"detail":"`, ``},
		{`<html>`, `</html>`},
	} {
		f.Add([]byte(seed[0]), []byte(seed[1]))
	}
	f.Fuzz(func(t *testing.T, prefix, suffix []byte) {
		body := append(append(append([]byte{}, prefix...), pt.Marker...), suffix...)
		got := provider.ErrorDetail(body)
		if got != provider.Detail(got) {
			t.Fatalf("ErrorDetail(%q) = %q is not normalised by Detail", body, got)
		}
		if !strings.Contains(got, pt.Marker) {
			return
		}
		// The marker may only come from a field vendors use for explanations.
		var fields map[string]json.RawMessage
		if json.Unmarshal(body, &fields) != nil {
			t.Fatalf("ErrorDetail quoted a body that is not a JSON object: %q", body)
		}
		for _, k := range []string{"error_description", "message", "Message", "StatusMessage", "detail", "error"} {
			if strings.Contains(string(fields[k]), pt.Marker) {
				return
			}
		}
		t.Fatalf("ErrorDetail(%q) = %q quotes a field that is not an explanation", body, got)
	})
}

func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"sub":"x"}`, `[]`, `null`, `{"a":1} {"b":2}`, `{"n":1e400}`, `{`, `"str"`, `{"a":{"exp":1}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		withMarker := append(append([]byte{}, raw...), pt.Marker...)
		for _, in := range [][]byte{raw, withMarker} {
			obj, err := provider.DecodeObject("spec.extra", &apiextensionsv1.JSON{Raw: in}, "sub", "exp")
			if err != nil {
				e := provider.Classify(err)
				if e.Reason != v1alpha1.ReasonInvalidRequest || !e.Permanent || strings.Contains(err.Error(), pt.Marker) {
					t.Fatalf("DecodeObject(%q) error %v: want a permanent InvalidRequest that quotes nothing", in, err)
				}
				continue
			}
			if obj == nil {
				t.Fatalf("DecodeObject(%q) returned a nil object", in)
			}
			if _, ok := obj["sub"]; ok {
				t.Fatalf("DecodeObject(%q) let a reserved key through", in)
			}
			if _, ok := obj["exp"]; ok {
				t.Fatalf("DecodeObject(%q) let a reserved key through", in)
			}
		}
	})
}

func FuzzCheckStatus(f *testing.F) {
	for _, seed := range []struct {
		status int
		retry  string
	}{{200, ""}, {401, ""}, {403, "5"}, {404, ""}, {408, ""}, {429, "120"}, {503, "Wed, 21 Oct 2099 07:28:00 GMT"}, {500, "-3"}, {503, "99999999999"}} {
		f.Add(seed.status, seed.retry, "detail")
	}
	f.Fuzz(func(t *testing.T, status int, retry, detail string) {
		status = 100 + (status%500+500)%500
		resp := &provider.Response{Status: status, Header: http.Header{"Retry-After": {retry}}}
		err := provider.CheckStatus(resp, provider.Detail(detail))
		if status >= 200 && status < 300 {
			if err != nil {
				t.Fatalf("CheckStatus(%d) = %v", status, err)
			}
			return
		}
		e := provider.Classify(err)
		if e.RetryAfter < 0 || e.RetryAfter > 10*time.Minute {
			t.Fatalf("Retry-After %q gave %v, outside [0, 10m]", retry, e.RetryAfter)
		}
		wantReason, wantPermanent := v1alpha1.ReasonVendorRejected, true
		switch {
		case status == 401 || status == 403:
			wantReason = v1alpha1.ReasonVendorUnauthorized
		case status == 429:
			wantReason, wantPermanent = v1alpha1.ReasonVendorQuotaExceeded, false
		case status == 408 || status >= 500:
			wantReason, wantPermanent = v1alpha1.ReasonVendorUnavailable, false
		}
		if e.Reason != wantReason || e.Permanent != wantPermanent || !strings.Contains(e.Message, "HTTP "+strconv.Itoa(status)) {
			t.Fatalf("CheckStatus(%d) = %+v; want %s, permanent %v", status, e, wantReason, wantPermanent)
		}
	})
}
