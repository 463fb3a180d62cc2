package jwtprovider_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	jwtprovider "github.com/embedtokens/embed-token-operator/internal/provider/jwt"
	"github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// TestClockSkew checks that iat and nbf are backdated by the provider's
// clockSkew, 30s unless set, bounded to 0..5m for providers built in code,
// and that exp and the recorded expiry never move with it. The clock is the
// request's Now, an injected time.
func TestClockSkew(t *testing.T) {
	now := providertest.Epoch
	skew := func(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }
	for _, tc := range []struct {
		name string
		skew *metav1.Duration
		want time.Duration
	}{
		{"unset backdates by the default 30s", nil, 30 * time.Second},
		{"0s sends the signing time", skew(0), 0},
		{"2m backdates by 2m", skew(2 * time.Minute), 2 * time.Minute},
		{"more than 5m, possible only in code, is cut to 5m", skew(time.Hour), 5 * time.Minute},
		{"a negative skew, possible only in code, is 0", skew(-time.Minute), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &v1alpha1.JWTProvider{ClockSkew: tc.skew}
			if got := jwtprovider.ClockSkew(cfg); got != tc.want {
				t.Errorf("ClockSkew = %s, want %s", got, tc.want)
			}
			claims, exp, err := jwtprovider.BuildClaims(cfg, &v1alpha1.JWTParams{}, 10*time.Minute, now)
			if err != nil {
				t.Fatal(err)
			}
			issued := now.Add(-tc.want).Unix()
			if claims["iat"] != issued || claims["nbf"] != issued {
				t.Errorf("iat, nbf = %v, %v; want %d", claims["iat"], claims["nbf"], issued)
			}
			if wantExp := now.Add(10 * time.Minute); claims["exp"] != wantExp.Unix() || !exp.Equal(wantExp) {
				t.Errorf("exp = %v (%s), want %s: the skew must not move it", claims["exp"], exp, wantExp)
			}
		})
	}
}
