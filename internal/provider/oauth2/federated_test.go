package oauth2_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/oauth2"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

const (
	saNamespace = "analytics"
	saName      = "bi-client"
	saAudience  = "https://idp.example.com/oauth2/token"
)

// assertionRequest is an oauth2 request to tokenURL whose provider signs
// in with a client assertion of saName for saAudience, whose token is
// assertion ("" for none).
func assertionRequest(t *testing.T, tokenURL, encoding, assertion string) provider.Request {
	t.Helper()
	c := providertest.Creds{}
	if assertion != "" {
		c[providertest.SAKey(saName, saAudience)] = assertion
	}
	req := providertest.Request(t, c, 0)
	req.Config.OAuth2 = &v1alpha1.OAuth2Provider{TokenURL: tokenURL, ClientID: clientID, BodyEncoding: encoding,
		ClientAuthMethod: oauth2.AuthBasic, Scopes: []string{"embed"},
		ClientAssertion: &v1alpha1.ClientAssertion{ServiceAccountRef: v1alpha1.ServiceAccountReference{Name: saName}, Audience: saAudience}}
	req.Params.OAuth2 = &v1alpha1.OAuth2Params{}
	return req
}

// TestClientAssertionWireFormat captures the token request of a client
// signing in with a JWT (RFC 7523 section 2.2): client_id and the two
// assertion fields in the body, no Basic header whatever clientAuthMethod
// says, in either body encoding.
func TestClientAssertionWireFormat(t *testing.T) {
	const assertion = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	tests := []struct {
		name, encoding, contentType, body string
	}{
		{name: "a form carries the assertion", encoding: oauth2.EncodingForm, contentType: "application/x-www-form-urlencoded",
			body: "client_assertion=" + assertion +
				"&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer" +
				"&client_id=client+id%3A1&grant_type=client_credentials&scope=embed"},
		{name: "a JSON body carries the assertion", encoding: oauth2.EncodingJSON, contentType: "application/json",
			body: `{"client_assertion":"` + assertion + `","client_assertion_type":"urn:ietf:params:oauth:client-assertion-type:jwt-bearer",` +
				`"client_id":"client id:1","grant_type":"client_credentials","scope":"embed"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got *http.Request
			var body []byte
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = r
				body, _ = io.ReadAll(r.Body)
				_, _ = io.WriteString(w, `{"access_token":"at","token_type":"Bearer","expires_in":60}`)
			}))
			t.Cleanup(ts.Close)
			_, err := oauth2.New().Issue(context.Background(), assertionRequest(t, ts.URL, tc.encoding, assertion))
			providertest.CheckError(t, err, providertest.Want{}, assertion)
			if string(body) != tc.body || got.Header.Get("Content-Type") != tc.contentType || got.Header.Get("Authorization") != "" {
				t.Errorf("token request %s with headers %v\nwant body %s", body, got.Header, tc.body)
			}
		})
	}
}

// TestClientAssertion signs in to the simulated authorization server,
// which verifies the assertion against the issuer's JWKS.
func TestClientAssertion(t *testing.T) {
	issuer := providertest.NewIssuer(t)
	fresh := providertest.Epoch.Add(10 * time.Minute)
	unauthorized := providertest.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "invalid_client"}
	tests := []struct {
		name      string
		assertion string
		want      providertest.Want
	}{
		{name: "a token of the trusted ServiceAccount signs in", assertion: issuer.Token(t, saNamespace, saName, saAudience, fresh)},
		{name: "a token of another ServiceAccount is refused", assertion: issuer.Token(t, saNamespace, "other", saAudience, fresh), want: unauthorized},
		{name: "a token for another audience is refused", assertion: issuer.Token(t, saNamespace, saName, "api://AzureADTokenExchange", fresh), want: unauthorized},
		{name: "an expired token is refused", assertion: issuer.Token(t, saNamespace, saName, saAudience, providertest.Epoch), want: unauthorized},
		{name: "a token of another issuer's key is refused",
			assertion: providertest.NewIssuer(t).Token(t, saNamespace, saName, saAudience, fresh), want: unauthorized},
		{name: "a missing ServiceAccount is a transient CredentialsNotFound", want: providertest.Want{Reason: v1alpha1.ReasonCredentialsNotFound}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fed := issuer.Federation(t, saNamespace, saName)
			fed.Audience = saAudience
			s := providertest.StartSim(t, vendorsim.Options{OAuth2ClientID: clientID, OAuth2Federation: fed})
			tok, err := oauth2.New().Issue(context.Background(), assertionRequest(t, s.URL()+vendorsim.OAuth2TokenPath, "", tc.assertion))
			providertest.CheckError(t, err, tc.want, tc.assertion)
			if tc.want.Reason == "" && s.Validate(tok.Value) != vendorsim.ValidityValid {
				t.Errorf("token %v is not valid at the simulator", tok)
			}
		})
	}
}

// TestClientCertificate authenticates with private_key_jwt: assertions the
// provider signs with a certificate's key, which the simulated server
// verifies against the registered certificate, with aud its token endpoint.
func TestClientCertificate(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	certPEM, keyPEM, cert := providertest.Certificate(t, key)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherPEM, otherKeyPEM, _ := providertest.Certificate(t, other)
	tests := []struct {
		name      string
		cert, key []byte
		want      providertest.Want
	}{
		{name: "a registered certificate authenticates", cert: certPEM, key: keyPEM},
		{name: "an unregistered certificate is refused", cert: otherPEM, key: otherKeyPEM,
			want: providertest.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "invalid_client"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := providertest.StartSim(t, vendorsim.Options{OAuth2ClientID: clientID, OAuth2Certificates: []*x509.Certificate{cert}})
			req := assertionRequest(t, s.URL()+vendorsim.OAuth2TokenPath, "", "")
			req.Credentials = providertest.Creds{"client/tls.crt": string(tc.cert), "client/tls.key": string(tc.key)}
			req.Config.OAuth2.ClientAssertion = nil
			req.Config.OAuth2.ClientCertificate = &v1alpha1.ClientCertificate{CertificateSecretRef: providertest.Ref("client/tls.crt"),
				PrivateKeySecretRef: new(providertest.Ref("client/tls.key"))}
			tok, err := oauth2.New().Issue(context.Background(), req)
			providertest.CheckError(t, err, tc.want, string(tc.key))
			if tc.want.Reason == "" && s.Validate(tok.Value) != vendorsim.ValidityValid {
				t.Errorf("token %v is not valid at the simulator", tok)
			}
		})
	}
}
