package oauth2_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider/oauth2"
	"github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// TestIssueRedactsEchoedCredentials runs against a token endpoint that
// quotes the Authorization header and the body it received in its error
// description, and checks the error holds the client secret in no form,
// whichever way the client authenticates and encodes.
func TestIssueRedactsEchoedCredentials(t *testing.T) {
	const htmlSecret = `s3&<>"cr3t/+v`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		desc, _ := json.Marshal("auth " + r.Header.Get("Authorization") + " body " + string(body))
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client","error_description":` + string(desc) + `}`))
	}))
	defer srv.Close()
	basic := func(id, secret string) string { return base64.StdEncoding.EncodeToString([]byte(id + ":" + secret)) }
	forms := []string{htmlSecret, url.QueryEscape(htmlSecret), `s3\u0026\u003c\u003e\"cr3t/+v`,
		basic(url.QueryEscape(clientID), url.QueryEscape(htmlSecret))}
	for _, auth := range []string{oauth2.AuthBasic, oauth2.AuthPost} {
		for _, enc := range []string{oauth2.EncodingForm, oauth2.EncodingJSON} {
			cfg := v1alpha1.OAuth2Provider{TokenURL: srv.URL, ClientID: clientID, ClientAuthMethod: auth, BodyEncoding: enc,
				ClientSecretSecretRef: new(providertest.Ref("oauth/html"))}
			req := providertest.Request(t, providertest.Creds{"oauth/html": htmlSecret}, 0)
			req.Config.OAuth2, req.Params.OAuth2 = &cfg, &v1alpha1.OAuth2Params{}
			_, err := oauth2.New().Issue(context.Background(), req)
			providertest.CheckError(t, err, providertest.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "[redacted]"}, forms...)
			if msg := err.Error(); !strings.Contains(msg, "auth") || strings.Count(msg, "[redacted]") < 1 {
				t.Errorf("%s, %s: %s", auth, enc, msg)
			}
		}
	}
}
