/*
Copyright 2026 The embed-token-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package tokenendpoint

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// FuzzDecodeBody checks that any body decodes to a call within the bounds
// or to a 400 or 413 *Error, without panicking.
func FuzzDecodeBody(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `null`, `{"parameters":{"user":"ann"}}`, `{"parameters":{"a":"b"},"minValidFor":"5m"}`,
		`{"minValidFor":"-1s"}`, `{"parameters":{"a":1}}`, `{"extra":true}`, `{} {}`, `[]`, `"x"`,
		`{"parameters":{"a":"\u0000"}}`, `{"parameters":{"a":"b","a":"c"}}`, strings.Repeat(" ", MaxBodyBytes+1),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeBody(bytes.NewReader(body))
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if e.Status != http.StatusBadRequest && e.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d", e.Status)
			}
			if e.Status == http.StatusRequestEntityTooLarge && len(body) <= MaxBodyBytes {
				t.Fatalf("a body of %d bytes is too large", len(body))
			}
			return
		}
		if len(body) > MaxBodyBytes {
			t.Fatalf("a body of %d bytes was read", len(body))
		}
		if len(req.Parameters) > MaxParameters {
			t.Fatalf("%d parameters", len(req.Parameters))
		}
		if d, err := parseMinValidFor(req.MinValidFor); err != nil || d < 0 || d > MaxMinValidFor {
			t.Fatalf("minValidFor %q", req.MinValidFor)
		}
	})
}
