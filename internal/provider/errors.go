package provider

import (
	"errors"
	"fmt"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// Error classifies a failed Issue so the controller can pick a condition
// reason and a retry schedule without knowing the vendor. Its message is shown
// in conditions and events, so it must never hold a token or credential.
type Error struct {
	// Reason is one of the v1alpha1.Reason* condition reasons.
	Reason string
	// Message explains the failure to a person.
	Message string
	// Permanent errors will not go away by retrying soon (bad credentials,
	// bad configuration): they are retried at the slowest backoff.
	Permanent bool
	// RetryAfter is the vendor's requested delay (429/503 Retry-After).
	RetryAfter time.Duration
	// Err is the underlying cause, when safe to show.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent returns an error that retrying soon will not fix.
func Permanent(reason, format string, args ...any) error {
	return &Error{Reason: reason, Message: fmt.Sprintf(format, args...), Permanent: true}
}

// Transient returns an error worth retrying with backoff.
func Transient(reason, format string, args ...any) error {
	return &Error{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Classify returns the *Error in err's chain, or wraps an unclassified error
// as transient VendorUnavailable so nothing is lost.
func Classify(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Reason: v1alpha1.ReasonVendorUnavailable, Message: "vendor call failed", Err: err}
}

// IsPermanent reports whether err should not be retried quickly.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}
