package jwtprovider_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	jwtprovider "github.com/embedtokens/embed-token-operator/internal/provider/jwt"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

const hmacSecret = "a-shared-secret-of-at-least-64-bytes-for-hs512-0123456789abcdef!"

// testKeys are generated once: RSA key generation is slow under -race.
type testKeys struct {
	rsa, rsaSmall *rsa.PrivateKey
	ec, ec384     *ecdsa.PrivateKey
	creds         providertest.Creds
}

var keys = sync.OnceValue(func() testKeys {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	k := testKeys{}
	var err error
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsaSmall, err = rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // G403: the key the provider must refuse as too short
	must(err)
	k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	must(err)
	encode := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	pkcs8 := func(key any) string {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		must(err)
		return encode("PRIVATE KEY", der)
	}
	sec1 := func(key *ecdsa.PrivateKey) string {
		der, err := x509.MarshalECPrivateKey(key)
		must(err)
		return encode("EC PRIVATE KEY", der)
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	must(err)
	k.creds = providertest.Creds{
		"k/hmac":        hmacSecret,
		"k/empty":       "",
		"k/rsa-pkcs1":   encode("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k.rsa)),
		"k/rsa-pkcs8":   pkcs8(k.rsa),
		"k/rsa-small":   encode("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k.rsaSmall)),
		"k/ec-sec1":     sec1(k.ec),
		"k/ec-pkcs8":    pkcs8(k.ec),
		"k/ec-p384":     sec1(k.ec384),
		"k/ed25519":     pkcs8(ed),
		"k/public":      encode("PUBLIC KEY", pub),
		"k/garbage-pem": "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbCwganVzdCBieXRlcw==\n-----END RSA PRIVATE KEY-----\n",
		"k/encrypted":   encode("ENCRYPTED PRIVATE KEY", []byte("opaque-encrypted-key-bytes")),
	}
	return k
})

func raw(s string) *apiextensionsv1.JSON { return &apiextensionsv1.JSON{Raw: []byte(s)} }

// request is a JWT request signed with the key at creds "k/<key>".
func request(t *testing.T, alg, key string, cfg v1alpha1.JWTProvider, params v1alpha1.JWTParams) provider.Request {
	req := providertest.Request(t, keys().creds, 0)
	cfg.Algorithm, cfg.SigningKeySecretRef = alg, providertest.Ref("k/"+key)
	req.Config.JWT, req.Params.JWT = &cfg, &params
	return req
}

// verify parses token with the key that must have signed it, at Epoch.
func verify(t *testing.T, token, alg string, key any) (jwt.MapClaims, map[string]any) {
	t.Helper()
	claims := jwt.MapClaims{}
	parsed, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{alg}), jwt.WithTimeFunc(func() time.Time { return providertest.Epoch }),
		jwt.WithIssuedAt(), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("verify %s token: %v", alg, err)
	}
	return claims, parsed.Header
}

func TestIssueEveryAlgorithm(t *testing.T) {
	k := keys()
	tests := []struct {
		alg, key string
		verify   any
	}{
		{"HS256", "hmac", []byte(hmacSecret)},
		{"HS384", "hmac", []byte(hmacSecret)},
		{"HS512", "hmac", []byte(hmacSecret)},
		{"RS256", "rsa-pkcs1", &k.rsa.PublicKey},
		{"RS256", "rsa-pkcs8", &k.rsa.PublicKey},
		{"ES256", "ec-sec1", &k.ec.PublicKey},
		{"ES256", "ec-pkcs8", &k.ec.PublicKey},
	}
	cfg := v1alpha1.JWTProvider{Issuer: "iss-1", Audience: "aud-1", KeyID: "kid-1", Headers: map[string]string{"x-tenant": "acme"}}
	params := v1alpha1.JWTParams{Subject: "alice", Claims: raw(`{"role":"viewer","n":7,"nested":{"a":[1,2]}}`)}
	for _, tc := range tests {
		t.Run(tc.alg+"/"+tc.key, func(t *testing.T) {
			tok, err := jwtprovider.New().Issue(context.Background(), request(t, tc.alg, tc.key, cfg, params))
			providertest.CheckError(t, err, providertest.Want{})
			claims, header := verify(t, tok.Value, tc.alg, tc.verify)
			wantExp := providertest.Epoch.Add(time.Hour)
			if !tok.IssuedAt.Equal(providertest.Epoch) || !tok.ExpiresAt.Equal(wantExp) {
				t.Errorf("token window = %v..%v", tok.IssuedAt, tok.ExpiresAt)
			}
			want := map[string]any{
				"iat": float64(providertest.Epoch.Unix() - 30), "nbf": float64(providertest.Epoch.Unix() - 30), "exp": float64(wantExp.Unix()),
				"iss": "iss-1", "aud": "aud-1", "sub": "alice", "role": "viewer", "n": 7.0,
			}
			for c, v := range want {
				if claims[c] != v {
					t.Errorf("claim %s = %#v, want %#v", c, claims[c], v)
				}
			}
			if nested, _ := claims["nested"].(map[string]any); len(nested["a"].([]any)) != 2 {
				t.Errorf("nested claim = %#v", claims["nested"])
			}
			if jti, _ := claims["jti"].(string); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(jti) {
				t.Errorf("jti = %q, want 128 random bits in hex", jti)
			}
			if header["kid"] != "kid-1" || header["x-tenant"] != "acme" || header["typ"] != "JWT" || header["alg"] != tc.alg {
				t.Errorf("header = %v", header)
			}
		})
	}
}

func TestLifetime(t *testing.T) {
	tests := []struct {
		name     string
		lifetime time.Duration
		max      *metav1.Duration
		now      time.Time
		want     time.Time
	}{
		{"requested", 30 * time.Minute, nil, providertest.Epoch, providertest.Epoch.Add(30 * time.Minute)},
		{"capped", time.Hour, &metav1.Duration{Duration: 10 * time.Minute}, providertest.Epoch, providertest.Epoch.Add(10 * time.Minute)},
		{"under the cap", 5 * time.Minute, &metav1.Duration{Duration: 10 * time.Minute}, providertest.Epoch, providertest.Epoch.Add(5 * time.Minute)},
		{"unset", 0, nil, providertest.Epoch, providertest.Epoch.Add(v1alpha1.DefaultLifetime)},
		{"cut to whole seconds", time.Minute, nil, providertest.Epoch.Add(900 * time.Millisecond), providertest.Epoch.Add(time.Minute)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := request(t, "HS256", "hmac", v1alpha1.JWTProvider{MaxLifetime: tc.max}, v1alpha1.JWTParams{})
			req.Lifetime, req.Now = tc.lifetime, tc.now
			tok, err := jwtprovider.New().Issue(context.Background(), req)
			providertest.CheckError(t, err, providertest.Want{})
			claims, _ := verify(t, tok.Value, "HS256", []byte(hmacSecret))
			if !tok.ExpiresAt.Equal(tc.want) || claims["exp"] != float64(tc.want.Unix()) || !tok.IssuedAt.Equal(tc.now) {
				t.Errorf("expires %v (claim %v), issued %v; want %v", tok.ExpiresAt, claims["exp"], tok.IssuedAt, tc.want)
			}
		})
	}
}

func TestUniqueJTI(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		tok, err := jwtprovider.New().Issue(context.Background(), request(t, "HS256", "hmac", v1alpha1.JWTProvider{}, v1alpha1.JWTParams{}))
		providertest.CheckError(t, err, providertest.Want{})
		claims, _ := verify(t, tok.Value, "HS256", []byte(hmacSecret))
		if jti := claims["jti"].(string); seen[jti] {
			t.Fatalf("jti %s repeated", jti)
		} else {
			seen[jti] = true
		}
	}
}

func TestInvalidRequests(t *testing.T) {
	invalid := providertest.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true}
	tests := []struct {
		name   string
		cfg    v1alpha1.JWTProvider
		claims string
	}{
		{"claims not an object", v1alpha1.JWTProvider{}, `["a"]`},
		{"header alg", v1alpha1.JWTProvider{Headers: map[string]string{"alg": "none"}}, ""},
		{"header typ", v1alpha1.JWTProvider{Headers: map[string]string{"typ": "at+jwt"}}, ""},
		{"header kid", v1alpha1.JWTProvider{Headers: map[string]string{"kid": "k"}}, ""},
	}
	for _, c := range []string{"iat", "nbf", "exp", "jti", "iss", "aud", "sub"} {
		tests = append(tests, struct {
			name   string
			cfg    v1alpha1.JWTProvider
			claims string
		}{"reserved claim " + c, v1alpha1.JWTProvider{}, `{"ok":1,"` + c + `":"x"}`})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			params := v1alpha1.JWTParams{}
			if tc.claims != "" {
				params.Claims = raw(tc.claims)
			}
			req := request(t, "HS256", "hmac", tc.cfg, params)
			_, err := jwtprovider.New().Issue(context.Background(), req)
			providertest.CheckError(t, err, invalid, hmacSecret)
			if len(tc.cfg.Headers) > 0 {
				providertest.CheckError(t, jwtprovider.New().Validate(context.Background(), req.Config, req.Credentials), invalid)
			}
		})
	}
}

func TestWrongKeys(t *testing.T) {
	tests := []struct {
		alg, key, message string
	}{
		{"RS256", "hmac", "not a PEM-encoded private key"},
		{"ES256", "hmac", "not a PEM-encoded private key"},
		{"RS256", "garbage-pem", `PEM "RSA PRIVATE KEY" block that does not parse`},
		{"RS256", "encrypted", `"ENCRYPTED PRIVATE KEY" block, not an unencrypted private key`},
		{"RS256", "public", `"PUBLIC KEY" block`},
		{"RS256", "ec-sec1", "EC private key; RS256 needs an RSA key"},
		{"RS256", "rsa-small", "1024-bit RSA key"},
		{"ES256", "rsa-pkcs1", "RSA private key; ES256 needs an EC P-256 key"},
		{"ES256", "rsa-pkcs8", "RSA private key; ES256 needs an EC P-256 key"},
		{"ES256", "ec-p384", "curve P-384"},
		{"ES256", "ed25519", "Ed25519"},
		{"HS256", "rsa-pkcs1", "HMAC algorithms need the raw shared secret"},
		{"HS256", "empty", "is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.alg+"/"+tc.key, func(t *testing.T) {
			want := providertest.Want{Reason: v1alpha1.ReasonInvalidCredentials, Permanent: true, Message: tc.message}
			req := request(t, tc.alg, tc.key, v1alpha1.JWTProvider{}, v1alpha1.JWTParams{})
			secrets := keyFragments(keys().creds["k/"+tc.key])
			_, err := jwtprovider.New().Issue(context.Background(), req)
			providertest.CheckError(t, err, want, secrets...)
			if !strings.HasPrefix(err.Error(), "signing key for "+tc.alg+" ") {
				t.Errorf("message %q does not name the key", err)
			}
			providertest.CheckError(t, jwtprovider.New().Validate(context.Background(), req.Config, req.Credentials), want, secrets...)
		})
	}
}

// keyFragments is the key and each of its lines long enough to be key
// material, none of which a message may contain.
func keyFragments(key string) []string {
	out := []string{key}
	for _, line := range strings.Split(key, "\n") {
		if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
			out = append(out, line)
		}
	}
	return out
}

func TestValidate(t *testing.T) {
	p := jwtprovider.New()
	for _, key := range []string{"hmac", "rsa-pkcs1", "ec-pkcs8"} {
		alg := map[string]string{"hmac": "HS512", "rsa-pkcs1": "RS256", "ec-pkcs8": "ES256"}[key]
		req := request(t, alg, key, v1alpha1.JWTProvider{}, v1alpha1.JWTParams{})
		providertest.CheckError(t, p.Validate(context.Background(), req.Config, req.Credentials), providertest.Want{})
	}
	req := request(t, "HS256", "absent", v1alpha1.JWTProvider{}, v1alpha1.JWTParams{})
	providertest.CheckError(t, p.Validate(context.Background(), req.Config, req.Credentials), providertest.Want{Reason: v1alpha1.ReasonCredentialsNotFound})
	req = request(t, "none", "hmac", v1alpha1.JWTProvider{}, v1alpha1.JWTParams{})
	providertest.CheckError(t, p.Validate(context.Background(), req.Config, req.Credentials), providertest.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true})
	providertest.CheckError(t, p.Validate(context.Background(), &v1alpha1.EmbedProviderSpec{}, req.Credentials), providertest.Want{Reason: v1alpha1.ReasonVendorMismatch, Permanent: true})
	_, err := p.Issue(context.Background(), providertest.Request(t, keys().creds, 0))
	providertest.CheckError(t, err, providertest.Want{Reason: v1alpha1.ReasonVendorMismatch, Permanent: true})
}

// TestSample signs the token config/samples documents and has the
// simulator redeem it as Tableau would: once.
func TestSample(t *testing.T) {
	prov, tpl := providertest.Sample(t, "embedtokens_v1alpha1_embedprovider_jwt.yaml")
	sim := providertest.StartSim(t, vendorsim.Options{TableauClientID: prov.JWT.Issuer, TableauSecretID: prov.JWT.KeyID, TableauSecretValue: hmacSecret})
	req := providertest.Request(t, providertest.Creds{"tableau-connected-app/secretValue": hmacSecret}, 0)
	tpl.JWT.Subject = "alice@example.com"
	req.Config, req.Params, req.Lifetime = &prov, &tpl.VendorParams, tpl.Lifetime.Duration
	providertest.CheckError(t, jwtprovider.New().Validate(context.Background(), req.Config, req.Credentials), providertest.Want{})
	if !provider.IsSingleUse(jwtprovider.New(), req.Config) {
		t.Error("the Tableau sample is not single-use")
	}
	tok, err := jwtprovider.New().Issue(context.Background(), req)
	providertest.CheckError(t, err, providertest.Want{}, hmacSecret)
	claims, header := verify(t, tok.Value, "HS256", []byte(hmacSecret))
	if header["kid"] != prov.JWT.KeyID || header["iss"] != prov.JWT.Issuer || claims["aud"] != "tableau" || claims["sub"] != "alice@example.com" ||
		claims["scp"] == nil || !tok.ExpiresAt.Equal(providertest.Epoch.Add(5*time.Minute)) {
		t.Errorf("header %v claims %v expires %v", header, claims, tok.ExpiresAt)
	}
	for i, want := range []int{http.StatusOK, http.StatusForbidden} {
		if got := redeemTableau(t, sim.URL(), tok.Value); got != want {
			t.Errorf("redemption %d: status %d, want %d", i+1, got, want)
		}
	}
	again, err := jwtprovider.New().Issue(context.Background(), req)
	providertest.CheckError(t, err, providertest.Want{}, hmacSecret)
	if got := redeemTableau(t, sim.URL(), again.Value); got != http.StatusOK {
		t.Errorf("a second token: status %d, want 200", got)
	}
}

// TestTableauSimulatorChecks has the simulator refuse tokens Tableau would.
func TestTableauSimulatorChecks(t *testing.T) {
	sim := providertest.StartSim(t, vendorsim.Options{TableauClientID: "client-id", TableauSecretID: "secret-id", TableauSecretValue: hmacSecret})
	base := v1alpha1.JWTProvider{KeyID: "secret-id", Issuer: "client-id", Audience: "tableau",
		MaxLifetime: &metav1.Duration{Duration: 9 * time.Minute}, SingleUse: true}
	scp := raw(`{"scp":["tableau:views:embed"]}`)
	tests := []struct {
		name   string
		edit   func(*v1alpha1.JWTProvider)
		claims *apiextensionsv1.JSON
		want   int
	}{
		{"the documented preset is redeemed", nil, scp, http.StatusOK},
		{"an exp more than 10 minutes ahead is refused", func(c *v1alpha1.JWTProvider) { c.MaxLifetime = nil }, scp, http.StatusUnauthorized},
		{"another audience is refused", func(c *v1alpha1.JWTProvider) { c.Audience = "tableau-server" }, scp, http.StatusUnauthorized},
		{"another secret ID is refused", func(c *v1alpha1.JWTProvider) { c.KeyID = "old-secret" }, scp, http.StatusUnauthorized},
		{"another client ID is refused", func(c *v1alpha1.JWTProvider) { c.Issuer = "other" }, scp, http.StatusUnauthorized},
		{"a token without the embed scope is refused", nil, raw(`{"scp":["tableau:content:read"]}`), http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			req := request(t, "HS256", "hmac", cfg, v1alpha1.JWTParams{Subject: "alice", Claims: tc.claims})
			req.Lifetime = time.Hour
			tok, err := jwtprovider.New().Issue(context.Background(), req)
			providertest.CheckError(t, err, providertest.Want{})
			if got := redeemTableau(t, sim.URL(), tok.Value); got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
		})
	}
}

func redeemTableau(t *testing.T, base, token string) int {
	t.Helper()
	resp, err := http.Get(base + vendorsim.TableauSessionPath + "?token=" + url.QueryEscape(token))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() //nolint:errcheck // test
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestSingleUse: only a provider declaring singleUse is single-use.
func TestSingleUse(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config *v1alpha1.EmbedProviderSpec
		want   bool
	}{
		{"singleUse true", &v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{JWT: &v1alpha1.JWTProvider{SingleUse: true}}}, true},
		{"singleUse unset", &v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{JWT: &v1alpha1.JWTProvider{Audience: "tableau"}}}, false},
		{"no jwt block", &v1alpha1.EmbedProviderSpec{}, false},
	} {
		if got := provider.IsSingleUse(jwtprovider.New(), tc.config); got != tc.want {
			t.Errorf("%s: IsSingleUse = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestPresets issues the tokens docs/vendors/jwt.md documents.
func TestPresets(t *testing.T) {
	t.Run("Tableau connected app", func(t *testing.T) {
		cfg := v1alpha1.JWTProvider{KeyID: "secret-id", Issuer: "client-id", Audience: "tableau",
			Headers: map[string]string{"iss": "client-id"}, MaxLifetime: &metav1.Duration{Duration: 9 * time.Minute}}
		tok, err := jwtprovider.New().Issue(context.Background(), request(t, "HS256", "hmac", cfg,
			v1alpha1.JWTParams{Subject: "alice@example.com", Claims: raw(`{"scp":["tableau:views:embed"]}`)}))
		providertest.CheckError(t, err, providertest.Want{})
		claims, header := verify(t, tok.Value, "HS256", []byte(hmacSecret))
		scp, _ := claims["scp"].([]any)
		if header["kid"] != "secret-id" || header["iss"] != "client-id" || claims["aud"] != "tableau" || len(scp) != 1 || scp[0] != "tableau:views:embed" ||
			!tok.ExpiresAt.Equal(providertest.Epoch.Add(9*time.Minute)) {
			t.Errorf("header %v claims %v expires %v", header, claims, tok.ExpiresAt)
		}
	})
	t.Run("Metabase static embedding", func(t *testing.T) {
		tok, err := jwtprovider.New().Issue(context.Background(), request(t, "HS256", "hmac", v1alpha1.JWTProvider{},
			v1alpha1.JWTParams{Claims: raw(`{"resource":{"dashboard":1},"params":{}}`)}))
		providertest.CheckError(t, err, providertest.Want{})
		claims, _ := verify(t, tok.Value, "HS256", []byte(hmacSecret))
		if res, _ := claims["resource"].(map[string]any); res["dashboard"] != 1.0 || claims["params"] == nil {
			t.Errorf("claims %v", claims)
		}
	})
}

func FuzzBuildClaims(f *testing.F) {
	f.Add([]byte(`{"k":"`), []byte(`"}`))
	f.Add([]byte(`{"`), []byte(`":1,"exp":2}`))
	f.Add([]byte(`{"sub":"`), []byte(`"}`))
	f.Add([]byte(`{"nested":{"iat":"`), []byte(`"}}`))
	f.Add([]byte(`[`), []byte(`]`))
	f.Add([]byte(`{"a":"`), []byte(``))
	f.Add([]byte(`{"a":1} {"b":"`), []byte(`"}`))
	cfg := &v1alpha1.JWTProvider{Issuer: "iss", Audience: "aud", MaxLifetime: &metav1.Duration{Duration: 10 * time.Minute}}
	f.Fuzz(func(t *testing.T, prefix, suffix []byte) {
		claims := append(append(append([]byte{}, prefix...), providertest.Marker...), suffix...)
		got, exp, err := jwtprovider.BuildClaims(cfg, &v1alpha1.JWTParams{Subject: "sub", Claims: raw(string(claims))}, time.Hour, providertest.Epoch)
		if err != nil {
			providertest.CheckError(t, err, providertest.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true}, providertest.Marker)
			return
		}
		now, wantExp := providertest.Epoch.Add(-v1alpha1.DefaultJWTClockSkew).Unix(), providertest.Epoch.Add(10*time.Minute)
		if got["iat"] != now || got["nbf"] != now || got["exp"] != wantExp.Unix() || !exp.Equal(wantExp) ||
			got["iss"] != "iss" || got["aud"] != "aud" || got["sub"] != "sub" || len(got["jti"].(string)) != 32 {
			t.Fatalf("reserved claims overridden: %v", got)
		}
	})
}

// TestConfigWarnings checks the warning for an HMAC key ending in
// whitespace, and that such a key is still used byte for byte.
func TestConfigWarnings(t *testing.T) {
	const secret = "tableau-secret-value"
	creds := providertest.Creds{
		"k/newline": secret + "\n", "k/crlf": secret + "\r\n", "k/space": secret + " ", "k/clean": secret,
		"k/accent": secret + "à", "k/pem": keys().creds["k/ec-pkcs8"],
	}
	tests := []struct {
		alg, key, namespace string
		want                string // "" for no warning
	}{
		{"HS256", "newline", "", "the HMAC key in Secret k, key newline, ends in whitespace (a trailing newline?)"},
		{"HS512", "crlf", "", "Secret k, key crlf, ends in whitespace"},
		{"HS256", "space", "embed-system", "the HMAC key in Secret embed-system/k, key space, ends in whitespace"},
		{"HS256", "clean", "", ""},
		{"HS256", "accent", "", ""},
		{"HS256", "absent", "", ""}, // Validate reports that
		{"ES256", "pem", "", ""},    // a PEM key ends in a newline by design
	}
	for _, tc := range tests {
		t.Run(tc.alg+"/"+tc.key, func(t *testing.T) {
			ref := providertest.Ref("k/" + tc.key)
			ref.Namespace = tc.namespace
			config := &v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{JWT: &v1alpha1.JWTProvider{Algorithm: tc.alg, SigningKeySecretRef: ref}}}
			got := jwtprovider.New().ConfigWarnings(context.Background(), config, creds)
			switch {
			case tc.want == "" && len(got) != 0, tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)):
				t.Fatalf("warnings %q, want one holding %q", got, tc.want)
			}
			for _, w := range got {
				providertest.NoLeak(t, w, secret)
			}
		})
	}
	if got := jwtprovider.New().ConfigWarnings(context.Background(), &v1alpha1.EmbedProviderSpec{}, creds); got != nil {
		t.Errorf("warnings without spec.jwt: %q", got)
	}
	for singleUse, want := range map[bool]int{false: 1, true: 0} {
		config := &v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{JWT: &v1alpha1.JWTProvider{
			Algorithm: "HS256", SigningKeySecretRef: providertest.Ref("k/clean"), Audience: "tableau", SingleUse: singleUse}}}
		if got := jwtprovider.New().ConfigWarnings(context.Background(), config, creds); len(got) != want ||
			want == 1 && !strings.Contains(got[0], "singleUse: true") {
			t.Errorf("audience tableau, singleUse %v: warnings %q", singleUse, got)
		}
	}

	// The warning changes nothing: the key is signed with as it is.
	req := providertest.Request(t, creds, 0)
	req.Config.JWT, req.Params.JWT = &v1alpha1.JWTProvider{Algorithm: "HS256", SigningKeySecretRef: providertest.Ref("k/newline")}, &v1alpha1.JWTParams{}
	tok, err := jwtprovider.New().Issue(context.Background(), req)
	providertest.CheckError(t, err, providertest.Want{})
	verify(t, tok.Value, "HS256", []byte(secret+"\n"))
	if _, err := jwt.Parse(tok.Value, func(*jwt.Token) (any, error) { return []byte(secret), nil },
		jwt.WithTimeFunc(func() time.Time { return providertest.Epoch })); err == nil {
		t.Error("the token verifies with the trimmed key: the key was changed")
	}
}

// TestKeyBounds checks that keys too costly to parse or sign with are
// refused, on the provider's Ready condition (Validate) and on issue, with
// a message that states sizes and no key material.
func TestKeyBounds(t *testing.T) {
	oversized, err := os.ReadFile("testdata/rsa-4104.pem") // a throwaway key, just over the bound
	if err != nil {
		t.Fatal(err)
	}
	// A PEM block as large as a 16,384-bit RSA key's, refused before parsing.
	huge := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: bytes.Repeat([]byte{0x30}, 9400)}))
	tests := []struct {
		name, alg, key, message string
	}{
		{"an RSA key over 4,096 bits is refused", "RS256", string(oversized), "is a 4104-bit RSA key; the operator accepts at most 4096 bits"},
		{"a PEM key the size of a 16,384-bit RSA key is refused unparsed", "RS256", huge, `is a PEM "RSA PRIVATE KEY" block of 9400 bytes, larger than a 4096-bit RSA key`},
		{"a PEM Secret value over 64 KiB is refused", "ES256", keys().creds["k/ec-sec1"] + strings.Repeat("\n", 64<<10), "bytes, more than the 65536 bytes accepted"},
		{"an HMAC secret over 64 KiB is refused", "HS256", strings.Repeat("s", 64<<10+1), "is 65537 bytes, more than the 65536 bytes accepted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := providertest.Want{Reason: v1alpha1.ReasonInvalidCredentials, Permanent: true, Message: tc.message}
			req := providertest.Request(t, providertest.Creds{"k/big": tc.key}, 0)
			req.Config.JWT = &v1alpha1.JWTProvider{Algorithm: tc.alg, SigningKeySecretRef: providertest.Ref("k/big")}
			req.Params.JWT = &v1alpha1.JWTParams{}
			p := jwtprovider.New()
			providertest.CheckError(t, p.Validate(context.Background(), req.Config, req.Credentials), want, keyFragments(tc.key)...)
			_, err := p.Issue(context.Background(), req)
			providertest.CheckError(t, err, want, keyFragments(tc.key)...)
		})
	}
}

// TestKeyParsedOnce checks that a provider's key is parsed once however
// many tokens it signs, concurrently or not, and whatever else changes in
// the provider, and parsed again when the key is rotated; a refused key is
// not parsed again either.
func TestKeyParsedOnce(t *testing.T) {
	p := jwtprovider.New()
	issue := func(alg, key string, cfg v1alpha1.JWTProvider) error {
		_, err := p.Issue(context.Background(), request(t, alg, key, cfg, v1alpha1.JWTParams{Subject: "alice"}))
		return err
	}
	steps := []struct {
		name       string
		alg, key   string
		cfg        v1alpha1.JWTProvider
		tokens     int
		wantParses int64
	}{
		{"the first 100 tokens, 20 at a time, parse the key once", "RS256", "rsa-pkcs1", v1alpha1.JWTProvider{}, 100, 1},
		{"a changed spec with the same key parses nothing", "RS256", "rsa-pkcs1", v1alpha1.JWTProvider{Issuer: "changed"}, 10, 1},
		{"a rotated key is parsed once", "RS256", "rsa-pkcs8", v1alpha1.JWTProvider{}, 10, 2},
		{"another algorithm's key is parsed once", "ES256", "ec-sec1", v1alpha1.JWTProvider{}, 10, 3},
		{"a refused key is parsed once", "RS256", "rsa-small", v1alpha1.JWTProvider{}, 10, 4},
	}
	for _, st := range steps {
		var wg sync.WaitGroup
		errs, slots := make(chan error, st.tokens), make(chan struct{}, 20)
		for range st.tokens {
			slots <- struct{}{}
			wg.Go(func() {
				defer func() { <-slots }()
				errs <- issue(st.alg, st.key, st.cfg)
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if (err != nil) != (st.key == "rsa-small") {
				t.Fatalf("%s: %v", st.name, err)
			}
		}
		if got := p.KeyParses(); got != st.wantParses {
			t.Errorf("%s: %d parses in all, want %d", st.name, got, st.wantParses)
		}
	}
}
