package powerbi_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"net/url"
	"testing"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/powerbi"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// The ServiceAccount the federated tests sign in as.
const (
	saNamespace = "analytics"
	saName      = "powerbi-identity"
)

// federatedRequest is request signing in with a client assertion of the
// ServiceAccount saName for audience ("" for the default), whose token
// in creds is assertion.
func federatedRequest(t *testing.T, authority, api, audience, assertion string) (req provider.Request) {
	t.Helper()
	req = request(t, authority, api, "secret")
	req.Config.PowerBI.ClientSecretSecretRef = nil
	req.Config.PowerBI.ClientAssertion = &v1alpha1.ClientAssertion{
		ServiceAccountRef: v1alpha1.ServiceAccountReference{Name: saName}, Audience: audience}
	c := providertest.Creds{}
	for k, v := range creds {
		c[k] = v
	}
	if assertion != "" {
		aud := audience
		if aud == "" {
			aud = v1alpha1.DefaultClientAssertionAudience
		}
		c[providertest.SAKey(saName, aud)] = assertion
	}
	req.Credentials = c
	return req
}

// TestClientAssertionWireFormat captures the Entra ID request of a provider
// with a clientAssertion: RFC 7523's two fields take the client secret's
// place in the same form. MSAL Go's confidential client (accesstokens
// FromAssertion) sends the same names and values, grant_type
// client_credentials, client_assertion_type, client_assertion and
// client_id, and also client_info=1, which asks for a signed-in user's
// client_info and means nothing in the client-credentials grant.
func TestClientAssertionWireFormat(t *testing.T) {
	_, _, v := sim(t, simOptions())
	assertion := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	req := federatedRequest(t, v.url, v.url, "", assertion)
	_, _ = powerbi.New().Issue(context.Background(), req) // the simulator has no federation: refused
	reqs := v.requests()
	if len(reqs) == 0 {
		t.Fatal("no request")
	}
	want := "client_assertion=" + assertion +
		"&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer" +
		"&client_id=" + clientID + "&grant_type=client_credentials" +
		"&scope=https%3A%2F%2Fanalysis.windows.net%2Fpowerbi%2Fapi%2F.default"
	if got := string(reqs[0].Body); got != want {
		t.Errorf("Entra ID form\n got %s\nwant %s", got, want)
	}
	if ct := reqs[0].Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" || reqs[0].Header.Get("Authorization") != "" {
		t.Errorf("Entra ID request headers %v", reqs[0].Header)
	}
}

// TestClientAssertion signs in to the simulated Entra ID, which verifies
// the assertion against the issuer's JWKS as a federated identity
// credential does: issuer, subject, audience, expiry and signature.
func TestClientAssertion(t *testing.T) {
	issuer := providertest.NewIssuer(t)
	other := providertest.NewIssuer(t)
	fresh := providertest.Epoch.Add(10 * time.Minute)
	refused := providertest.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "AADSTS700211"}
	tests := []struct {
		name      string
		audience  string
		assertion string
		want      providertest.Want
	}{
		{name: "a token of the trusted ServiceAccount signs in",
			assertion: issuer.Token(t, saNamespace, saName, v1alpha1.DefaultClientAssertionAudience, fresh), want: success},
		{name: "a token of another ServiceAccount is refused",
			assertion: issuer.Token(t, saNamespace, "someone", v1alpha1.DefaultClientAssertionAudience, fresh), want: refused},
		{name: "a token for another audience is refused", audience: "api://elsewhere",
			assertion: issuer.Token(t, saNamespace, saName, "api://elsewhere", fresh), want: refused},
		{name: "an expired token is refused",
			assertion: issuer.Token(t, saNamespace, saName, v1alpha1.DefaultClientAssertionAudience, providertest.Epoch.Add(-time.Second)), want: refused},
		{name: "a token signed by another key is refused",
			assertion: other.Token(t, saNamespace, saName, v1alpha1.DefaultClientAssertionAudience, fresh), want: refused},
		{name: "a missing ServiceAccount is a transient CredentialsNotFound",
			want: providertest.Want{Reason: v1alpha1.ReasonCredentialsNotFound}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := simOptions()
			opts.PowerBIFederation = issuer.Federation(t, saNamespace, saName)
			s, _, v := sim(t, opts)
			req := federatedRequest(t, v.url, v.url, tc.audience, tc.assertion)
			tok, err := powerbi.New().Issue(context.Background(), req)
			providertest.CheckError(t, err, tc.want, tc.assertion)
			if tc.want.Reason == "" && s.Validate(tok.Value) != vendorsim.ValidityValid {
				t.Errorf("embed token %v is not valid at the simulator", tok)
			}
		})
	}
}

// TestClientAssertionIsFetchedWithTheAccessToken checks that a cached
// access token costs no assertion: the ServiceAccount token is read only
// when Entra ID is called.
func TestClientAssertionIsFetchedWithTheAccessToken(t *testing.T) {
	issuer := providertest.NewIssuer(t)
	opts := simOptions()
	opts.PowerBIFederation = issuer.Federation(t, saNamespace, saName)
	_, _, v := sim(t, opts)
	req := federatedRequest(t, v.url, v.url, "", issuer.Token(t, saNamespace, saName, v1alpha1.DefaultClientAssertionAudience, providertest.Epoch.Add(10*time.Minute)))
	counting := &countingCreds{Creds: req.Credentials.(providertest.Creds)}
	req.Credentials = counting
	p := powerbi.New()
	for range 3 {
		_, err := p.Issue(context.Background(), req)
		providertest.CheckError(t, err, success)
	}
	if counting.tokens != 1 || entraCalls(v.requests()) != 1 {
		t.Errorf("%d ServiceAccount tokens and %d Entra ID calls for three embed tokens, want 1 and 1", counting.tokens, entraCalls(v.requests()))
	}
}

// countingCreds counts ServiceAccount token reads.
type countingCreds struct {
	providertest.Creds
	tokens int
}

func (c *countingCreds) ServiceAccountToken(ctx context.Context, ref v1alpha1.ServiceAccountReference, audience string) (string, error) {
	c.tokens++
	return c.Creds.ServiceAccountToken(ctx, ref, audience)
}

// TestClientCertificate signs in to the simulated Entra ID with assertions
// signed by a registered certificate's key, which it verifies as Entra ID
// does: the thumbprint, the signature, iss and sub (the client), aud (the
// token endpoint), nbf and exp.
func TestClientCertificate(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	certPEM, keyPEM, cert := providertest.Certificate(t, key)
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherPEM, otherKeyPEM, _ := providertest.Certificate(t, otherKey)
	tests := []struct {
		name      string
		cert, key string
		want      providertest.Want
	}{
		{name: "a registered certificate signs in", cert: string(certPEM), key: string(keyPEM), want: success},
		{name: "a bundle of certificate and key signs in", cert: string(certPEM) + string(keyPEM), want: success},
		{name: "an unregistered certificate is refused", cert: string(otherPEM), key: string(otherKeyPEM),
			want: providertest.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "AADSTS700211"}},
		{name: "a key of another certificate is InvalidCredentials", cert: string(certPEM), key: string(otherKeyPEM),
			want: providertest.Want{Reason: v1alpha1.ReasonInvalidCredentials, Permanent: true, Message: "not the certificate's"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := simOptions()
			opts.PowerBICertificates = []*x509.Certificate{cert}
			s, _, v := sim(t, opts)
			req := request(t, v.url, v.url, "secret")
			c := providertest.Creds{"pbi/tls.crt": tc.cert}
			cc := &v1alpha1.ClientCertificate{CertificateSecretRef: providertest.Ref("pbi/tls.crt")}
			if tc.key != "" {
				c["pbi/tls.key"] = tc.key
				cc.PrivateKeySecretRef = new(providertest.Ref("pbi/tls.key"))
			}
			req.Credentials = c
			req.Config.PowerBI.ClientSecretSecretRef, req.Config.PowerBI.ClientCertificate = nil, cc
			tok, err := powerbi.New().Issue(context.Background(), req)
			providertest.CheckError(t, err, tc.want, tc.key)
			if tc.want.Reason == "" && s.Validate(tok.Value) != vendorsim.ValidityValid {
				t.Errorf("embed token %v is not valid at the simulator", tok)
			}
			reqs := v.requests()
			if tc.want.Reason == v1alpha1.ReasonInvalidCredentials {
				if len(reqs) != 0 {
					t.Errorf("%d requests with a key that cannot sign, want none", len(reqs))
				}
				return
			}
			form, _ := url.ParseQuery(string(reqs[0].Body))
			if form.Get("client_assertion_type") != provider.ClientAssertionType || form.Has("client_secret") || form.Get("client_id") != clientID {
				t.Errorf("Entra ID form %v", form)
			}
		})
	}
}

// TestValidateChecksTheCertificate checks a provider's Ready condition
// catches a certificate credential that cannot sign, before any request.
func TestValidateChecksTheCertificate(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	certPEM, keyPEM, _ := providertest.Certificate(t, key)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, otherKeyPEM, _ := providertest.Certificate(t, other)
	for _, tc := range []struct {
		name string
		key  []byte
		want providertest.Want
	}{
		{"the certificate's own key passes", keyPEM, success},
		{"another certificate's key is InvalidCredentials", otherKeyPEM,
			providertest.Want{Reason: v1alpha1.ReasonInvalidCredentials, Permanent: true, Message: "not the certificate's"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := &v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{PowerBI: &v1alpha1.PowerBIProvider{
				ClientCertificate: &v1alpha1.ClientCertificate{CertificateSecretRef: providertest.Ref("c/tls.crt"),
					PrivateKeySecretRef: new(providertest.Ref("c/tls.key"))}}}}
			err := powerbi.New().Validate(context.Background(), spec, providertest.Creds{"c/tls.crt": string(certPEM), "c/tls.key": string(tc.key)})
			providertest.CheckError(t, err, tc.want, string(tc.key))
		})
	}
}

// TestFederatedSample runs the federated sample against the simulator,
// with a token of its ServiceAccount the simulated Entra ID trusts.
func TestFederatedSample(t *testing.T) {
	prov, etr := providertest.Sample(t, "embedtokens_v1alpha1_embedprovider_powerbi_federated.yaml")
	issuer := providertest.NewIssuer(t)
	sa := prov.PowerBI.ClientAssertion.ServiceAccountRef.Name
	opts := vendorsim.Options{PowerBITenantID: prov.PowerBI.TenantID, PowerBIClientID: prov.PowerBI.ClientID,
		PowerBIFederation: issuer.Federation(t, "default", sa)}
	s, _, v := sim(t, opts)
	prov.PowerBI.AuthorityURL, prov.PowerBI.APIURL = v.url, v.url
	assertion := issuer.Token(t, "default", sa, v1alpha1.DefaultClientAssertionAudience, providertest.Epoch.Add(10*time.Minute))
	req := providertest.Request(t, providertest.Creds{providertest.SAKey(sa, v1alpha1.DefaultClientAssertionAudience): assertion}, 0)
	req.Config, req.Params, req.Lifetime = &prov, &etr.VendorParams, etr.Lifetime.Duration
	tok, err := powerbi.New().Issue(context.Background(), req)
	providertest.CheckError(t, err, success, assertion)
	if s.Validate(tok.Value) != vendorsim.ValidityValid {
		t.Errorf("the sample's token is not valid at the simulator")
	}
}
