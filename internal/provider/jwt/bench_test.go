package jwtprovider_test

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	jwtprovider "github.com/embedtokens/embed-token-operator/internal/provider/jwt"
	"github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// These benchmarks cover local JWT signing, the whole of this provider's
// work per token. `make bench` runs them; compare runs with benchstat.

// benchSubject is the user every benchmarked token is for.
const benchSubject = "alice@acme.example.com"

// benchAlgorithms are the supported algorithms, each with the in-memory
// credential (see keys in jwt_test.go) and the key that verifies its tokens.
func benchAlgorithms() []struct {
	alg, cred string
	verify    any
} {
	k := keys()
	return []struct {
		alg, cred string
		verify    any
	}{
		{"HS256", "hmac", []byte(hmacSecret)},
		{"HS384", "hmac", []byte(hmacSecret)},
		{"HS512", "hmac", []byte(hmacSecret)},
		{"RS256", "rsa-pkcs1", &k.rsa.PublicKey},
		{"ES256", "ec-sec1", &k.ec.PublicKey},
	}
}

// benchConfig is a Tableau connected-app style provider (see the package
// doc) signing with alg and the credential "k/<cred>".
func benchConfig(alg, cred string) v1alpha1.JWTProvider {
	return v1alpha1.JWTProvider{
		Algorithm:           alg,
		SigningKeySecretRef: providertest.Ref("k/" + cred),
		Issuer:              "9f1c2d3e-4b5a-6c7d-8e9f-0a1b2c3d4e5f",
		Audience:            "tableau",
		KeyID:               "1a2b3c4d-5e6f-7a8b-9c0d-e1f2a3b4c5d6",
		Headers:             map[string]string{"iss": "9f1c2d3e-4b5a-6c7d-8e9f-0a1b2c3d4e5f"},
		MaxLifetime:         &metav1.Duration{Duration: 10 * time.Minute},
	}
}

// benchParams is a realistic request: a user, scopes and the user
// attributes row-level security filters on.
func benchParams() v1alpha1.JWTParams {
	return v1alpha1.JWTParams{
		Subject: benchSubject,
		Claims: raw(`{"scp":["tableau:views:embed","tableau:metrics:embed"],` +
			`"https://tableau.com/oda":"true","Region":["EMEA","APAC"],"Department":"Finance",` +
			`"resource":{"dashboard":42},"params":{"tenant":"acme-corp","year":2030}}`),
	}
}

// BenchmarkIssue measures the provider's real Issue path per algorithm:
// merge the claims, read the signing key from the (in-memory) Secret and
// find it parsed in the cache, and sign. Setup verifies one token with the matching public key.
func BenchmarkIssue(b *testing.B) {
	for _, tc := range benchAlgorithms() {
		b.Run(tc.alg, func(b *testing.B) {
			req := providertest.Request(b, keys().creds, 0)
			cfg, params := benchConfig(tc.alg, tc.cred), benchParams()
			req.Config.JWT, req.Params.JWT = &cfg, &params
			p, ctx := jwtprovider.New(), context.Background()

			tok, err := p.Issue(ctx, req)
			if err != nil {
				b.Fatal(err)
			}
			claims := jwt.MapClaims{}
			if _, err := jwt.ParseWithClaims(tok.Value, claims, func(*jwt.Token) (any, error) { return tc.verify, nil },
				jwt.WithValidMethods([]string{tc.alg}), jwt.WithTimeFunc(func() time.Time { return providertest.Epoch })); err != nil {
				b.Fatalf("verify %s token: %v", tc.alg, err)
			}
			if claims["sub"] != benchSubject || claims["Department"] != "Finance" {
				b.Fatalf("%s token claims = %v", tc.alg, claims)
			}

			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Issue(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkValidate measures reading the signing key and finding it in the
// provider's cache of parsed keys, which Issue repeats on every call, so
// its share of BenchmarkIssue shows.
func BenchmarkValidate(b *testing.B) {
	for _, tc := range benchAlgorithms() {
		b.Run(tc.alg, func(b *testing.B) {
			cfg := benchConfig(tc.alg, tc.cred)
			spec := &v1alpha1.EmbedProviderSpec{}
			spec.JWT = &cfg
			creds, p, ctx := keys().creds, jwtprovider.New(), context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Validate(ctx, spec, creds); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBuildClaims measures merging the request's claims with the ones
// the operator owns, the algorithm-independent part of Issue.
func BenchmarkBuildClaims(b *testing.B) {
	cfg, params := benchConfig("HS256", "hmac"), benchParams()
	b.ReportAllocs()
	for b.Loop() {
		claims, _, err := jwtprovider.BuildClaims(&cfg, &params, time.Hour, providertest.Epoch)
		if err != nil || claims["sub"] != benchSubject {
			b.Fatalf("BuildClaims = %v, %v", claims, err)
		}
	}
}
