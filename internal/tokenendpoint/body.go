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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Bounds of a call's body, so a caller cannot make a replica hold or parse
// more than a template could ever use.
const (
	// MaxBodyBytes bounds the body of a call.
	MaxBodyBytes = 16 << 10
	// MaxParameters bounds the parameters of a call, as a template declares
	// at most 32.
	MaxParameters = 32
	// MaxMinValidFor bounds a call's minValidFor: no vendor's tokens live
	// longer than a day in practice, and a larger value only defeats the
	// cache.
	MaxMinValidFor = 24 * time.Hour
)

// TokenRequest is the body of a call. Both fields are optional.
type TokenRequest struct {
	// Parameters are the values of the template's parameters, by name.
	Parameters map[string]string `json:"parameters,omitempty"`
	// MinValidFor is how long a cached token must still be valid to be
	// served, as a Go duration ("5m"); a third of the token's lifetime when
	// empty.
	MinValidFor string `json:"minValidFor,omitempty"`
}

// TokenResponse is the answer to a successful call.
type TokenResponse struct {
	// Token is the vendor's token.
	Token string `json:"token"`
	// ExpiresAt is when the token stops being valid, RFC 3339.
	ExpiresAt string `json:"expiresAt"`
	// TokenDigest is a short SHA-256 prefix of the token, as the audit log
	// and a stored token's status show it.
	TokenDigest string `json:"tokenDigest"`
	// Cached is true when the token was issued for an earlier call.
	Cached bool `json:"cached"`
}

// DecodeBody reads a call's body strictly: one JSON object with only the
// fields of TokenRequest, at most MaxBodyBytes, MaxParameters parameters and
// a minValidFor between 0 and MaxMinValidFor. An empty body is a call with
// neither. Errors are *Error: 413 for a body too long, 400 otherwise.
func DecodeBody(r io.Reader) (TokenRequest, error) {
	var req TokenRequest
	data, err := io.ReadAll(io.LimitReader(r, MaxBodyBytes+1))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return req, errTooLarge()
		}
		return req, &Error{Status: http.StatusBadRequest, Reason: ReasonBadRequest, Message: "reading the body failed"}
	}
	if len(data) > MaxBodyBytes {
		return req, errTooLarge()
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return req, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return TokenRequest{}, badBody(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return TokenRequest{}, &Error{Status: http.StatusBadRequest, Reason: ReasonBadRequest, Message: "the body must hold one JSON object only"}
	}
	if len(req.Parameters) > MaxParameters {
		return TokenRequest{}, &Error{Status: http.StatusBadRequest, Reason: ReasonInvalidParameters,
			Message: fmt.Sprintf("%d parameters sent, at most %d are accepted", len(req.Parameters), MaxParameters)}
	}
	if _, err := parseMinValidFor(req.MinValidFor); err != nil {
		return TokenRequest{}, err
	}
	return req, nil
}

// parseMinValidFor reads a minValidFor; "" is zero.
func parseMinValidFor(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > MaxMinValidFor {
		return 0, &Error{Status: http.StatusBadRequest, Reason: ReasonBadRequest,
			Message: fmt.Sprintf("minValidFor must be a duration between 0s and %s, such as \"5m\"", MaxMinValidFor)}
	}
	return d, nil
}

func errTooLarge() *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Reason: ReasonRequestTooLarge,
		Message: fmt.Sprintf("the body must be at most %d bytes", MaxBodyBytes)}
}

// badBody describes a JSON error without echoing the body, which may hold
// values that name end users.
func badBody(err error) *Error {
	msg := "the body must be a JSON object {\"parameters\": {\"name\": \"value\"}, \"minValidFor\": \"5m\"}"
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		msg = fmt.Sprintf("the body is not valid JSON at byte %d", syntax.Offset)
	case errors.As(err, &typeErr):
		msg = fmt.Sprintf("field %q must be %s", typeErr.Field, expectedType(typeErr.Field))
	case bytes.HasPrefix([]byte(err.Error()), []byte("json: unknown field")):
		msg = "the body may only hold the fields parameters and minValidFor"
	}
	return &Error{Status: http.StatusBadRequest, Reason: ReasonBadRequest, Message: msg}
}

func expectedType(field string) string {
	if field == "minValidFor" {
		return "a string"
	}
	return "an object of string values"
}
