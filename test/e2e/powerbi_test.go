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
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

// The simulator of hack/local-cluster serves Power BI with its demo service
// principal unless VENDORSIM_POWERBI_* say otherwise; the simulator reads
// the same variables from the environment it was started in.
var (
	powerBITenant = cmp.Or(os.Getenv("VENDORSIM_POWERBI_TENANT_ID"), vendorsim.DefaultPowerBITenantID)
	powerBIClient = cmp.Or(os.Getenv("VENDORSIM_POWERBI_CLIENT_ID"), vendorsim.DefaultPowerBIClientID)
	powerBISecret = cmp.Or(os.Getenv("VENDORSIM_POWERBI_CLIENT_SECRET"), vendorsim.DefaultPowerBIClientSecret)
)

const (
	powerBIReport  = "5b218778-e7a5-4d73-8187-f10824047715"
	powerBIDataset = "cfafbeb1-8037-4d0c-896e-a46fb27ff229"
)

var _ = Describe("Power BI on a real node", func() {
	It("stores embed tokens the simulator accepts, for one Entra ID call", func(ctx SpecContext) {
		before := len(powerBISimLog(ctx))
		By("applying a powerBI provider whose Entra ID and API are the simulator")
		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: objectMeta(ns, "powerbi-credentials"),
			StringData: map[string]string{"clientSecret": powerBISecret}})).To(Succeed())
		Expect(k8s.Create(ctx, &v1alpha1.EmbedProvider{ObjectMeta: objectMeta(ns, "powerbi"), Spec: v1alpha1.EmbedProviderSpec{
			AllowInsecureHTTP: true,
			VendorConfig: v1alpha1.VendorConfig{PowerBI: &v1alpha1.PowerBIProvider{
				TenantID: powerBITenant, ClientID: powerBIClient,
				ClientSecretSecretRef: &v1alpha1.SecretKeySelector{Name: "powerbi-credentials", Key: "clientSecret"},
				AuthorityURL:          cfg.simURL, APIURL: cfg.simURL,
			}},
		}})).To(Succeed())

		By("requesting three embed tokens with row-level security")
		users := map[string]bool{}
		for i := range 3 {
			user := fmt.Sprintf("%s-user-%d@acme.example", ns, i)
			users[user] = true
			etr := &v1alpha1.EmbedTokenRequest{ObjectMeta: objectMeta(ns, fmt.Sprintf("powerbi-%d", i)), Spec: v1alpha1.EmbedTokenRequestSpec{
				ProviderRef: v1alpha1.ProviderRef{Name: "powerbi"},
				Lifetime:    &metav1.Duration{Duration: 10 * time.Minute},
				VendorParams: v1alpha1.VendorParams{PowerBI: &v1alpha1.PowerBIParams{
					Reports:  []v1alpha1.PowerBIReport{{ID: powerBIReport}},
					Datasets: []v1alpha1.PowerBIDataset{{ID: powerBIDataset}},
					Identities: []v1alpha1.PowerBIIdentity{{Username: user, Roles: []string{"Customer"},
						Datasets: []string{powerBIDataset}}},
				}},
			}}
			Expect(k8s.Create(ctx, etr)).To(Succeed())
			secret := waitReady(ctx, etr)
			Expect(powerBIValidity(ctx, string(secret.Data[v1alpha1.SecretTokenKey]))).To(Equal(vendorsim.ValidityValid))
		}

		By("reading the simulator's log: one Entra ID call, one GenerateToken per request")
		var entra, generated int
		log := powerBISimLog(ctx)
		Expect(len(log)).To(BeNumerically(">=", before), "nothing resets the simulator meanwhile")
		for _, c := range log[before:] {
			switch {
			case c.Vendor == "powerBI" && strings.HasSuffix(c.Path, "/oauth2/v2.0/token"):
				Expect(c.Path).To(Equal(vendorsim.PowerBIEntraTokenPath(powerBITenant)))
				Expect(c.Body).To(HaveKeyWithValue("client_secret", "[redacted]"), "the simulator never shows the secret")
				entra++
			case c.Path == vendorsim.PowerBIGenerateTokenPath:
				identities, _ := c.Body["identities"].([]any)
				Expect(identities).To(HaveLen(1))
				user, _ := identities[0].(map[string]any)["username"].(string)
				if users[user] {
					Expect(c.Issued).To(BeTrue())
					Expect(c.Body).To(HaveKeyWithValue("lifetimeInMinutes", 10.0))
					generated++
				}
			}
		}
		Expect(entra).To(Equal(1))
		Expect(generated).To(Equal(3))
	}, NodeTimeout(5*time.Minute))
})

// powerBILoggedCall is one entry of the simulator's /_sim/calls log.
type powerBILoggedCall struct {
	Vendor string         `json:"vendor"`
	Path   string         `json:"path"`
	Body   map[string]any `json:"body"`
	Issued bool           `json:"issued"`
}

// powerBISimLog reads the simulator's whole call log.
func powerBISimLog(ctx context.Context) []powerBILoggedCall {
	var out struct {
		Log []powerBILoggedCall `json:"log"`
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.simURL+"/_sim/calls", nil)
	Expect(err).NotTo(HaveOccurred())
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }() // read-only
	Expect(json.NewDecoder(resp.Body).Decode(&out)).To(Succeed())
	return out.Log
}

// powerBIValidity asks the simulator whether it accepts token, keeping the
// token out of URLs.
func powerBIValidity(ctx context.Context, token string) vendorsim.Validity {
	body, _ := json.Marshal(map[string]string{"token": token})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.simURL+"/_sim/validate", bytes.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }() // read-only
	var out struct {
		Validity vendorsim.Validity `json:"validity"`
	}
	Expect(json.NewDecoder(resp.Body).Decode(&out)).To(Succeed())
	return out.Validity
}
