package rollout

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/refresh"
)

// RestartCoalesceWindow is the least time between two restarts of one
// workload. When several requests feeding the same Deployment get new tokens
// within it, the later ones wait for the window to end and share a single
// rollout, instead of starting one rollout per token.
const RestartCoalesceWindow = 5 * time.Second

// RetryInterval spaces retries of a restart or push that failed (typically
// missing RBAC for the workload); the token itself is already stored.
const RetryInterval = 30 * time.Second

// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=get;patch

// Rollout makes workloads use a request's new token: it restarts the
// workloads that read it from environment variables (Restart) and pushes it
// into the running pods that mount it (Propagate). Both act once per token
// digest and leave the token stored whatever fails.
type Rollout struct {
	// client patches workloads and pods.
	client client.Client
	// live reads workloads and lists pods uncached: the manager caches
	// neither.
	live  client.Reader
	clock clock.PassiveClock
}

// New returns a Rollout that patches through c and reads through live.
func New(c client.Client, live client.Reader, clk clock.PassiveClock) *Rollout {
	return &Rollout{client: c, live: live, clock: clk}
}

// Result is what Restart or Propagate did for one token.
type Result struct {
	// Done says the token reached every target: the status records its
	// digest, and the token is not rolled out again.
	Done bool
	// RetryAfter, when positive, asks to look again after it: a
	// coalescing window, or a failure's retry.
	RetryAfter time.Duration
	// Err is a failure to report; the token stays stored.
	Err error
}

// Restart rolls out the request's rolloutRestartTargets once per new token
// (digest, stored at storedAt), so workloads that read the token from
// environment variables start pods that see it. A target restarted after
// the token was stored, by this request or another, already serves the new
// token and is left alone.
func (r *Rollout) Restart(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, digest string, storedAt time.Time) Result {
	if len(etr.Spec.RolloutRestartTargets) == 0 || digest == "" || etr.Status.RestartedForDigest == digest {
		return Result{}
	}
	for _, t := range etr.Spec.RolloutRestartTargets {
		wait, err := r.restartTarget(ctx, etr, t, storedAt)
		switch {
		case err != nil:
			log.FromContext(ctx).Error(err, "Rollout restart failed", "embedTokenRequest", klog.KObj(etr), "kind", t.Kind, "name", t.Name)
			return Result{RetryAfter: RetryInterval, Err: fmt.Errorf("restarting %s %s: %w", t.Kind, t.Name, err)}
		case wait > 0:
			return Result{RetryAfter: wait}
		}
	}
	return Result{Done: true}
}

// restartTarget restarts one workload unless a restart since storedAt already
// covers the new token, or returns how long to wait for the coalescing window.
func (r *Rollout) restartTarget(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, t v1alpha1.RolloutRestartTarget, storedAt time.Time) (time.Duration, error) {
	obj, err := workload(t.Kind)
	if err != nil {
		return 0, err
	}
	key := client.ObjectKey{Namespace: etr.Namespace, Name: t.Name}
	if err := r.live.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			// Pods created later read the current Secret when they start.
			log.FromContext(ctx).V(1).Info("Rollout restart target not found", "embedTokenRequest", klog.KObj(etr), "kind", t.Kind, "name", t.Name)
			return 0, nil
		}
		return 0, fmt.Errorf("reading it: %w", err)
	}
	now := r.clock.Now()
	if last, ok := restartedAt(podTemplate(obj)); ok {
		if !last.Before(storedAt) {
			return 0, nil
		}
		if since := now.Sub(last); since < RestartCoalesceWindow {
			return RestartCoalesceWindow - since, nil
		}
	}
	err = r.client.Patch(ctx, obj, RestartPatch(obj, now))
	switch {
	case apierrors.IsConflict(err):
		return refresh.MinRetry, nil
	case err != nil:
		return 0, fmt.Errorf("patching its pod template: %w", err)
	}
	log.FromContext(ctx).Info("Restarted rollout for the new token", "embedTokenRequest", klog.KObj(etr), "kind", t.Kind, "name", t.Name)
	return 0, nil
}

// RestartPatch sets the restart annotation on the pod template of obj, a
// Deployment, StatefulSet or DaemonSet as read from the API server, and
// returns the patch that restarts it: a merge patch that changes only that
// annotation. The optimistic lock makes two requests restarting the same
// workload at once conflict; the loser re-reads, sees the fresh restart and
// skips. Exported so the installer tests send exactly this patch through the
// manager's admission policy (config/admission).
func RestartPatch(obj client.Object, now time.Time) client.Patch {
	before := obj.DeepCopyObject().(client.Object)
	tmpl := podTemplate(obj)
	if tmpl.Annotations == nil {
		tmpl.Annotations = map[string]string{}
	}
	tmpl.Annotations[v1alpha1.RestartedAtAnnotation] = now.UTC().Format(time.RFC3339Nano)
	return client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
}

// workload returns an empty object of kind.
func workload(kind string) (client.Object, error) {
	switch kind {
	case "Deployment":
		return &appsv1.Deployment{}, nil
	case "StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "DaemonSet":
		return &appsv1.DaemonSet{}, nil
	}
	return nil, fmt.Errorf("kind %q cannot be restarted", kind)
}

// podTemplate returns the pod template's metadata of a workload returned by
// workload; any other object gets a throwaway one.
func podTemplate(obj client.Object) *metav1.ObjectMeta {
	switch w := obj.(type) {
	case *appsv1.Deployment:
		return &w.Spec.Template.ObjectMeta
	case *appsv1.StatefulSet:
		return &w.Spec.Template.ObjectMeta
	case *appsv1.DaemonSet:
		return &w.Spec.Template.ObjectMeta
	}
	return &metav1.ObjectMeta{}
}

// restartedAt reads the operator's restart annotation from a pod template.
func restartedAt(m *metav1.ObjectMeta) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, m.Annotations[v1alpha1.RestartedAtAnnotation])
	return t, err == nil
}
