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
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// Reasons the endpoint answers with besides the condition reasons of
// v1alpha1, which it passes on for failures of the issuance path.
const (
	// ReasonInvalidParameters: a parameter is unknown, missing, too long or
	// fails its rule; the message says which.
	ReasonInvalidParameters = "InvalidParameters"
	// ReasonBadRequest: the body is not the JSON object the endpoint reads.
	ReasonBadRequest = "BadRequest"
	// ReasonRequestTooLarge: the body is longer than MaxBodyBytes.
	ReasonRequestTooLarge = "RequestTooLarge"
	// ReasonUnauthorized: no bearer token, or one the API server does not
	// accept for the endpoint's audience.
	ReasonUnauthorized = "Unauthorized"
	// ReasonForbidden: the SubjectAccessReview did not allow the caller to
	// create embedtokentemplates/token for the template.
	ReasonForbidden = "Forbidden"
	// ReasonNotFound: no such route or template.
	ReasonNotFound = "NotFound"
	// ReasonMethodNotAllowed: the route answers POST only.
	ReasonMethodNotAllowed = "MethodNotAllowed"
	// ReasonTemplateNotReady: the template's Ready condition is not True for
	// its current generation.
	ReasonTemplateNotReady = "TemplateNotReady"
	// ReasonRateLimited: the template's rateLimit, or the issuer's shared
	// gates, refuse the call for now; Retry-After says when to try again.
	ReasonRateLimited = "RateLimited"
	// ReasonTimeout: the call did not finish within the endpoint's timeout.
	ReasonTimeout = "Timeout"
	// ReasonServiceUnavailable: the endpoint could not reach the API server
	// to authenticate, authorize or read the template.
	ReasonServiceUnavailable = "ServiceUnavailable"
)

// Error is an answer other than a token: the status, and the reason and
// message the JSON body carries. Minter adapters return it for refusals the
// provider package has no reason for (InvalidParameters).
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Reason is a single CamelCase word a program can switch on.
	Reason string
	// Message explains the refusal to a person; it never holds a token or
	// credential.
	Message string
	// RetryAfter, when positive, is sent as the Retry-After header.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Reason + ": " + e.Message }

// InvalidParameters is the error a Minter returns for a parameter the
// caller must change: unknown, missing, too long, or failing its rule.
func InvalidParameters(format string, args ...any) error {
	return &Error{Status: http.StatusBadRequest, Reason: ReasonInvalidParameters, Message: fmt.Sprintf(format, args...)}
}

// Throttled is the error a Minter returns when the issuer's shared gates
// refuse a vendor call for now rather than queue it; the endpoint answers
// 429 RateLimited with Retry-After.
type Throttled struct {
	// RetryAfter is how long the caller should wait.
	RetryAfter time.Duration
}

func (t *Throttled) Error() string {
	return fmt.Sprintf("vendor calls are throttled; retry after %s", t.RetryAfter)
}

// reasonStatus maps the condition reasons the issuance path fails with to
// the HTTP status the endpoint answers with. Reasons not listed are 502.
var reasonStatus = map[string]int{
	// The caller's request.
	v1alpha1.ReasonRequestDenied:  http.StatusForbidden,
	v1alpha1.ReasonInvalidRequest: http.StatusBadRequest,
	ReasonInvalidParameters:       http.StatusBadRequest,
	// The template's rateLimit or the issuer's gates ask to wait.
	ReasonRateLimited: http.StatusTooManyRequests,
	// The vendor is down or overloaded, or throttles the operator: retry
	// after the vendor's Retry-After, which the answer carries.
	v1alpha1.ReasonVendorUnavailable:   http.StatusServiceUnavailable,
	v1alpha1.ReasonVendorQuotaExceeded: http.StatusServiceUnavailable,
	// The operator cannot call the vendor until a person fixes the
	// provider, its credentials or the egress guard.
	v1alpha1.ReasonProviderNotFound:        http.StatusServiceUnavailable,
	v1alpha1.ReasonProviderInvalid:         http.StatusServiceUnavailable,
	v1alpha1.ReasonVendorMismatch:          http.StatusServiceUnavailable,
	v1alpha1.ReasonVendorNotSupported:      http.StatusServiceUnavailable,
	v1alpha1.ReasonNamespaceNotAllowed:     http.StatusServiceUnavailable,
	v1alpha1.ReasonCredentialsNotFound:     http.StatusServiceUnavailable,
	v1alpha1.ReasonInvalidCredentials:      http.StatusServiceUnavailable,
	v1alpha1.ReasonVendorAddressNotAllowed: http.StatusServiceUnavailable,
	// The vendor answered, but not with a token the operator can hand out.
	// A vendor's per-user limit (Qlik Cloud's) is the vendor refusing,
	// and clients retrying 429 soon would not lift it.
	v1alpha1.ReasonTokenLimitReached:    http.StatusBadGateway,
	v1alpha1.ReasonVendorUnauthorized:   http.StatusBadGateway,
	v1alpha1.ReasonVendorRejected:       http.StatusBadGateway,
	v1alpha1.ReasonInvalidResponse:      http.StatusBadGateway,
	v1alpha1.ReasonLifetimeExceedsMax:   http.StatusBadGateway,
	v1alpha1.ReasonTokenExpiryCapped:    http.StatusBadGateway,
	v1alpha1.ReasonSecretWriteRefused:   http.StatusBadGateway,
	v1alpha1.ReasonPropagationFailed:    http.StatusBadGateway,
	v1alpha1.ReasonRolloutRestartFailed: http.StatusBadGateway,
}

// StatusForReason is the HTTP status for a failure of the issuance path with
// the given condition reason; unknown reasons are the vendor's (502).
func StatusForReason(reason string) int {
	if s, ok := reasonStatus[reason]; ok {
		return s
	}
	return http.StatusBadGateway
}

// toError turns a failure of Prepare or Mint into the endpoint's answer.
// ctx is the call's: its deadline passing is a 504. Messages come from the
// issuance path, which redacts them as it does for conditions.
func toError(ctx context.Context, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var t *Throttled
	if errors.As(err, &t) {
		return &Error{Status: http.StatusTooManyRequests, Reason: ReasonRateLimited,
			Message: "vendor calls for this provider are throttled", RetryAfter: t.RetryAfter}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &Error{Status: http.StatusGatewayTimeout, Reason: ReasonTimeout, Message: "the token was not issued in time"}
	}
	pe := provider.Classify(err)
	return &Error{Status: StatusForReason(pe.Reason), Reason: pe.Reason, Message: pe.Error(), RetryAfter: pe.RetryAfter}
}
