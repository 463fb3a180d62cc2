package controller

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/issuance"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/refresh"
)

// setStatus is the one place the status is computed. It is a function of the
// previous status and the outcome, so unchanged inputs give an unchanged
// status and no write.
func setStatus(etr *v1alpha1.EmbedTokenRequest, s *scope) {
	st := &etr.Status
	st.ObservedGeneration = etr.Generation
	st.SecretName = etr.TargetSecretName()
	valid := setToken(etr, s)
	setSchedule(etr, s)
	setConditions(etr, s, valid)
}

// setToken records the token the Secret holds after this reconcile and
// reports whether it is valid.
func setToken(etr *v1alpha1.EmbedTokenRequest, s *scope) bool {
	st := &etr.Status
	valid := s.secret.Stored.Present && s.now.Before(s.secret.Stored.ExpiresAt)
	switch {
	case s.issued != nil:
		st.IssuedAt, st.ExpiresAt = timePtr(s.issued.IssuedAt), timePtr(s.issued.ExpiresAt)
		st.TokenDigest = s.issued.Digest()
		st.LastHandledRefresh = etr.Annotations[v1alpha1.RefreshAnnotation]
		st.FailedAttempts = 0
		st.RenewAt = timePtr(s.renewAt)
		valid = true
	case s.secret.Stored.Present:
		st.IssuedAt, st.ExpiresAt = timePtr(s.secret.Stored.IssuedAt), timePtr(s.secret.Stored.ExpiresAt)
		st.TokenDigest = s.secret.Digest
		st.LastHandledRefresh = s.secret.Stored.RefreshHandled
	}
	if s.restartedFor != "" {
		st.RestartedForDigest = s.restartedFor
	}
	if s.propagatedFor != "" {
		st.PropagatedForDigest = s.propagatedFor
	}
	return valid
}

// setSchedule records a failure and sets renewAt: the next renewal, or the
// retry after the failure's backoff.
func setSchedule(etr *v1alpha1.EmbedTokenRequest, s *scope) {
	st := &etr.Status
	switch {
	case s.suspended:
		st.RenewAt = nil
	case s.err != nil:
		at := s.latest()
		st.FailedAttempts++
		st.LastFailureTime = timePtr(at)
		st.LastFailure = &v1alpha1.Failure{Reason: s.err.Reason, Message: s.err.Message}
		retry := refresh.Backoff(st.FailedAttempts, s.err.Permanent, s.err.RetryAfter, s.secret.Stored.ExpiresAt, at, string(etr.UID))
		st.RenewAt = timePtr(at.Add(retry))
	case s.deferral != nil:
		// Not a failure: the attempts, the backoff and renewAt (when the
		// call became due) stay as they were.
	case s.issued == nil && !s.waiting:
		st.FailedAttempts = 0
		st.RenewAt = timePtr(s.decision.At)
	}
}

// setConditions sets Ready, and Reconciling or Stalled when the request is
// not served.
func setConditions(etr *v1alpha1.EmbedTokenRequest, s *scope, valid bool) {
	st := &etr.Status
	failure := s.err
	if failure == nil && (s.waiting || s.deferral != nil && st.FailedAttempts > 0) {
		// Backing off: the conditions written at the failure still hold,
		// unless the stored token expired meanwhile.
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
		if c == nil || (c.Status == metav1.ConditionTrue) == valid || st.LastFailure == nil {
			return
		}
		failure = &provider.Error{Reason: st.LastFailure.Reason, Message: st.LastFailure.Message}
	}
	ready := readyFor(etr, s, valid, failure)
	reconciling, stalled := problemReasons(ready.Reason, failure, valid, s.suspended)
	setOptionalCondition(etr, v1alpha1.ConditionReconciling, reconciling, ready.Message)
	setOptionalCondition(etr, v1alpha1.ConditionStalled, stalled, ready.Message)
	ready.ObservedGeneration = etr.Generation
	meta.SetStatusCondition(&st.Conditions, ready)
}

// readyFor is the Ready condition for the outcome; failure is this
// attempt's, or the last one's while backing off.
func readyFor(etr *v1alpha1.EmbedTokenRequest, s *scope, valid bool, failure *provider.Error) metav1.Condition {
	st := &etr.Status
	ready := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse}
	switch {
	case s.suspended && valid:
		ready.Status, ready.Reason = metav1.ConditionTrue, v1alpha1.ReasonSuspended
		ready.Message = "Refresh is suspended; the current token " + validUntil(st)
	case s.suspended:
		ready.Reason, ready.Message = v1alpha1.ReasonSuspended, "Refresh is suspended and there is no valid token"
	case failure != nil:
		setFailedReady(&ready, st, s, valid, failure)
	case valid:
		setValidReady(&ready, etr, s)
	case s.deferral != nil:
		ready.Reason, ready.Message = v1alpha1.ReasonIssuing, "Issuing a token: "+s.deferral.message
	case s.secret.Stored.Present:
		// Expired, and its renewal waits for the renewal floor.
		ready.Reason = v1alpha1.ReasonTokenExpired
		ready.Message = fmt.Sprintf("The token expired at %s; it renews at %s", formatTime(st.ExpiresAt), formatTime(st.RenewAt)) + s.notes(st)
	default:
		ready.Reason, ready.Message = v1alpha1.ReasonIssuing, "Issuing a token"
	}
	return ready
}

// setFailedReady says why issuing or refreshing failed. While the stored
// token still works, Ready stays True and says why refreshing it failed.
func setFailedReady(ready *metav1.Condition, st *v1alpha1.EmbedTokenRequestStatus, s *scope, valid bool, failure *provider.Error) {
	switch {
	case valid:
		ready.Status, ready.Reason = metav1.ConditionTrue, failure.Reason
		ready.Message = fmt.Sprintf("Refresh failed: %s; the current token %s; retrying at %s", failure.Message, validUntil(st), formatTime(st.RenewAt))
	case s.secret.Stored.Present:
		ready.Reason = v1alpha1.ReasonTokenExpired
		ready.Message = fmt.Sprintf("The token expired at %s and refreshing it failed: %s; retrying at %s", formatTime(st.ExpiresAt), failure.Message, formatTime(st.RenewAt))
	default:
		ready.Reason = failure.Reason
		ready.Message = fmt.Sprintf("Issuing failed: %s; retrying at %s", failure.Message, formatTime(st.RenewAt))
	}
}

// setValidReady reports a valid token: issued or refreshed, when it renews
// or what its renewal waits for, and a restart that failed.
func setValidReady(ready *metav1.Condition, etr *v1alpha1.EmbedTokenRequest, s *scope) {
	st := &etr.Status
	ready.Status = metav1.ConditionTrue
	if s.restartErr != nil {
		ready.Reason = v1alpha1.ReasonRolloutRestartFailed
		ready.Message = fmt.Sprintf("The token %s, but %v; retrying", validUntil(st), s.restartErr) + s.notes(st)
		return
	}
	if s.propagateErr != nil {
		ready.Reason = v1alpha1.ReasonPropagationFailed
		ready.Message = fmt.Sprintf("The token %s, but %v; pods see it at their next kubelet sync; retrying", validUntil(st), s.propagateErr) + s.notes(st)
		return
	}
	ready.Reason = v1alpha1.ReasonTokenIssued
	if s.issued != nil && s.decision.Reason != refresh.NoToken && s.decision.Reason != refresh.InputsChanged ||
		s.issued == nil && readyReason(etr) == v1alpha1.ReasonTokenRefreshed {
		ready.Reason = v1alpha1.ReasonTokenRefreshed
	}
	ready.Message = "The token " + validUntil(st) + "; it renews at " + formatTime(st.RenewAt) + s.notes(st)
	if s.deferral != nil {
		ready.Message = "The token " + validUntil(st) + "; renewing it is " + s.deferral.message + s.notes(st)
	}
}

// problemReasons are the reasons of the Reconciling and Stalled conditions,
// "" for one that does not apply: a failure that needs a person stalls, the
// rest reconcile while there is no valid token.
func problemReasons(ready string, failure *provider.Error, valid, suspended bool) (reconciling, stalled string) {
	switch {
	case failure != nil && v1alpha1.IsStalledReason(failure.Reason):
		stalled = failure.Reason
	case failure != nil && !valid:
		reconciling = failure.Reason
	case !valid && !suspended:
		reconciling = ready
	}
	return reconciling, stalled
}

// setOptionalCondition sets an abnormal-true condition (kstatus style) when
// reason is non-empty, and removes it otherwise.
func setOptionalCondition(etr *v1alpha1.EmbedTokenRequest, condType, reason, message string) {
	setAbnormalCondition(&etr.Status.Conditions, etr.Generation, condType, reason, message)
}

// setAbnormalCondition sets an abnormal-true condition (kstatus style) of
// an object at generation when reason is non-empty, and removes it
// otherwise.
func setAbnormalCondition(conditions *[]metav1.Condition, generation int64, condType, reason, message string) {
	if reason == "" {
		meta.RemoveStatusCondition(conditions, condType)
		return
	}
	meta.SetStatusCondition(conditions, metav1.Condition{
		Type: condType, Status: metav1.ConditionTrue, Reason: reason, Message: message, ObservedGeneration: generation,
	})
}

func readyReason(etr *v1alpha1.EmbedTokenRequest) string {
	if c := meta.FindStatusCondition(etr.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

func readyMessage(etr *v1alpha1.EmbedTokenRequest) string {
	if c := meta.FindStatusCondition(etr.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		return c.Message
	}
	return ""
}

// notes are the parenthesised notes of a Ready message about the token
// st records: a lifetime capped by the provider, a vendor granting less
// than the renewal floor.
func (s *scope) notes(st *v1alpha1.EmbedTokenRequestStatus) string {
	var notes []string
	if s.lifetimeNote != "" {
		notes = append(notes, s.lifetimeNote)
	}
	if st.IssuedAt != nil && st.ExpiresAt != nil {
		if granted := st.ExpiresAt.Sub(st.IssuedAt.Time); granted < s.input.Renew.MinInterval {
			notes = append(notes, fmt.Sprintf("the vendor granted %s, less than the minimum renewal interval of %s, so the token is renewed only after it expired",
				issuance.FormatDuration(granted), issuance.FormatDuration(s.input.Renew.MinInterval)))
		}
	}
	return noteSuffix(strings.Join(notes, "; "))
}

// noteSuffix appends a parenthesised note to a message, or nothing.
func noteSuffix(note string) string {
	if note == "" {
		return ""
	}
	return " (" + note + ")"
}

func validUntil(st *v1alpha1.EmbedTokenRequestStatus) string {
	return "is valid until " + formatTime(st.ExpiresAt)
}

func formatTime(t *metav1.Time) string {
	if t == nil {
		return "unknown"
	}
	return t.UTC().Format(time.RFC3339)
}

func timePtr(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t.Truncate(time.Second))
	return &mt
}

// lifetimeNote tells the request's owner what the provider's maxLifetime
// did: that it shortened the lifetime asked of the vendor, and that the
// stored token, issued for longer by the vendor, renews as if it expired at
// the cap. It is "" when neither applies. It claims only what happened: a
// vendor may ignore the lifetime asked for, and a stored token outliving
// maxLifetime is either refused or recorded with the vendor's expiry.
func lifetimeNote(s *scope) string {
	p, stored := s.provider, s.secret.Stored
	if p == nil {
		return ""
	}
	var notes []string
	requested, granted := s.request.RequestedLifetime(), s.lifetime
	if granted < requested {
		notes = append(notes, "asked the vendor for "+issuance.FormatDuration(granted)+": provider "+p.Name+
			"'s maxLifetime caps the "+issuance.FormatDuration(requested)+" the request asks for")
	}
	limit := p.Spec.LifetimeCap()
	if stored.Present && stored.VendorExpiresAt.After(stored.IssuedAt.Add(limit)) {
		notes = append(notes, issuance.ExceedsMaxMessage(p.Name, limit, stored.IssuedAt, stored.VendorExpiresAt)+
			"; it is renewed as if it expired after "+issuance.FormatDuration(stored.ExpiresAt.Sub(stored.IssuedAt)))
	}
	return strings.Join(notes, "; ")
}
