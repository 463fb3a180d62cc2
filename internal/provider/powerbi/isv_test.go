package powerbi_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider/powerbi"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

const (
	profileID    = "8D7A6C1E-2B3F-4A5D-9E8F-0A1B2C3D4E5F"
	paginatedID  = "6c2d1f0e-9b8a-4c7d-8e6f-5a4b3c2d1e0f"
	sqlBlob      = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.azure-sql-access-token"
	ssoBlob      = "sso-datasource-token-7f3a"
	otherProfile = "11111111-2222-4333-8444-555555555555"
)

// TestClouds checks every cloud's endpoints against Microsoft's
// PowerBI-Developer-Samples, ".NET Framework/Embed for your customers/
// AppOwnsData/CloudConfigs/<cloud>/Cloud.config" at commit 2970f658: its
// authorityUrl without /common/, its apiUrl, and its resourceUrl plus
// /.default (the scope its EncryptCredentials configs use). The simulator's
// Entra ID grants the same scope per cloud.
func TestClouds(t *testing.T) {
	for _, tc := range []struct {
		cloud, sample              string
		authority, api, scopeOfSim string
	}{
		{"Public", "Power BI Global", "https://login.microsoftonline.com", "https://api.powerbi.com",
			"https://analysis.windows.net/powerbi/api/.default"},
		{"USGovernment", "Power BI US Government", "https://login.microsoftonline.com", "https://api.powerbigov.us",
			"https://analysis.usgovcloudapi.net/powerbi/api/.default"},
		{"USGovernmentHigh", "Power BI DoD Contractors", "https://login.microsoftonline.us", "https://api.high.powerbigov.us",
			"https://high.analysis.usgovcloudapi.net/powerbi/api/.default"},
		{"USGovernmentDoD", "Power BI DoD", "https://login.microsoftonline.us", "https://api.mil.powerbigov.us",
			"https://mil.analysis.usgovcloudapi.net/powerbi/api/.default"},
		{"China", "Power BI operated by 21Vianet in China", "https://login.chinacloudapi.cn", "https://api.powerbi.cn",
			"https://analysis.chinacloudapi.cn/powerbi/api/.default"},
	} {
		t.Run(tc.cloud+" is the sample's "+tc.sample, func(t *testing.T) {
			got, ok := powerbi.CloudOf(tc.cloud)
			want := powerbi.Cloud{AuthorityURL: tc.authority, APIURL: tc.api, Scope: tc.scopeOfSim}
			if !ok || got != want {
				t.Errorf("CloudOf(%q) = %+v, %v; want %+v", tc.cloud, got, ok, want)
			}
			if scope, ok := vendorsim.PowerBICloudScope(tc.cloud); !ok || scope != tc.scopeOfSim {
				t.Errorf("the simulator's scope for %s = %q, %v", tc.cloud, scope, ok)
			}
		})
	}
	if c, ok := powerbi.CloudOf(""); !ok || c.APIURL != "https://api.powerbi.com" {
		t.Errorf("an unset cloud is %+v, %v; want Public", c, ok)
	}
	if _, ok := powerbi.CloudOf("Germany"); ok {
		t.Error("an unknown cloud was accepted")
	}
}

// TestCloudSetsTheScope runs a USGovernment provider against a simulator
// of that cloud: the URLs are overridden (the simulator serves both), the
// scope comes from the cloud. A provider of the public cloud asks for the
// commercial scope, which that Entra ID refuses.
func TestCloudSetsTheScope(t *testing.T) {
	opts := simOptions()
	opts.PowerBICloud = v1alpha1.PowerBICloudUSGovernment
	for _, tc := range []struct {
		name, cloud, scope string
		want               providertest.Want
	}{
		{"the cloud's scope is granted", v1alpha1.PowerBICloudUSGovernment, "", success},
		{"an explicit scope overrides the cloud's", v1alpha1.PowerBICloudPublic,
			"https://analysis.usgovcloudapi.net/powerbi/api/.default", success},
		{"the public cloud's scope is refused", v1alpha1.PowerBICloudPublic, "",
			providertest.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "invalid_scope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, v := sim(t, opts)
			req := request(t, v.url, v.url, "secret")
			req.Config.PowerBI.Cloud, req.Config.PowerBI.Scope = tc.cloud, tc.scope
			_, err := powerbi.New().Issue(context.Background(), req)
			providertest.CheckError(t, err, tc.want, secret)
			form, _ := url.ParseQuery(string(v.requests()[0].Body))
			if want := tc.scope; want == "" {
				c, _ := powerbi.CloudOf(tc.cloud)
				if form.Get("scope") != c.Scope {
					t.Errorf("scope sent = %q, want the cloud's %q", form.Get("scope"), c.Scope)
				}
			} else if form.Get("scope") != want {
				t.Errorf("scope sent = %q, want %q", form.Get("scope"), want)
			}
		})
	}
}

// isvParams is a request of an ISV: a profile, a paginated report with
// row-level security, token-based identity for Azure SQL and an SSO data
// source identity.
func isvParams() *v1alpha1.PowerBIParams {
	return &v1alpha1.PowerBIParams{
		ProfileID: profileID,
		Reports:   []v1alpha1.PowerBIReport{{ID: reportID}, {ID: paginatedID}},
		Datasets:  []v1alpha1.PowerBIDataset{{ID: datasetID}},
		Identities: []v1alpha1.PowerBIIdentity{
			{Username: "alice@acme.example", Roles: []string{"Tenant"}, Reports: []string{paginatedID}},
			{Username: "alice@acme.example", Datasets: []string{datasetID}, IdentityBlob: &v1alpha1.PowerBIIdentityBlob{Value: sqlBlob}},
		},
		DatasourceIdentities: []v1alpha1.PowerBIDatasourceIdentity{{IdentityBlob: ssoBlob,
			Datasources: []v1alpha1.PowerBIDatasourceSelector{{DatasourceType: "Sql",
				ConnectionDetails: v1alpha1.PowerBIDatasourceConnectionDetails{Server: "acme.database.windows.net", Database: "sales"}}}}},
	}
}

// isvGolden is isvParams' GenerateToken body, byte for byte, in the shapes
// of the REST API's GenerateTokenRequestV2: EffectiveIdentity's reports and
// identityBlob {"value"}, DatasourceIdentity's identityBlob (a string) and
// datasources [{datasourceType, connectionDetails}]. The profile is not in
// it: it is a header.
const isvGolden = `{"reports":[{"id":"` + reportID + `"},{"id":"` + paginatedID + `"}],` +
	`"datasets":[{"id":"` + datasetID + `"}],` +
	`"identities":[{"username":"alice@acme.example","roles":["Tenant"],"reports":["` + paginatedID + `"]},` +
	`{"username":"alice@acme.example","datasets":["` + datasetID + `"],"identityBlob":{"value":"` + sqlBlob + `"}}],` +
	`"datasourceIdentities":[{"identityBlob":"` + ssoBlob + `","datasources":[{"datasourceType":"Sql",` +
	`"connectionDetails":{"server":"acme.database.windows.net","database":"sales"}}]}],` +
	`"lifetimeInMinutes":10}`

// TestProfileAndISVFields sends an ISV request to a simulator whose service
// principal owns the profile: the body is the golden one, the profile
// travels as X-PowerBI-Profile-Id, and the token is scoped to it.
func TestProfileAndISVFields(t *testing.T) {
	opts := simOptions()
	opts.PowerBIProfiles = []string{otherProfile, strings.ToLower(profileID)}
	s, _, v := sim(t, opts)
	req := request(t, v.url, v.url, "secret")
	req.Params.PowerBI = isvParams()
	tok, err := powerbi.New().Issue(context.Background(), req)
	providertest.CheckError(t, err, success, secret, sqlBlob, ssoBlob)
	reqs := v.requests()
	gen := reqs[len(reqs)-1]
	if string(gen.Body) != isvGolden {
		t.Errorf("GenerateToken body\n%s\nwant\n%s", gen.Body, isvGolden)
	}
	if got := gen.Header.Values(powerbi.ProfileHeader); len(got) != 1 || got[0] != profileID {
		t.Errorf("%s = %v, want [%s]", powerbi.ProfileHeader, got, profileID)
	}
	if entra := reqs[0]; entra.Header.Get(powerbi.ProfileHeader) != "" {
		t.Errorf("the Entra ID call carries a profile: %v", entra.Header)
	}
	if got := s.PowerBITokenProfile(tok.Value); got != strings.ToLower(profileID) {
		t.Errorf("token scoped to profile %q, want %q", got, profileID)
	}
	if s.Validate(tok.Value) != vendorsim.ValidityValid {
		t.Errorf("embed token %v is not valid at the simulator", tok)
	}
}

// TestProfile covers a request without a profile (no header, a token of
// the service principal itself) and one naming a profile the service
// principal does not own, which Power BI refuses.
func TestProfile(t *testing.T) {
	opts := simOptions()
	opts.PowerBIProfiles = []string{profileID}
	for _, tc := range []struct {
		name, profile string
		want          providertest.Want
	}{
		{"no profile sends no header", "", success},
		{"a profile the principal does not own is refused", otherProfile,
			providertest.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "Power BI GenerateToken: vendor answered HTTP 404: PowerBIEntityNotFound"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, v := sim(t, opts)
			req := request(t, v.url, v.url, "secret")
			req.Params.PowerBI.ProfileID = tc.profile
			tok, err := powerbi.New().Issue(context.Background(), req)
			providertest.CheckError(t, err, tc.want, secret)
			reqs := v.requests()
			if got := reqs[len(reqs)-1].Header.Values(powerbi.ProfileHeader); tc.profile == "" && len(got) != 0 {
				t.Errorf("%s sent without a profile: %v", powerbi.ProfileHeader, got)
			}
			if err == nil && s.PowerBITokenProfile(tok.Value) != "" {
				t.Errorf("a token without a profile is scoped to %q", s.PowerBITokenProfile(tok.Value))
			}
		})
	}
}

// TestIdentityBlobsNeverInErrors has Power BI echo the request body in its
// error, as a proxy or a verbose error might: the identity blobs are
// credentials and are redacted like the secret and the access token.
func TestIdentityBlobsNeverInErrors(t *testing.T) {
	entra := `{"token_type":"Bearer","expires_in":3600,"access_token":"aad_echo"}`
	v := scripted(t, func(n int, r *http.Request) (int, http.Header, string) {
		if n == 1 {
			return 200, nil, entra
		}
		return 400, nil, `{"error":{"code":"InvalidRequest","message":"bad identity ` + sqlBlob + ` and ` + ssoBlob + `"}}`
	})
	req := request(t, v.url, v.url, "secret")
	req.Params.PowerBI = isvParams()
	_, err := powerbi.New().Issue(context.Background(), req)
	providertest.CheckError(t, err, providertest.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "bad identity"},
		secret, "aad_echo", sqlBlob, ssoBlob)
}

// TestQuota reports Power BI's limits as VendorQuotaExceeded, transient and
// honouring Retry-After: a 429 from the simulator's fault injection, and
// capacity or quota errors Power BI answers with other statuses.
func TestQuota(t *testing.T) {
	pbiError := func(code, msg string) string { return `{"error":{"code":"` + code + `","message":"` + msg + `"}}` }
	quota := func(retry time.Duration, msg string) providertest.Want {
		return providertest.Want{Reason: v1alpha1.ReasonVendorQuotaExceeded, RetryAfter: retry, Message: msg}
	}
	for _, tc := range []struct {
		name   string
		status int
		header http.Header
		body   string
		want   providertest.Want
	}{
		{"429 with Retry-After", 429, http.Header{"Retry-After": {"30"}}, pbiError("TooManyRequests", "Too many requests"),
			quota(30*time.Second, "Power BI GenerateToken: vendor answered HTTP 429: TooManyRequests")},
		{"a capacity's embed-token quota at 403", 403, nil, pbiError("TokenGenerationQuotaExceeded", "Embed token quota exceeded"),
			quota(0, "HTTP 403: TokenGenerationQuotaExceeded")},
		{"an overloaded capacity at 503", 503, http.Header{"Retry-After": {"5"}}, pbiError("CapacityLimitExceeded", "The capacity is overloaded"),
			quota(5*time.Second, "CapacityLimitExceeded")},
		{"a paused capacity at 400", 400, nil, pbiError("CapacityNotActive", "Capacity is not active"), quota(0, "CapacityNotActive")},
		{"another 403 stays unauthorized", 403, nil, pbiError("PowerBINotAuthorizedException", ""),
			providertest.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true}},
		{"another 503 stays unavailable", 503, nil, pbiError("ServiceUnavailable", "down"),
			providertest.Want{Reason: v1alpha1.ReasonVendorUnavailable}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, v := sim(t, simOptions())
			entra := request(t, v.url, v.url, "secret")
			api := scripted(t, fixed(tc.status, tc.header, tc.body))
			entra.Config.PowerBI.APIURL = api.url
			_, err := powerbi.New().Issue(context.Background(), entra)
			providertest.CheckError(t, err, tc.want, secret)
			if s.PowerBIEntraCalls() != 1 {
				t.Errorf("%d Entra ID calls, want 1", s.PowerBIEntraCalls())
			}
		})
	}
	t.Run("429 from the simulator's fault injection", func(t *testing.T) {
		s, _, v := sim(t, simOptions())
		s.SetFault(vendorsim.Fault{Status: http.StatusTooManyRequests, RetryAfter: 7 * time.Second})
		_, err := powerbi.New().Issue(context.Background(), request(t, v.url, v.url, "secret"))
		providertest.CheckError(t, err, quota(7*time.Second, "HTTP 429"), secret)
	})
}
