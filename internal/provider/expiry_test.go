package provider_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/embedtokens/embed-token-operator/internal/provider"
)

func TestParseExpiresAt(t *testing.T) {
	sec := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		in     any
		format string
		want   time.Time
		err    bool
	}{
		{"detect seconds", json.Number("1893553445"), "", sec, false},
		{"detect seconds string", "1893553445", "", sec, false},
		{"detect fractional seconds", json.Number("1893553445.5"), "", sec.Add(500 * time.Millisecond), false},
		{"detect milliseconds", json.Number("1893553445123"), "", sec.Add(123 * time.Millisecond), false},
		{"detect milliseconds string", "1893553445000", "", sec, false},
		{"detect threshold is milliseconds", json.Number("100000000000"), "", time.UnixMilli(1e11).UTC(), false},
		{"detect below threshold is seconds", json.Number("99999999999"), "", time.Unix(99999999999, 0).UTC(), false},
		{"detect RFC 3339", "2030-01-02T03:04:05Z", "", sec, false},
		{"detect RFC 3339 with offset", "2030-01-02T04:04:05.25+01:00", "", sec.Add(250 * time.Millisecond), false},
		{"RFC 3339 before 1970", "0000-01-10T00:00:00Z", "", time.Time{}, true},
		{"detect locale date", "1/2/2030 3:04:05 AM", "", time.Time{}, true},
		{"detect bool", true, "", time.Time{}, true},
		{"detect zero", json.Number("0"), "", time.Time{}, true},
		{"detect negative", "-1", "", time.Time{}, true},
		{"detect beyond 9999", json.Number("1e20"), "", time.Time{}, true},
		{"explicit seconds", json.Number("1893553445"), provider.ExpiresAtEpochSeconds, sec, false},
		{"explicit seconds, large", json.Number("200000000000"), provider.ExpiresAtEpochSeconds, time.Unix(2e11, 0).UTC(), false},
		{"explicit milliseconds, small", json.Number("1893553445"), provider.ExpiresAtEpochMilliseconds, time.UnixMilli(1893553445).UTC(), false},
		{"explicit milliseconds", "1893553445000", provider.ExpiresAtEpochMilliseconds, sec, false},
		{"explicit RFC 3339", "2030-01-02T03:04:05Z", provider.ExpiresAtRFC3339, sec, false},
		{"explicit RFC 3339 from number", json.Number("1893553445"), provider.ExpiresAtRFC3339, time.Time{}, true},
		{"explicit seconds from date", "2030-01-02T03:04:05Z", provider.ExpiresAtEpochSeconds, time.Time{}, true},
		{"unknown format", "1", "Julian", time.Time{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := provider.ParseExpiresAt(tc.in, tc.format)
			if (err != nil) != tc.err || !got.Equal(tc.want) {
				t.Fatalf("ParseExpiresAt(%v, %q) = %v, %v; want %v, err %v", tc.in, tc.format, got, err, tc.want, tc.err)
			}
		})
	}
}

func TestErrorDetail(t *testing.T) {
	tests := []struct{ body, want string }{
		{`{"message":"bad user"}`, "bad user"},
		{`{"Message":"Invalid embed secret","ApiStatus":false}`, "Invalid embed secret"},
		{`{"StatusMessage":"Forbidden"}`, "Forbidden"},
		{`{"error":"invalid_client","error_description":"client unknown"}`, "client unknown"},
		{`{"error":"invalid_client"}`, "invalid_client"},
		{`{"error":{"message":"secret key is wrong","code":10002}}`, "secret key is wrong"},
		{`{"message":"  "}`, ""},
		{`{"token":"abc"}`, ""},
		{`<html>oops</html>`, ""},
		{`[1,2]`, ""},
		{`{"message":"` + strings.Repeat("é", 300) + `"}`, strings.Repeat("é", 200) + "…"},
	}
	for _, tc := range tests {
		if got := provider.ErrorDetail([]byte(tc.body)); got != tc.want {
			t.Errorf("ErrorDetail(%s) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

func FuzzParseExpiresAt(f *testing.F) {
	for _, s := range []string{"3600", "1893553445", "1893553445123", "2030-01-02T03:04:05Z", "1e308", "-0", "NaN", "", "0.000000001", "99999999999999999999"} {
		f.Add(s, "")
		f.Add(s, provider.ExpiresAtEpochMilliseconds)
	}
	f.Fuzz(func(t *testing.T, s, format string) {
		for _, v := range []any{s, json.Number(s)} {
			if at, err := provider.ParseExpiresAt(v, format); err == nil && (at.Year() < 1970 || at.Year() > 9999) {
				t.Fatalf("ParseExpiresAt(%q) = %v out of range", s, at)
			} else if err != nil && len(s) > 3 && strings.Contains(err.Error(), s) {
				t.Fatalf("error quotes the value: %v", err)
			}
		}
	})
}
