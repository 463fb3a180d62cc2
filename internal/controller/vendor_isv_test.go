package controller_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

const (
	pbiProfile   = "8d7a6c1e-2b3f-4a5d-9e8f-0a1b2c3d4e5f"
	pbiPaginated = "6c2d1f0e-9b8a-4c7d-8e6f-5a4b3c2d1e0f"
)

var _ = Describe("Power BI for ISVs", func() {
	It("admits profiles, paginated-report identities, identity blobs and datasource identities, and refuses malformed ones", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		create := func(name string, edit func(*v1alpha1.PowerBIParams)) error {
			etr := f.powerBIRequest(name, "alice@acme.example", time.Hour)
			edit(etr.Spec.PowerBI)
			return k8sClient.Create(ctx, etr)
		}
		Expect(create("isv", func(p *v1alpha1.PowerBIParams) {
			p.ProfileID = strings.ToUpper(pbiProfile)
			p.Reports = append(p.Reports, v1alpha1.PowerBIReport{ID: pbiPaginated})
			p.Identities = append(p.Identities,
				v1alpha1.PowerBIIdentity{Username: "alice@acme.example", Reports: []string{pbiPaginated}},
				v1alpha1.PowerBIIdentity{Username: "alice@acme.example", Datasets: []string{pbiDataset},
					IdentityBlob: &v1alpha1.PowerBIIdentityBlob{Value: "eyJ0eXAi.sql.token"}})
			p.DatasourceIdentities = []v1alpha1.PowerBIDatasourceIdentity{{IdentityBlob: "sso-token",
				Datasources: []v1alpha1.PowerBIDatasourceSelector{{DatasourceType: "Sql",
					ConnectionDetails: v1alpha1.PowerBIDatasourceConnectionDetails{Server: "acme.database.windows.net", Database: "sales"}}}}}
		})).To(Succeed())
		Expect(create("bad-profile", func(p *v1alpha1.PowerBIParams) { p.ProfileID = "acme" })).
			To(MatchError(ContainSubstring("spec.powerBI.profileID")))
		Expect(create("bare-identity", func(p *v1alpha1.PowerBIParams) { p.Identities[0].Datasets = nil })).
			To(MatchError(ContainSubstring("an identity needs datasets or reports")))
		Expect(create("bad-identity-report", func(p *v1alpha1.PowerBIParams) { p.Identities[0].Reports = []string{"sales"} })).
			To(MatchError(ContainSubstring("spec.powerBI.identities[0].reports[0]")))
		Expect(create("empty-blob", func(p *v1alpha1.PowerBIParams) {
			p.Identities[0].IdentityBlob = &v1alpha1.PowerBIIdentityBlob{}
		})).To(MatchError(ContainSubstring("spec.powerBI.identities[0].identityBlob.value")))
		Expect(create("no-datasources", func(p *v1alpha1.PowerBIParams) {
			p.DatasourceIdentities = []v1alpha1.PowerBIDatasourceIdentity{{IdentityBlob: "sso-token"}}
		})).To(MatchError(ContainSubstring("spec.powerBI.datasourceIdentities[0].datasources")))
		Expect(create("no-connection", func(p *v1alpha1.PowerBIParams) {
			p.DatasourceIdentities = []v1alpha1.PowerBIDatasourceIdentity{{IdentityBlob: "sso-token",
				Datasources: []v1alpha1.PowerBIDatasourceSelector{{DatasourceType: "Sql"}}}}
		})).To(MatchError(ContainSubstring("connectionDetails needs a server, database or url")))
	})

	It("sets a cloud's endpoints by name and refuses the public cloud's leftovers on another cloud", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		provider := func(name, cloud, apiURL, scope string) error {
			spec := f.powerBIProviderSpec()
			spec.AllowInsecureHTTP = false
			spec.PowerBI.Cloud, spec.PowerBI.AuthorityURL, spec.PowerBI.APIURL, spec.PowerBI.Scope = cloud, "", apiURL, scope
			return k8sClient.Create(ctx, &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name}, Spec: spec})
		}
		for _, cloud := range []string{"USGovernment", "USGovernmentHigh", "USGovernmentDoD", "China"} {
			Expect(provider(strings.ToLower(cloud), cloud, "", "")).To(Succeed())
		}
		Expect(provider("germany", "Germany", "", "")).To(MatchError(ContainSubstring("spec.powerBI.cloud")))
		leftover := "cloud sets apiURL and scope"
		Expect(provider("stale-api", "China", "https://api.powerbi.com", "")).To(MatchError(ContainSubstring(leftover)))
		Expect(provider("stale-scope", "USGovernment", "", "https://analysis.windows.net/powerbi/api/.default")).
			To(MatchError(ContainSubstring(leftover)))
		Expect(provider("override", "China", "https://pbi-proxy.example.cn", "")).To(Succeed(), "another apiURL overrides the cloud's")
	})

	It("issues a token as the request's service principal profile, scoped to it", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		sim := vendorsim.New(vendorsim.Options{PowerBIProfiles: []string{pbiProfile}})
		Expect(sim.Start()).To(Succeed())
		DeferCleanup(sim.Close)
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "powerbi-credentials"},
			StringData: map[string]string{"clientSecret": vendorsim.DefaultPowerBIClientSecret}})).To(Succeed())
		spec := f.powerBIProviderSpec()
		spec.PowerBI.AuthorityURL, spec.PowerBI.APIURL = sim.URL(), sim.URL()
		f.createNamedProvider(ctx, "powerbi", spec)
		etr := f.powerBIRequest("profiled", "alice@acme.example", 10*time.Minute)
		etr.Spec.PowerBI.ProfileID = pbiProfile
		Expect(k8sClient.Create(ctx, etr)).To(Succeed())
		token := waitForToken(ctx, etr, "")
		Expect(sim.Validate(token)).To(Equal(vendorsim.ValidityValid))
		Expect(sim.PowerBITokenProfile(token)).To(Equal(pbiProfile), "the token is the profile's")
		for _, c := range sim.Calls() {
			Expect(c.Body).NotTo(HaveKey("profileID"), "the profile travels as a header, not in the body")
		}
	})
})

var _ = Describe("Superset guest attributes", func() {
	It("admits up to 32 bounded attributes", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		create := func(name string, attrs map[string]string) error {
			return k8sClient.Create(ctx, &v1alpha1.EmbedTokenRequest{
				ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
				Spec: v1alpha1.EmbedTokenRequestSpec{ProviderRef: v1alpha1.ProviderRef{Name: "superset"},
					VendorParams: v1alpha1.VendorParams{Superset: &v1alpha1.SupersetParams{
						User:      v1alpha1.SupersetGuestUser{Username: "guest", Attributes: attrs},
						Resources: []v1alpha1.SupersetResource{{ID: "7b3e-dash"}}}}},
			})
		}
		many := map[string]string{}
		for i := range 33 {
			many[fmt.Sprintf("attr-%02d", i)] = "v"
		}
		Expect(create("tenant", map[string]string{"tenant": "acme", "region": "eu"})).To(Succeed())
		Expect(create("too-many", many)).To(MatchError(ContainSubstring("spec.superset.user.attributes")))
		Expect(create("long-value", map[string]string{"tenant": strings.Repeat("a", 1025)})).
			To(MatchError(ContainSubstring("attribute names must have 1 to 128 characters and values at most 1024")))
		Expect(create("long-name", map[string]string{strings.Repeat("n", 129): "v"})).
			To(MatchError(ContainSubstring("attribute names must have 1 to 128 characters")))
	})
})
