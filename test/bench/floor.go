package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
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

// floor times the unavoidable API work of issuing N tokens: N Secret creates
// and N status writes, with as many workers as the operator has reconcilers
// and no vendor calls or reads, in namespace ns. With limited it uses the
// manager's QPS and burst; without, no client-side rate limit at all (the
// unthrottled floor). The requests it writes status to are created first,
// untimed.
func floor(ctx context.Context, cp *harness.ControlPlane, cfg config, ns string, limited bool) (time.Duration, error) {
	fx := harness.QrveyFixture{Namespace: ns, Provider: "none", SimURL: "http://127.0.0.1:1"}
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return 0, err
	}
	if err := harness.CreateParallel(ctx, cfg.N, clientWorkers, func(ctx context.Context, i int) error {
		return cp.Client.Create(ctx, fx.Request(requestName(i), benchLifetime))
	}); err != nil {
		return 0, err
	}
	c, err := floorClient(cp, cfg, limited)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	err = harness.CreateParallel(ctx, cfg.N, cfg.Concurrency, func(ctx context.Context, i int) error {
		return issueLikeTheOperator(ctx, c, ns, requestName(i))
	})
	return time.Since(start), err
}

// floorWithApply is floor with the requests applied inside the timed window,
// as the operator's "apply N requests → all Ready" is: the benchmark client
// creates the N requests while the floor client (limited or not, as in
// floor) writes each one's Secret and status as soon as it exists. On a
// machine where the API server is the bottleneck, creating the requests (CEL
// validation included) is a large share of the work, and this is the floor
// that pays it.
func floorWithApply(ctx context.Context, cp *harness.ControlPlane, cfg config, ns string, limited bool) (time.Duration, error) {
	fx := harness.QrveyFixture{Namespace: ns, Provider: "none", SimURL: "http://127.0.0.1:1"}
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return 0, err
	}
	c, err := floorClient(cp, cfg, limited)
	if err != nil {
		return 0, err
	}
	created := make([]chan struct{}, cfg.N)
	for i := range created {
		created[i] = make(chan struct{})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	var applyErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		applyErr = harness.CreateParallel(ctx, cfg.N, clientWorkers, func(ctx context.Context, i int) error {
			defer close(created[i])
			return cp.Client.Create(ctx, fx.Request(requestName(i), benchLifetime))
		})
		if applyErr != nil {
			cancel()
		}
	})
	err = harness.CreateParallel(ctx, cfg.N, cfg.Concurrency, func(ctx context.Context, i int) error {
		select {
		case <-created[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		return issueLikeTheOperator(ctx, c, ns, requestName(i))
	})
	wg.Wait()
	return time.Since(start), errors.Join(applyErr, err)
}

// floorClient is a client of its own (its own connections) with the
// manager's QPS and burst when limited, and with no client-side rate limiter
// otherwise.
func floorClient(cp *harness.ControlPlane, cfg config, limited bool) (client.Client, error) {
	rc := rest.CopyConfig(cp.Config)
	rc.QPS, rc.Burst, rc.RateLimiter = -1, 0, nil
	if limited {
		rc.QPS, rc.Burst = float32(cfg.QPS), cfg.Burst
	}
	return client.New(rc, client.Options{Scheme: harness.Scheme})
}

// issueLikeTheOperator writes what the operator writes for one new token:
// the Secret, then the request's status.
func issueLikeTheOperator(ctx context.Context, c client.Client, namespace, name string) error {
	now := time.Now().UTC().Truncate(time.Second)
	expires := now.Add(benchLifetime)
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
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
	etr := &v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
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
