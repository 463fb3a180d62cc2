package controller_test

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

const (
	pbiReport    = "5b218778-e7a5-4d73-8187-f10824047715"
	pbiDataset   = "cfafbeb1-8037-4d0c-896e-a46fb27ff229"
	pbiWorkspace = "f089354e-8366-4e18-aea3-4cb4a3a50b48"
)

// powerBIProviderSpec is a Power BI provider whose Entra ID and Power BI API
// are both the fixture's simulator, with its demo service principal.
func (f *fixture) powerBIProviderSpec() v1alpha1.EmbedProviderSpec {
	return v1alpha1.EmbedProviderSpec{AllowInsecureHTTP: true, VendorConfig: v1alpha1.VendorConfig{PowerBI: &v1alpha1.PowerBIProvider{
		TenantID: vendorsim.DefaultPowerBITenantID, ClientID: vendorsim.DefaultPowerBIClientID,
		ClientSecretSecretRef: &v1alpha1.SecretKeySelector{Name: "powerbi-credentials", Key: "clientSecret"},
		AuthorityURL:          f.sim.URL(), APIURL: f.sim.URL(),
	}}}
}

// powerBIRequest asks the provider powerbi for an embed token of one report
// for user, with row-level security.
func (f *fixture) powerBIRequest(name, user string, lifetime time.Duration) *v1alpha1.EmbedTokenRequest {
	return &v1alpha1.EmbedTokenRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: v1alpha1.EmbedTokenRequestSpec{
			ProviderRef: v1alpha1.ProviderRef{Name: "powerbi"},
			Lifetime:    &metav1.Duration{Duration: lifetime},
			VendorParams: v1alpha1.VendorParams{PowerBI: &v1alpha1.PowerBIParams{
				Reports:          []v1alpha1.PowerBIReport{{ID: pbiReport}},
				Datasets:         []v1alpha1.PowerBIDataset{{ID: pbiDataset, XMLAPermissions: "ReadOnly"}},
				TargetWorkspaces: []v1alpha1.PowerBIWorkspace{{ID: pbiWorkspace}},
				Identities: []v1alpha1.PowerBIIdentity{{Username: user, Roles: []string{"Customer"},
					Datasets: []string{pbiDataset}, CustomData: "acme"}},
			}},
		},
	}
}

var _ = Describe("Power BI", func() {
	It("issues ten embed tokens on one provider with one Entra ID call, sending each request's reports, datasets and identities", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "powerbi-credentials"},
			StringData: map[string]string{"clientSecret": vendorsim.DefaultPowerBIClientSecret}})).To(Succeed())
		f.createNamedProvider(ctx, "powerbi", f.powerBIProviderSpec())

		users := map[string]*v1alpha1.EmbedTokenRequest{}
		var requests []*v1alpha1.EmbedTokenRequest
		for i := range 10 {
			user := fmt.Sprintf("user-%d@acme.example", i)
			users[user] = f.powerBIRequest(fmt.Sprintf("report-%d", i), user, 10*time.Minute)
			Expect(k8sClient.Create(ctx, users[user])).To(Succeed())
			requests = append(requests, users[user])
		}
		for _, etr := range users {
			token := waitForToken(ctx, etr, "")
			Expect(f.sim.Validate(token)).To(Equal(vendorsim.ValidityValid), "the simulator accepts %s's token", etr.Name)
			Expect(secretExpiresAt(ctx, etr)).To(BeTemporally("~", time.Now().Add(10*time.Minute), 15*time.Second))
		}

		Expect(f.sim.PowerBIEntraCalls()).To(Equal(1), "one access token serves all ten embed tokens")
		var generated []vendorsim.Call
		for _, c := range f.sim.Calls() {
			if c.Path == vendorsim.PowerBIGenerateTokenPath {
				generated = append(generated, c)
			}
		}
		Expect(generated).To(HaveLen(10))
		for _, c := range generated {
			Expect(c.Status).To(Equal(200))
			identities, _ := c.Body["identities"].([]any)
			Expect(identities).To(HaveLen(1))
			user, _ := identities[0].(map[string]any)["username"].(string)
			Expect(users).To(HaveKey(user), "each identity is one request's user")
			delete(users, user)
			Expect(c.Body).To(Equal(map[string]any{
				"reports":          []any{map[string]any{"id": pbiReport}},
				"datasets":         []any{map[string]any{"id": pbiDataset, "xmlaPermissions": "ReadOnly"}},
				"targetWorkspaces": []any{map[string]any{"id": pbiWorkspace}},
				"identities": []any{map[string]any{"username": user, "roles": []any{"Customer"},
					"datasets": []any{pbiDataset}, "customData": "acme"}},
				"lifetimeInMinutes": float64(10),
			}))
		}
		Expect(users).To(BeEmpty(), "every request's user got a token")
		for _, etr := range requests {
			settle(ctx, etr)
		}
		Expect(f.sim.CallCount()).To(Equal(11), "nothing more is called until renewal")
	})

	It("admits only well-formed powerBI blocks", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		empty := f.powerBIRequest("empty", "alice@acme.example", time.Hour)
		empty.Spec.PowerBI = &v1alpha1.PowerBIParams{}
		Expect(k8sClient.Create(ctx, empty)).To(MatchError(ContainSubstring("powerBI needs at least one report or dataset")))

		notGUID := f.powerBIRequest("not-guid", "alice@acme.example", time.Hour)
		notGUID.Spec.PowerBI.Reports[0].ID = "sales"
		Expect(k8sClient.Create(ctx, notGUID)).To(MatchError(ContainSubstring("spec.powerBI.reports[0].id")))

		insecure := f.powerBIProviderSpec()
		insecure.AllowInsecureHTTP = false
		Expect(k8sClient.Create(ctx, &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "insecure"}, Spec: insecure})).
			To(MatchError(ContainSubstring("vendor URLs must use https://")))
		secure := f.powerBIProviderSpec()
		secure.AllowInsecureHTTP = false
		secure.PowerBI.AuthorityURL, secure.PowerBI.APIURL = "", ""
		p := &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "defaults"}, Spec: secure}
		Expect(k8sClient.Create(ctx, p)).To(Succeed(), "the cloud's endpoints are https")
		Expect(p.Spec.PowerBI.Cloud).To(Equal(v1alpha1.PowerBICloudPublic), "the cloud defaults to Public, which sets the endpoints")
		Expect(p.Spec.PowerBI.AuthorityURL + p.Spec.PowerBI.APIURL + p.Spec.PowerBI.Scope).To(BeEmpty())

		cluster := &v1alpha1.ClusterEmbedProvider{ObjectMeta: metav1.ObjectMeta{Name: "powerbi-" + f.ns},
			Spec: v1alpha1.ClusterEmbedProviderSpec{EmbedProviderSpec: f.powerBIProviderSpec()}}
		Expect(k8sClient.Create(ctx, cluster)).To(MatchError(ContainSubstring("must set namespace")))
	})
})
