package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ResignServiceAccountToken returns a copy of the ServiceAccount token tok,
// which the envtest API server whose certificates are in certDir issued,
// with its exp, iat and nbf moved by shift and signed again with that API
// server's service-account key: the API server then checks a token it
// would never issue, such as one that expired hours ago.
func ResignServiceAccountToken(tok string, shift time.Duration, certDir string) (string, error) {
	claims := jwt.MapClaims{}
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, claims)
	if err != nil {
		return "", fmt.Errorf("parsing the ServiceAccount token: %w", err)
	}
	for _, c := range []string{"exp", "iat", "nbf"} {
		if v, ok := claims[c].(float64); ok {
			claims[c] = int64(v) + int64(shift.Seconds())
		}
	}
	pem, err := os.ReadFile(filepath.Join(certDir, "sa-signer.key"))
	if err != nil {
		return "", fmt.Errorf("reading the API server's service-account key: %w", err)
	}
	// envtest's service-account key is ECDSA P-256.
	key, err := jwt.ParseECPrivateKeyFromPEM(pem)
	if err != nil {
		return "", fmt.Errorf("parsing the API server's service-account key: %w", err)
	}
	out := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	out.Header["kid"] = parsed.Header["kid"]
	s, err := out.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("signing the ServiceAccount token: %w", err)
	}
	return s, nil
}
