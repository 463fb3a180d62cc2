package tokenclient

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzRetryAfter checks that no header value panics or yields a negative
// wait.
func FuzzRetryAfter(f *testing.F) {
	for _, seed := range []string{"", "0", "2", "-5", "99999999999999999999", "Mon, 07 Dec 2026 12:00:05 GMT", "soon", " 3 "} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		if d := retryAfter(value, start); d < 0 {
			t.Errorf("retryAfter(%q) = %s", value, d)
		}
	})
}

// FuzzRefusal checks that any error answer becomes an *Error with its
// status, whatever its body and Retry-After, and that the body is read
// bounded.
func FuzzRefusal(f *testing.F) {
	f.Add(429, `{"reason":"RateLimited","message":"slow down"}`, "2")
	f.Add(503, `not json`, "")
	f.Add(401, ``, "Mon, 07 Dec 2026 12:00:05 GMT")
	f.Add(400, `{"reason":5}`, "x")
	f.Fuzz(func(t *testing.T, status int, body, retry string) {
		resp := &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {retry}},
			Body: io.NopCloser(strings.NewReader(body + strings.Repeat(" ", 2*maxErrorBytes)))}
		e := refusalOf(resp, start)
		if e.StatusCode != status || e.RetryAfter < 0 || len(e.Message) > maxErrorBytes {
			t.Errorf("refusalOf(%d, %q, %q) = %#v", status, body, retry, e)
		}
		_ = e.Error()
	})
}

// TestRetryAfter reads both forms of the header.
func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name, value string
		want        time.Duration
	}{
		{"seconds are read as seconds", "7", 7 * time.Second},
		{"an HTTP date is read as the time until it", start.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"a past date is no wait", start.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"a negative number is no wait", "-3", 0},
		{"no header is no wait", "", 0},
		{"garbage is no wait", "later", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryAfter(tt.value, start); got != tt.want {
				t.Errorf("retryAfter(%q) = %s, want %s", tt.value, got, tt.want)
			}
		})
	}
}
