package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

// floor times the unavoidable API work of issuing N tokens with the
// operator's client settings: N Secret creates and N status writes, with as
// many workers as the operator has reconcilers and no vendor calls or reads.
// The requests it writes status to are created first, untimed.
func floor(ctx context.Context, cp *harness.ControlPlane, cfg config) (time.Duration, error) {
	fx := harness.QrveyFixture{Namespace: floorNS, Provider: "none", SimURL: "http://127.0.0.1:1"}
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: floorNS}}); err != nil {
		return 0, err
	}
	if err := harness.CreateParallel(ctx, cfg.N, clientWorkers, func(ctx context.Context, i int) error {
		return cp.Client.Create(ctx, fx.Request(requestName(i), benchLifetime))
	}); err != nil {
		return 0, err
	}
	limited := rest.CopyConfig(cp.Config)
	limited.QPS, limited.Burst = float32(cfg.QPS), cfg.Burst
	c, err := client.New(limited, client.Options{Scheme: harness.Scheme})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	err = harness.CreateParallel(ctx, cfg.N, cfg.Concurrency, func(ctx context.Context, i int) error {
		return issueLikeTheOperator(ctx, c, requestName(i))
	})
	return time.Since(start), err
}

// issueLikeTheOperator writes what the operator writes for one new token:
// the Secret, then the request's status.
func issueLikeTheOperator(ctx context.Context, c client.Client, name string) error {
	now := time.Now().UTC().Truncate(time.Second)
	expires := now.Add(benchLifetime)
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: floorNS, Name: name,
			Labels: map[string]string{"app.kubernetes.io/part-of": "floor"},
			Annotations: map[string]string{
				v1alpha1.IssuedAtAnnotation: now.Format(time.RFC3339), v1alpha1.ExpiresAtAnnotation: expires.Format(time.RFC3339),
				v1alpha1.InputHashAnnotation: "0123456789abcdef", v1alpha1.RefreshHandledAnnotation: ""}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			v1alpha1.SecretTokenKey:     []byte(vendorsim.QrveyTokenPrefix + "0123456789012345678901234567890123456789012"),
			v1alpha1.SecretExpiresAtKey: []byte(expires.Format(time.RFC3339)),
		},
	}
	if err := c.Create(ctx, secret); err != nil {
		return fmt.Errorf("floor: creating Secret %s: %w", name, err)
	}
	etr := &v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: floorNS, Name: name}}
	before := etr.DeepCopy()
	meta.SetStatusCondition(&etr.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue,
		Reason: v1alpha1.ReasonTokenIssued, Message: "Token issued", ObservedGeneration: 1})
	etr.Status.ExpiresAt = &metav1.Time{Time: expires}
	etr.Status.RenewAt = &metav1.Time{Time: expires.Add(-benchLifetime / 3)}
	etr.Status.ObservedGeneration = 1
	if err := c.Status().Patch(ctx, etr, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("floor: writing status of %s: %w", name, err)
	}
	return nil
}
