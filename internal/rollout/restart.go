package rollout

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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

	mu sync.Mutex
	// stored holds, for each request whose restarts are pending, the
	// token they are for and when it was stored (Stored).
	stored map[types.NamespacedName]storedToken
}

// storedToken is a token by digest and when it was stored.
type storedToken struct {
	digest string
	at     time.Time
}

// New returns a Rollout that patches through c and reads through live.
func New(c client.Client, live client.Reader, clk clock.PassiveClock) *Rollout {
	return &Rollout{client: c, live: live, clock: clk, stored: map[types.NamespacedName]storedToken{}}
}

// Stored records that the token with digest was stored for etr at at, the
// time Restart compares workloads' last restarts with. Only a request with
// rolloutRestartTargets is recorded, until its restarts are done or it is
// forgotten.
func (r *Rollout) Stored(etr *v1alpha1.EmbedTokenRequest, digest string, at time.Time) {
	if len(etr.Spec.RolloutRestartTargets) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stored[client.ObjectKeyFromObject(etr)] = storedToken{digest: digest, at: at}
}

// Forget drops what is kept for a request that is gone.
func (r *Rollout) Forget(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.stored, key)
}

// storedAt is when the token with digest was stored for the request key, as
// Stored recorded it. For a token this process did not store (it was
// stored before a restart of the manager, or by another replica) it is the
// first time this process asks: the Secret records only the vendor's issue
// time, to the second, and a restart within that second or after the issue
// but before the write would wrongly pass as serving the token, so only a
// restart after now is trusted, at the cost of one more rollout.
func (r *Rollout) storedAt(key types.NamespacedName, digest string, now time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st, ok := r.stored[key]; ok && st.digest == digest {
		return st.at
	}
	r.stored[key] = storedToken{digest: digest, at: now}
	return now
}

// done forgets the stored time of a token whose restarts are done.
func (r *Rollout) done(key types.NamespacedName, digest string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stored[key].digest == digest {
		delete(r.stored, key)
	}
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
// (digest), so workloads that read the token from environment variables
// start pods that see it. A target restarted after the token was stored
// (storedAt), by this request or another, already serves the new token and
// is left alone.
func (r *Rollout) Restart(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, digest string) Result {
	if len(etr.Spec.RolloutRestartTargets) == 0 || digest == "" || etr.Status.RestartedForDigest == digest {
		return Result{}
	}
	key := client.ObjectKeyFromObject(etr)
	storedAt := r.storedAt(key, digest, r.clock.Now())
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
	r.done(key, digest)
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
