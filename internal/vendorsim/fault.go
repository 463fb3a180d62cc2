package vendorsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Fault makes vendor endpoints misbehave so tests can prove the operator
// retries, backs off and reports errors correctly. Faults never affect the
// admin API. Status takes precedence over OKWithError, then Garbage, then
// EmptyToken; a Fault with only Delay (or RetryAfter) delays a normal answer.
type Fault struct {
	// Status, when non-zero, is answered with a vendor-shaped JSON error, e.g. 500, 503, 429, 401.
	Status int
	// RetryAfter, when positive, sets the Retry-After header, rounded up to whole seconds.
	RetryAfter time.Duration
	// Delay holds the answer back (in real time) to provoke client timeouts;
	// it ends early when the client goes away or the server closes.
	Delay time.Duration
	// OKWithError, when non-zero, answers HTTP 200 with the vendor-shaped
	// error body a Status fault of this value carries (Qlik's errors[] with
	// its status, Bold BI's ApiStatus false), as vendors and gateways that
	// report failures in the body do.
	OKWithError int
	// Garbage answers 200 with an HTML page instead of JSON.
	Garbage bool
	// EmptyToken answers 200 with a well-formed body whose token is "".
	EmptyToken bool
	// Count limits the fault to the next Count calls; 0 means until ClearFault.
	Count int
}

// faultJSON is Fault's wire form, with durations as Go duration strings like "2s".
type faultJSON struct {
	Status      int    `json:"status,omitempty"`
	RetryAfter  string `json:"retryAfter,omitempty"`
	Delay       string `json:"delay,omitempty"`
	OKWithError int    `json:"okWithError,omitempty"`
	Garbage     bool   `json:"garbage,omitempty"`
	EmptyToken  bool   `json:"emptyToken,omitempty"`
	Count       int    `json:"count,omitempty"`
}

// MarshalJSON writes durations as Go duration strings, the form POST
// /_sim/fault accepts, so Go clients of a standalone simulator can send a Fault as is.
func (f Fault) MarshalJSON() ([]byte, error) {
	w := faultJSON{Status: f.Status, OKWithError: f.OKWithError, Garbage: f.Garbage, EmptyToken: f.EmptyToken, Count: f.Count}
	if f.RetryAfter != 0 {
		w.RetryAfter = f.RetryAfter.String()
	}
	if f.Delay != 0 {
		w.Delay = f.Delay.String()
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads the form written by MarshalJSON and rejects faults the
// simulator cannot apply.
func (f *Fault) UnmarshalJSON(data []byte) error {
	var w faultJSON
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("decode fault: %w", err)
	}
	out := Fault{Status: w.Status, OKWithError: w.OKWithError, Garbage: w.Garbage, EmptyToken: w.EmptyToken, Count: w.Count}
	for _, d := range []struct {
		name string
		in   string
		dst  *time.Duration
	}{{"retryAfter", w.RetryAfter, &out.RetryAfter}, {"delay", w.Delay, &out.Delay}} {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil {
			return fmt.Errorf("fault %s: %w", d.name, err)
		}
		*d.dst = v
	}
	for _, st := range []int{out.Status, out.OKWithError} {
		if st != 0 && (st < 100 || st > 599) {
			return fmt.Errorf("fault status %d is not an HTTP status", st)
		}
	}
	if out.Count < 0 || out.RetryAfter < 0 || out.Delay < 0 {
		return errors.New("fault count and durations must not be negative")
	}
	*f = out
	return nil
}

// SetFault replaces any current fault; it applies to vendor calls that have
// not yet reached fault handling.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = &f
}

// ClearFault restores normal behaviour.
func (s *Server) ClearFault() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = nil
}

// currentFault returns the active fault with its remaining Count, for the admin API.
func (s *Server) currentFault() (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fault == nil {
		return Fault{}, false
	}
	return *s.fault, true
}

// takeFault returns the fault for one call and uses up one of its Count.
func (s *Server) takeFault() (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fault == nil {
		return Fault{}, false
	}
	f := *s.fault
	if s.fault.Count > 0 {
		if s.fault.Count--; s.fault.Count == 0 {
			s.fault = nil
		}
	}
	return f, true
}

// delay waits d of real time and reports false if the client went away first.
// A server shutdown ends the wait early but still lets the call be answered.
func (s *Server) delay(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.done:
		return true
	case <-ctx.Done():
		return false
	}
}
