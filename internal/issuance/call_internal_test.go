package issuance

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/credentials"
	"github.com/embedtokens/embed-token-operator/internal/fairness"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// countingVendor issues an hour-long token on every call and counts them.
type countingVendor struct{ calls atomic.Int32 }

func (v *countingVendor) Issue(_ context.Context, req provider.Request) (provider.Token, error) {
	v.calls.Add(1)
	return provider.Token{Value: "tok", IssuedAt: req.Now, ExpiresAt: req.Now.Add(time.Hour)}, nil
}

func (v *countingVendor) SecretRefs(*v1alpha1.EmbedProviderSpec) []v1alpha1.SecretKeySelector {
	return nil
}

// testIssuer is an Issuer with workers reconcile workers, serving one
// checked provider (shared for a ClusterEmbedProvider) through vendor.
func testIssuer(workers int, shared bool, limit *v1alpha1.RateLimit) (*Issuer, *Provider, *countingVendor) {
	vendor := &countingVendor{}
	i := New(Options{Workers: workers, Providers: map[string]provider.Provider{v1alpha1.VendorQrvey: vendor}, Clock: clock.RealClock{}})
	spec := &v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{Qrvey: &v1alpha1.QrveyProvider{}}, RateLimit: limit}
	var p *Provider
	if shared {
		p = newProvider(&v1alpha1.ClusterEmbedProvider{ObjectMeta: metav1.ObjectMeta{Name: "shared", UID: "uid-shared"}},
			spec, &v1alpha1.EmbedProviderStatus{}, credentials.New(nil, "", true), nil)
	} else {
		p = newProvider(&v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "own", UID: "uid-own"}},
			spec, &v1alpha1.EmbedProviderStatus{}, credentials.New(nil, "team-a", false), nil)
	}
	p.impl = vendor
	return i, p, vendor
}

func endpointCall(namespace string) Call {
	return Call{Namespace: namespace, Key: "template/" + namespace + "/dash", LogKey: "embedTokenTemplate",
		Params: &v1alpha1.VendorParams{Qrvey: &v1alpha1.QrveyParams{UserID: "u"}}, Lifetime: time.Hour}
}

func TestCallWaitsForASlotTheReconcilerHolds(t *testing.T) {
	tests := []struct {
		name   string
		shared bool
		// from is the namespace of the reconciler's call holding the slot.
		from string
	}{
		{"a call waits for the per-namespace slot its namespace's request holds", false, "team-a"},
		{"a call through a shared provider waits for its namespace's share", true, "team-a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Two workers: one call at once per provider and per namespace.
			i, p, vendor := testIssuer(2, tc.shared, nil)
			held := i.TryAdmit(types.NamespacedName{Namespace: tc.from, Name: "request"}, p, tc.from, time.Now())
			if held.Wait != fairness.Admitted {
				t.Fatalf("the reconciler's call is not admitted: %+v", held)
			}
			waiting := make(chan fairness.WaitReason, 1)
			i.onWait = func(w fairness.WaitReason) { waiting <- w }
			done := make(chan error, 1)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			go func() {
				_, err := i.Call(ctx, p, endpointCall("team-a"))
				done <- err
			}()
			if w := <-waiting; w != fairness.WaitSlot {
				t.Fatalf("the call waits for %v, want a slot", w)
			}
			if n := vendor.calls.Load(); n != 0 {
				t.Fatalf("the vendor was called %d times while the slot was held", n)
			}
			held.Release()
			if err := <-done; err != nil {
				t.Fatalf("the call woken by the freed slot failed: %v", err)
			}
			if n := vendor.calls.Load(); n != 1 {
				t.Fatalf("the vendor was called %d times, want 1", n)
			}
			if a := i.TryAdmit(types.NamespacedName{Namespace: "team-a", Name: "next"}, p, "team-a", time.Now()); a.Wait != fairness.Admitted {
				t.Fatalf("the endpoint's call left its slot taken: %+v", a)
			} else {
				a.Release()
			}
		})
	}
}

func TestCallIsThrottledAtOnce(t *testing.T) {
	tests := []struct {
		name     string
		limit    *v1alpha1.RateLimit
		deadline time.Duration
		// before fills the gates before the call.
		before     func(i *Issuer, p *Provider)
		wantReason string
	}{
		{
			name:  "a turn under the rate limit past the call's deadline",
			limit: &v1alpha1.RateLimit{RequestsPerSecond: 1, Burst: 1}, deadline: 300 * time.Millisecond,
			before: func(i *Issuer, p *Provider) {
				if _, err := i.Call(context.Background(), p, endpointCall("team-a")); err != nil {
					t.Fatalf("the first call failed: %v", err)
				}
			},
			wantReason: "the rate limit of EmbedProvider own",
		},
		{
			name:  "a turn under the rate limit further away than MaxCallWait",
			limit: &v1alpha1.RateLimit{RequestsPerSecond: 1, Burst: 1}, deadline: time.Minute,
			before: func(i *Issuer, p *Provider) {
				// Requests waiting for the reconciler hold the next turns.
				for n := range int(MaxCallWait/time.Second) + 1 {
					i.TryAdmit(types.NamespacedName{Namespace: "team-a", Name: "request-" + string(rune('a'+n))}, p, "team-a", time.Now())
				}
			},
			wantReason: "the rate limit of EmbedProvider own",
		},
		{
			name: "a slot queue longer than MaxQueueRounds",
			before: func(i *Issuer, p *Provider) {
				for n := range MaxQueueRounds + 1 {
					who := types.NamespacedName{Namespace: "team-a", Name: "request-" + string(rune('a'+n))}
					i.TryAdmit(who, p, "team-a", time.Now()) // the first holds the slot, the others queue
				}
			},
			deadline:   time.Minute,
			wantReason: "a free vendor call slot of EmbedProvider own",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			i, p, vendor := testIssuer(2, false, tc.limit)
			tc.before(i, p)
			before := vendor.calls.Load()
			i.onWait = func(w fairness.WaitReason) { t.Errorf("the call waits (%v) instead of being throttled", w) }
			ctx, cancel := context.WithTimeout(context.Background(), tc.deadline)
			defer cancel()
			_, err := i.Call(ctx, p, endpointCall("team-a"))
			var throttled *Throttled
			if !errors.As(err, &throttled) {
				t.Fatalf("err = %v, want *Throttled", err)
			}
			if throttled.RetryAfter <= 0 || len(throttled.Reason) < len(tc.wantReason) || throttled.Reason[:len(tc.wantReason)] != tc.wantReason {
				t.Errorf("throttled %+v, want a positive RetryAfter and a reason starting %q", throttled, tc.wantReason)
			}
			if ctx.Err() != nil {
				t.Error("the call waited out its deadline")
			}
			if n := vendor.calls.Load(); n != before {
				t.Errorf("a throttled call reached the vendor")
			}
		})
	}
}

func TestCallTakesItsTurnUnderTheRateLimitWithinItsDeadline(t *testing.T) {
	i, p, vendor := testIssuer(10, false, &v1alpha1.RateLimit{RequestsPerSecond: 4, Burst: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	for range 3 {
		if _, err := i.Call(ctx, p, endpointCall("team-a")); err != nil {
			t.Fatalf("a call within its deadline failed: %v", err)
		}
	}
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Errorf("three calls at 4 a second took %s, want at least 500ms less scheduling slack", took)
	}
	if n := vendor.calls.Load(); n != 3 {
		t.Errorf("vendor calls = %d, want 3", n)
	}
}
