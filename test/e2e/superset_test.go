//go:build e2e

package e2e

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness"
)

// supersetLogin is the login the simulator started by hack/local-cluster
// accepts: its defaults unless the environment overrides them, as it does
// for the simulator.
func supersetLogin() (username, password string) {
	return cmp.Or(os.Getenv("VENDORSIM_SUPERSET_USERNAME"), vendorsim.DefaultSupersetUsername),
		cmp.Or(os.Getenv("VENDORSIM_SUPERSET_PASSWORD"), vendorsim.DefaultSupersetPassword)
}

// supersetCall is one entry of the simulator's /_sim/calls log, with the
// fields these specs read.
type supersetCall struct {
	Vendor string         `json:"vendor"`
	Path   string         `json:"path"`
	Status int            `json:"status"`
	Time   time.Time      `json:"time"`
	Body   map[string]any `json:"body"`
	Issued bool           `json:"issued"`
}

// supersetCalls returns the simulator's Superset calls made since since.
func supersetCalls(ctx context.Context, since time.Time) []supersetCall {
	var out struct {
		Log []supersetCall `json:"log"`
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.simURL+"/_sim/calls", nil)
	Expect(err).NotTo(HaveOccurred())
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }() // read-only
	Expect(json.NewDecoder(resp.Body).Decode(&out)).To(Succeed())
	var calls []supersetCall
	for _, c := range out.Log {
		if c.Vendor == v1alpha1.VendorSuperset && !c.Time.Before(since) {
			calls = append(calls, c)
		}
	}
	return calls
}

// simValidity asks the simulator whether it issued token and it is live.
func simValidity(ctx context.Context, token string) string {
	body, _ := json.Marshal(map[string]string{"token": token})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.simURL+"/_sim/validate", bytes.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }() // read-only
	var out struct{ Validity string }
	Expect(json.NewDecoder(resp.Body).Decode(&out)).To(Succeed())
	return out.Validity
}

// supersetGuest is a request for a guest token for guest name on one
// dashboard, with a row level security clause naming the guest.
func supersetGuest(name string) *v1alpha1.EmbedTokenRequest {
	return &v1alpha1.EmbedTokenRequest{
		ObjectMeta: objectMeta(ns, name),
		Spec: v1alpha1.EmbedTokenRequestSpec{
			ProviderRef: v1alpha1.ProviderRef{Name: "superset"},
			VendorParams: v1alpha1.VendorParams{Superset: &v1alpha1.SupersetParams{
				User:      v1alpha1.SupersetGuestUser{Username: ns + "-" + name, FirstName: "E2E"},
				Resources: []v1alpha1.SupersetResource{{ID: "dashboard-" + name}},
				RLS:       []v1alpha1.SupersetRLSRule{{Clause: fmt.Sprintf("guest = '%s-%s'", ns, name)}},
			}},
		},
	}
}

var _ = Describe("Superset on a real node", func() {
	It("issues guest tokens the simulator accepts, two requests for one login", func(ctx SpecContext) {
		// The simulator's clock is the host's; a second of slack covers
		// the call log's rounding.
		start := time.Now().Add(-time.Second)
		username, password := supersetLogin()
		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: objectMeta(ns, "superset-credentials"),
			StringData: map[string]string{"password": password}})).To(Succeed())
		Expect(k8s.Create(ctx, &v1alpha1.EmbedProvider{ObjectMeta: objectMeta(ns, "superset"),
			Spec: v1alpha1.EmbedProviderSpec{AllowInsecureHTTP: true, VendorConfig: v1alpha1.VendorConfig{Superset: &v1alpha1.SupersetProvider{
				URL: cfg.simURL, Username: username,
				PasswordSecretRef: v1alpha1.SecretKeySelector{Name: "superset-credentials", Key: "password"}}}},
		})).To(Succeed())

		for _, name := range []string{"superset-a", "superset-b"} {
			By("waiting for " + name + "'s guest token")
			etr := supersetGuest(name)
			Expect(k8s.Create(ctx, etr)).To(Succeed())
			tok := harness.TokenOf(waitReady(ctx, etr))
			Expect(simValidity(ctx, tok.Value)).To(Equal(string(vendorsim.ValidityValid)))

			claims := jwt.MapClaims{}
			_, _, err := jwt.NewParser().ParseUnverified(tok.Value, claims)
			Expect(err).NotTo(HaveOccurred())
			Expect(claims["user"]).To(HaveKeyWithValue("username", ns+"-"+name))
			exp, err := claims.GetExpirationTime()
			Expect(err).NotTo(HaveOccurred())
			Expect(tok.ExpiresAt).To(BeTemporally("==", exp.Time), "the Secret's expiresAt is the guest token's exp")
		}

		By("checking the simulator saw one login and both guest bodies as sent")
		logins, guests := 0, map[string]map[string]any{}
		for _, c := range supersetCalls(ctx, start) {
			switch {
			case c.Path == vendorsim.SupersetLoginPath && c.Status == http.StatusOK:
				logins++
			case c.Path == vendorsim.SupersetGuestTokenPath && c.Issued:
				user, _ := c.Body["user"].(map[string]any)
				name, _ := user["username"].(string)
				guests[name] = c.Body
			}
		}
		Expect(logins).To(Equal(1))
		for _, name := range []string{"superset-a", "superset-b"} {
			Expect(guests).To(HaveKeyWithValue(ns+"-"+name, Equal(map[string]any{
				"user":      map[string]any{"username": ns + "-" + name, "first_name": "E2E"},
				"resources": []any{map[string]any{"type": "dashboard", "id": "dashboard-" + name}},
				"rls":       []any{map[string]any{"clause": fmt.Sprintf("guest = '%s-%s'", ns, name)}},
			})))
		}
	}, NodeTimeout(4*time.Minute))
})
