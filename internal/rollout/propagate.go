package rollout

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// MaxPropagatedPods bounds the pods one new token is pushed into: one list
// and at most this many pod patches per token, whatever a namespace's pods
// and labels, so one namespace cannot spend the operator's API budget. Pods
// beyond it see the token at the kubelet's next sync of the pod.
const MaxPropagatedPods = 50

// +kubebuilder:rbac:groups="",resources=pods,verbs=list;patch

// Propagate pushes the token with digest into the running pods
// spec.propagation selects, once per token: annotating a pod makes the
// kubelet sync it at once, and the sync rewrites its Secret volumes from
// the kubelet's watch of the Secret, which the Secret write has already
// reached. A failure leaves the token stored; the pods then see it at their
// next periodic sync, and the push is retried.
func (r *Rollout) Propagate(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, digest string) Result {
	if etr.Spec.Propagation == nil || digest == "" || etr.Status.PropagatedForDigest == digest {
		return Result{}
	}
	pushed, err := r.nudgePods(ctx, etr, digest)
	if err != nil {
		log.FromContext(ctx).Error(err, "Pushing the token into pods failed", "embedTokenRequest", klog.KObj(etr))
		return Result{RetryAfter: RetryInterval, Err: fmt.Errorf("pushing the token into pods: %w", err)}
	}
	if pushed > 0 {
		log.FromContext(ctx).V(1).Info("Pushed the token into pods", "embedTokenRequest", klog.KObj(etr), "pods", pushed)
	}
	return Result{Done: true}
}

// nudgePods annotates each selected pod that mounts the request's Secret with
// the token's digest and returns how many it changed.
func (r *Rollout) nudgePods(ctx context.Context, etr *v1alpha1.EmbedTokenRequest, digest string) (int, error) {
	sel, err := metav1.LabelSelectorAsSelector(&etr.Spec.Propagation.PodSelector)
	if err != nil {
		return 0, fmt.Errorf("spec.propagation.podSelector: %w", err)
	}
	pods := &corev1.PodList{}
	if err := r.live.List(ctx, pods, client.InNamespace(etr.Namespace),
		client.MatchingLabelsSelector{Selector: sel}, client.Limit(4*MaxPropagatedPods)); err != nil {
		return 0, fmt.Errorf("listing pods: %w", err)
	}
	patch := PropagatePatch(digest)
	secretName := etr.TargetSecretName()
	pushed := 0
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pushed == MaxPropagatedPods || !consumesSecret(pod, secretName) || pod.Annotations[v1alpha1.TokenDigestAnnotation] == digest {
			continue
		}
		target := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name}}
		if err := r.client.Patch(ctx, target, patch); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return pushed, fmt.Errorf("annotating pod %s: %w", pod.Name, err)
		}
		pushed++
	}
	return pushed, nil
}

// PropagatePatch is the merge patch that pushes the token with digest into a
// pod: it sets the pod's embedtokens.io/tokenDigest annotation and nothing
// else. Exported so the installer tests send exactly this patch through the
// manager's admission policy (config/admission).
func PropagatePatch(digest string) client.Patch {
	return client.RawPatch(types.MergePatchType,
		fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, v1alpha1.TokenDigestAnnotation, digest))
}

// consumesSecret reports whether pod is live and mounts the Secret named name
// through a secret or projected volume, the two the kubelet rewrites in place.
func consumesSecret(pod *corev1.Pod, name string) bool {
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == name {
			return true
		}
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.Secret != nil && s.Secret.Name == name {
				return true
			}
		}
	}
	return false
}
