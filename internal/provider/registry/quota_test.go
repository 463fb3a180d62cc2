package registry_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/registry"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// anyCreds reads every Secret key as the same non-blank value: a throttled
// vendor refuses before it looks at a credential.
type anyCreds struct{}

func (anyCreds) Read(context.Context, v1alpha1.SecretKeySelector) ([]byte, error) {
	return []byte("credential-value"), nil
}

func (anyCreds) ServiceAccountToken(context.Context, v1alpha1.ServiceAccountReference, string) (string, error) {
	return "service-account-token", nil
}

// TestEveryVendorReportsQuota runs each vendor's sample against the
// simulator answering its first call with 429 and Retry-After: every vendor
// that calls a server reports VendorQuotaExceeded, transient, carrying the
// delay, whichever of its calls was throttled.
func TestEveryVendorReportsQuota(t *testing.T) {
	for _, tc := range []struct {
		sample string
		rebase func(t *testing.T, spec *v1alpha1.EmbedProviderSpec, url string)
		// requestSample holds the request when sample has none.
		requestSample string
	}{
		{"embedtokens_v1alpha1_embedprovider_qrvey.yaml", func(t *testing.T, s *v1alpha1.EmbedProviderSpec, url string) {
			s.Qrvey.URL = pt.Rebase(t, s.Qrvey.URL, url)
		}, "embedtokens_v1alpha1_embedtokenrequest_qrvey.yaml"},
		{"embedtokens_v1alpha1_embedprovider_qlikcloud.yaml", func(t *testing.T, s *v1alpha1.EmbedProviderSpec, url string) {
			s.QlikCloud.TenantURL = pt.Rebase(t, s.QlikCloud.TenantURL, url)
		}, ""},
		{"embedtokens_v1alpha1_embedprovider_boldbi.yaml", func(t *testing.T, s *v1alpha1.EmbedProviderSpec, url string) {
			s.BoldBI.ServerURL = pt.Rebase(t, s.BoldBI.ServerURL, url)
		}, ""},
		{"embedtokens_v1alpha1_embedprovider_oauth2.yaml", func(t *testing.T, s *v1alpha1.EmbedProviderSpec, url string) {
			s.OAuth2.TokenURL = pt.Rebase(t, s.OAuth2.TokenURL, url)
		}, ""},
		{"embedtokens_v1alpha1_embedprovider_powerbi.yaml", func(t *testing.T, s *v1alpha1.EmbedProviderSpec, url string) {
			s.PowerBI.AuthorityURL, s.PowerBI.APIURL = url, url
		}, ""},
		{"embedtokens_v1alpha1_embedprovider_superset.yaml", func(t *testing.T, s *v1alpha1.EmbedProviderSpec, url string) {
			s.Superset.URL = pt.Rebase(t, s.Superset.URL, url)
		}, ""},
		{"embedtokens_v1alpha1_embedprovider_http_thoughtspot.yaml", func(t *testing.T, s *v1alpha1.EmbedProviderSpec, url string) {
			s.HTTP.URL = pt.Rebase(t, s.HTTP.URL, url)
		}, ""},
		{"embedtokens_v1alpha1_embedprovider_http_domo.yaml", func(t *testing.T, s *v1alpha1.EmbedProviderSpec, url string) {
			s.HTTP.URL = pt.Rebase(t, s.HTTP.URL, url)
			s.HTTP.Auth.ClientCredentials.TokenURL = pt.Rebase(t, s.HTTP.Auth.ClientCredentials.TokenURL, url)
		}, ""},
	} {
		t.Run(tc.sample, func(t *testing.T) {
			spec, reqSpec := pt.Sample(t, tc.sample)
			if tc.requestSample != "" {
				_, reqSpec = pt.Sample(t, tc.requestSample)
			}
			vendor := spec.Vendor()
			sim := pt.StartSim(t, vendorsim.Options{})
			sim.SetFault(vendorsim.Fault{Status: http.StatusTooManyRequests, RetryAfter: 9 * time.Second})
			tc.rebase(t, &spec, sim.URL())
			req := pt.Request(t, nil, 0)
			req.Config, req.Params, req.Lifetime, req.Credentials = &spec, &reqSpec.VendorParams, time.Hour, anyCreds{}
			_, err := registry.All()[vendor].Issue(context.Background(), req)
			pt.CheckError(t, err, pt.Want{Reason: v1alpha1.ReasonVendorQuotaExceeded, RetryAfter: 9 * time.Second, Message: "HTTP 429"},
				"credential-value")
			if e := provider.Classify(err); e.Permanent {
				t.Errorf("%s: a quota error is permanent", vendor)
			}
		})
	}
}
