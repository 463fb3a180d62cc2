package issuance

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

func TestGrantedLifetime(t *testing.T) {
	tests := []struct {
		name             string
		requested, limit time.Duration
		want             time.Duration
	}{
		{"a request within the cap gets what it asks", time.Hour, 24 * time.Hour, time.Hour},
		{"a request at the cap gets it", 24 * time.Hour, 24 * time.Hour, 24 * time.Hour},
		{"a request above the cap gets the cap", 87600 * time.Hour, 24 * time.Hour, 24 * time.Hour},
		{"a short cap applies to a default request", time.Hour, 10 * time.Minute, 10 * time.Minute},
		{"no cap leaves the request alone", 87600 * time.Hour, 0, 87600 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := GrantedLifetime(tt.requested, tt.limit); got != tt.want {
				t.Errorf("GrantedLifetime(%s, %s) = %s, want %s", tt.requested, tt.limit, got, tt.want)
			}
		})
	}
}

func TestVendorTimeout(t *testing.T) {
	tests := []struct {
		name       string
		spec       *metav1.Duration
		maxTimeout time.Duration
		want       time.Duration
	}{
		{"no spec.timeout is 10s", nil, 30 * time.Second, 10 * time.Second},
		{"a shorter spec.timeout is kept", &metav1.Duration{Duration: 5 * time.Second}, 30 * time.Second, 5 * time.Second},
		{"a longer spec.timeout is capped", &metav1.Duration{Duration: 5 * time.Minute}, 30 * time.Second, 30 * time.Second},
		{"a cap below the default applies to it", nil, 3 * time.Second, 3 * time.Second},
		{"no cap keeps spec.timeout", &metav1.Duration{Duration: 5 * time.Minute}, 0, 5 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := vendorTimeout(tc.spec, tc.maxTimeout); got != tc.want {
				t.Errorf("vendorTimeout = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestLimitLifetime(t *testing.T) {
	issued := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const secret = "tok-3f9a-the-vendor-token"
	tests := []struct {
		name    string
		callFor time.Duration // how long the vendor call took
		expires time.Time
		policy  string
		// want is the recorded expiry when the token is kept; zero when it
		// is refused.
		want       time.Time
		wantVendor time.Time // the recorded vendor expiry
		wantErr    string
	}{
		{name: "a token at exactly maxLifetime, as the operator signs it, is kept as it is",
			expires: issued.Add(10 * time.Minute), want: issued.Add(10 * time.Minute)},
		{name: "a token shorter than maxLifetime is kept as it is",
			expires: issued.Add(5 * time.Minute), want: issued.Add(5 * time.Minute)},
		{name: "a vendor clock a few seconds ahead of the operator's still honours maxLifetime",
			expires: issued.Add(10*time.Minute + 4*time.Second), want: issued.Add(10*time.Minute + 4*time.Second)},
		{name: "a token minted at the end of a slow call and stated on the vendor's clock still honours maxLifetime",
			callFor: 8 * time.Second, expires: issued.Add(10*time.Minute + 11*time.Second), want: issued.Add(10*time.Minute + 11*time.Second)},
		{name: "a vendor that ignores the lifetime is refused by default",
			expires: issued.Add(time.Hour),
			wantErr: "the vendor issued a token valid for 1h, longer than provider shared's maxLifetime of 10m; it was refused and not stored (the provider's lifetimeExceedsMax is Refuse)"},
		{name: "a vendor that ignores the lifetime is refused under Refuse",
			expires: issued.Add(time.Hour), policy: v1alpha1.LifetimeExceedsMaxRefuse,
			wantErr: "the vendor issued a token valid for 1h, longer than provider shared's maxLifetime"},
		{name: "a token just beyond the tolerance is refused",
			expires: issued.Add(10*time.Minute + lifetimeTolerance + time.Second),
			wantErr: "the vendor issued a token valid for 10m6s, longer than provider shared's maxLifetime of 10m"},
		{name: "a placeholder expiry in the year 9000 is refused and told by its date",
			expires: time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC),
			wantErr: "the vendor issued a token valid until 9000-01-01T00:00:00Z, longer than provider shared's maxLifetime of 10m"},
		{name: "under RenewAtMax a longer token is kept, recorded as expiring at maxLifetime, with the vendor's expiry",
			expires: issued.Add(time.Hour), policy: v1alpha1.LifetimeExceedsMaxRenewAtMax,
			want: issued.Add(10 * time.Minute), wantVendor: issued.Add(time.Hour)},
		{name: "under RenewAtMax a token within maxLifetime keeps its own expiry",
			expires: issued.Add(10 * time.Minute), policy: v1alpha1.LifetimeExceedsMaxRenewAtMax,
			want: issued.Add(10 * time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := provider.Token{Value: secret, IssuedAt: issued, ExpiresAt: tt.expires}
			got, err := holdToMaxLifetime(tok, issued.Add(tt.callFor), "shared", 10*time.Minute, tt.policy)
			if tt.wantErr != "" {
				var perr *provider.Error
				if !errors.As(err, &perr) {
					t.Fatalf("holdToMaxLifetime kept the token (expires %s), want it refused", got.ExpiresAt)
				}
				if perr.Reason != v1alpha1.ReasonLifetimeExceedsMax || !perr.Permanent {
					t.Errorf("refused with reason %s (permanent %t), want permanent %s", perr.Reason, perr.Permanent, v1alpha1.ReasonLifetimeExceedsMax)
				}
				if !strings.Contains(perr.Message, tt.wantErr) {
					t.Errorf("message %q does not contain %q", perr.Message, tt.wantErr)
				}
				if strings.Contains(perr.Error(), secret) || got.Value != "" {
					t.Error("the refusal carries the token")
				}
				return
			}
			if err != nil {
				t.Fatalf("holdToMaxLifetime refused the token: %v", err)
			}
			if !got.ExpiresAt.Equal(tt.want) || !got.VendorExpiresAt.Equal(tt.wantVendor) || got.Value != secret || !got.IssuedAt.Equal(issued) {
				t.Errorf("kept token expires %s (vendor %s), want %s (vendor %s)", got.ExpiresAt, got.VendorExpiresAt, tt.want, tt.wantVendor)
			}
		})
	}
}
