package providertest

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWTWithExp is an HS256 JWT expiring at exp, like the access tokens some
// vendors issue, for tests of reading expiry from a token's exp claim.
func JWTWithExp(t testing.TB, exp time.Time) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": exp.Unix()}).SignedString([]byte("providertest"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
