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
)

// outcome is what one reconcile learned; setStatus turns it into the status.
type outcome struct {
	now      time.Time
	stored   StoredToken
	digest   string // of the stored token
	decision Decision
	issued   *provider.Token
	renewAt  time.Time // of the issued token
	err      *provider.Error
	// failedAt is when a failed vendor call ended, zero otherwise; the
	// backoff counts from then, so a call that timed out after 30 s still
	// waits its whole backoff before the next.
	failedAt  time.Time
	vendor    string
	suspended bool
	waiting   bool // a failed attempt is backing off
	// secretAbsent says an uncached read found no Secret, so no other
	// owner's Secret can be in the way.
	secretAbsent bool
	// foreignSecret: the cache holds a Secret with the target name that
	// another request owns.
	foreignSecret bool
	// replaced is the token the Secret held before this reconcile's write.
	replaced string
	// lifetimeNote says what the provider's maxLifetime did to the lifetime
	// asked for and to the stored token; it is added to the Ready message of
	// a valid token.
	lifetimeNote string
	// minRenewInterval is the renewal floor; a token granted for less is
	// renewed only after it expired, and the Ready message says so.
	minRenewInterval time.Duration
	// deferral is set when the vendor call waits for the provider's rate
	// limit or a free call slot.
	deferral *deferral

	storedAt      time.Time // when this reconcile wrote a new token
	restartedFor  string    // digest whose rollout restarts completed
	restartErr    error
	propagatedFor string // digest pushed into every pod spec.propagation selects
	propagateErr  error
	// followUpAt is when to look again for restarts held back to coalesce
	// them, or for a failed restart or push.
	followUpAt time.Time
}

// retryAt asks for a reconcile at t at the latest.
func (o *outcome) retryAt(t time.Time) {
	if o.followUpAt.IsZero() || t.Before(o.followUpAt) {
		o.followUpAt = t
	}
}

// currentDigest is the digest of the token the Secret holds after this
// reconcile, or "" if it holds none.
func (o *outcome) currentDigest() string {
	if o.issued != nil {
		return o.issued.Digest()
	}
	return o.digest
}

// fail records a classified failure of this attempt.
func (o *outcome) fail(err error) {
	o.err = provider.Classify(err)
}

// latest is the last time this reconcile knows of: the end of a failed
// vendor call, or the reconcile's start.
func (o *outcome) latest() time.Time {
	if o.failedAt.After(o.now) {
		return o.failedAt
	}
	return o.now
}

// setStatus is the one place the status is computed. It is a function of the
// previous status and the outcome, so unchanged inputs give an unchanged
// status and no write.
func setStatus(etr *v1alpha1.EmbedTokenRequest, o *outcome) {
	st := &etr.Status
	st.ObservedGeneration = etr.Generation
	st.SecretName = etr.TargetSecretName()
	valid := setToken(etr, o)
	setSchedule(etr, o)
	setConditions(etr, o, valid)
}

// setToken records the token the Secret holds after this reconcile and
// reports whether it is valid.
func setToken(etr *v1alpha1.EmbedTokenRequest, o *outcome) bool {
	st := &etr.Status
	valid := o.stored.Present && o.now.Before(o.stored.ExpiresAt)
	switch {
	case o.issued != nil:
		st.IssuedAt, st.ExpiresAt = timePtr(o.issued.IssuedAt), timePtr(o.issued.ExpiresAt)
		st.TokenDigest = o.issued.Digest()
		st.LastHandledRefresh = etr.Annotations[v1alpha1.RefreshAnnotation]
		st.FailedAttempts = 0
		st.RenewAt = timePtr(o.renewAt)
		valid = true
	case o.stored.Present:
		st.IssuedAt, st.ExpiresAt = timePtr(o.stored.IssuedAt), timePtr(o.stored.ExpiresAt)
		st.TokenDigest = o.digest
		st.LastHandledRefresh = o.stored.RefreshHandled
	}
	if o.restartedFor != "" {
		st.RestartedForDigest = o.restartedFor
	}
	if o.propagatedFor != "" {
		st.PropagatedForDigest = o.propagatedFor
	}
	return valid
}

// setSchedule records a failure and sets renewAt: the next renewal, or the
// retry after the failure's backoff.
func setSchedule(etr *v1alpha1.EmbedTokenRequest, o *outcome) {
	st := &etr.Status
	switch {
	case o.suspended:
		st.RenewAt = nil
	case o.err != nil:
		at := o.latest()
		st.FailedAttempts++
		st.LastFailureTime = timePtr(at)
		st.LastFailure = &v1alpha1.Failure{Reason: o.err.Reason, Message: o.err.Message}
		retry := Backoff(st.FailedAttempts, o.err.Permanent, o.err.RetryAfter, o.stored.ExpiresAt, at, string(etr.UID))
		st.RenewAt = timePtr(at.Add(retry))
	case o.deferral != nil:
		// Not a failure: the attempts, the backoff and renewAt (when the
		// call became due) stay as they were.
	case o.issued == nil && !o.waiting:
		st.FailedAttempts = 0
		st.RenewAt = timePtr(o.decision.At)
	}
}

// setConditions sets Ready, and Reconciling or Stalled when the request is
// not served.
func setConditions(etr *v1alpha1.EmbedTokenRequest, o *outcome, valid bool) {
	st := &etr.Status
	failure := o.err
	if failure == nil && (o.waiting || o.deferral != nil && st.FailedAttempts > 0) {
		// Backing off: the conditions written at the failure still hold,
		// unless the stored token expired meanwhile.
		c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
		if c == nil || (c.Status == metav1.ConditionTrue) == valid || st.LastFailure == nil {
			return
		}
		failure = &provider.Error{Reason: st.LastFailure.Reason, Message: st.LastFailure.Message}
	}
	ready := readyFor(etr, o, valid, failure)
	reconciling, stalled := problemReasons(ready.Reason, failure, valid, o.suspended)
	setOptionalCondition(etr, v1alpha1.ConditionReconciling, reconciling, ready.Message)
	setOptionalCondition(etr, v1alpha1.ConditionStalled, stalled, ready.Message)
	ready.ObservedGeneration = etr.Generation
	meta.SetStatusCondition(&st.Conditions, ready)
}

// readyFor is the Ready condition for the outcome; failure is this
// attempt's, or the last one's while backing off.
func readyFor(etr *v1alpha1.EmbedTokenRequest, o *outcome, valid bool, failure *provider.Error) metav1.Condition {
	st := &etr.Status
	ready := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse}
	switch {
	case o.suspended && valid:
		ready.Status, ready.Reason = metav1.ConditionTrue, v1alpha1.ReasonSuspended
		ready.Message = "Refresh is suspended; the current token " + validUntil(st)
	case o.suspended:
		ready.Reason, ready.Message = v1alpha1.ReasonSuspended, "Refresh is suspended and there is no valid token"
	case failure != nil:
		setFailedReady(&ready, st, o, valid, failure)
	case valid:
		setValidReady(&ready, etr, o)
	case o.deferral != nil:
		ready.Reason, ready.Message = v1alpha1.ReasonIssuing, "Issuing a token: "+o.deferral.message
	case o.stored.Present:
		// Expired, and its renewal waits for the renewal floor.
		ready.Reason = v1alpha1.ReasonTokenExpired
		ready.Message = fmt.Sprintf("The token expired at %s; it renews at %s", formatTime(st.ExpiresAt), formatTime(st.RenewAt)) + o.notes(st)
	default:
		ready.Reason, ready.Message = v1alpha1.ReasonIssuing, "Issuing a token"
	}
	return ready
}

// setFailedReady says why issuing or refreshing failed. While the stored
// token still works, Ready stays True and says why refreshing it failed.
func setFailedReady(ready *metav1.Condition, st *v1alpha1.EmbedTokenRequestStatus, o *outcome, valid bool, failure *provider.Error) {
	switch {
	case valid:
		ready.Status, ready.Reason = metav1.ConditionTrue, failure.Reason
		ready.Message = fmt.Sprintf("Refresh failed: %s; the current token %s; retrying at %s", failure.Message, validUntil(st), formatTime(st.RenewAt))
	case o.stored.Present:
		ready.Reason = v1alpha1.ReasonTokenExpired
		ready.Message = fmt.Sprintf("The token expired at %s and refreshing it failed: %s; retrying at %s", formatTime(st.ExpiresAt), failure.Message, formatTime(st.RenewAt))
	default:
		ready.Reason = failure.Reason
		ready.Message = fmt.Sprintf("Issuing failed: %s; retrying at %s", failure.Message, formatTime(st.RenewAt))
	}
}

// setValidReady reports a valid token: issued or refreshed, when it renews
// or what its renewal waits for, and a restart that failed.
func setValidReady(ready *metav1.Condition, etr *v1alpha1.EmbedTokenRequest, o *outcome) {
	st := &etr.Status
	ready.Status = metav1.ConditionTrue
	if o.restartErr != nil {
		ready.Reason = v1alpha1.ReasonRolloutRestartFailed
		ready.Message = fmt.Sprintf("The token %s, but %v; retrying", validUntil(st), o.restartErr) + o.notes(st)
		return
	}
	if o.propagateErr != nil {
		ready.Reason = v1alpha1.ReasonPropagationFailed
		ready.Message = fmt.Sprintf("The token %s, but %v; pods see it at their next kubelet sync; retrying", validUntil(st), o.propagateErr) + o.notes(st)
		return
	}
	ready.Reason = v1alpha1.ReasonTokenIssued
	if o.issued != nil && o.decision.Reason != RefreshNoToken && o.decision.Reason != RefreshInputsChanged ||
		o.issued == nil && readyReason(etr) == v1alpha1.ReasonTokenRefreshed {
		ready.Reason = v1alpha1.ReasonTokenRefreshed
	}
	ready.Message = "The token " + validUntil(st) + "; it renews at " + formatTime(st.RenewAt) + o.notes(st)
	if o.deferral != nil {
		ready.Message = "The token " + validUntil(st) + "; renewing it is " + o.deferral.message + o.notes(st)
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
func (o *outcome) notes(st *v1alpha1.EmbedTokenRequestStatus) string {
	var notes []string
	if o.lifetimeNote != "" {
		notes = append(notes, o.lifetimeNote)
	}
	if st.IssuedAt != nil && st.ExpiresAt != nil {
		if granted := st.ExpiresAt.Sub(st.IssuedAt.Time); granted < o.minRenewInterval {
			notes = append(notes, fmt.Sprintf("the vendor granted %s, less than the minimum renewal interval of %s, so the token is renewed only after it expired",
				issuance.FormatDuration(granted), issuance.FormatDuration(o.minRenewInterval)))
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
