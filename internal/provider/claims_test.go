package provider_test

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

func TestCheckJWTClaims(t *testing.T) {
	sign := func(claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("k"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rejected := pt.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "the token has no emb claim or an empty one"}
	for _, tc := range []struct {
		name   string
		token  string
		claims []string
		want   pt.Want
	}{
		{"a claim listing a grant passes", sign(jwt.MapClaims{"emb": []string{"K2Okl"}}), []string{"emb"}, pt.Want{}},
		{"a string, a number, false and an object with keys are not empty",
			sign(jwt.MapClaims{"a": "x", "b": 0, "c": false, "d": map[string]any{"k": 1}}), []string{"a", "b", "c", "d"}, pt.Want{}},
		{"no claims asked for passes even an opaque token", "opaque-token", nil, pt.Want{}},
		{"an empty list is refused", sign(jwt.MapClaims{"emb": []string{}}), []string{"emb"}, rejected},
		{"a missing claim is refused", sign(jwt.MapClaims{"sub": "x"}), []string{"emb"}, rejected},
		{"null is refused", sign(jwt.MapClaims{"emb": nil}), []string{"emb"}, rejected},
		{"an empty string is refused", sign(jwt.MapClaims{"emb": ""}), []string{"emb"}, rejected},
		{"an empty object is refused", sign(jwt.MapClaims{"emb": map[string]any{}}), []string{"emb"}, rejected},
		{"the second of two claims is checked too", sign(jwt.MapClaims{"sub": "x", "emb": []any{}}), []string{"sub", "emb"}, rejected},
		{"an opaque token cannot be checked", "opaque-token", []string{"emb"},
			pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "the token is not a JWT, so its claims emb cannot be checked"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := provider.CheckJWTClaims("the token", tc.token, tc.claims)
			pt.CheckError(t, err, tc.want, tc.token)
		})
	}
}
