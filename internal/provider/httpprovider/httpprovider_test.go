package httpprovider_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/httpprovider"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// The credentials the samples reference, as the simulator is told to accept them.
const (
	qrveyKey       = "qrvey-k3y"
	boldBISecret   = "b0ld-s3cret"
	thoughtSpotKey = "ts-k3y"
	// tokenValue is what scripted servers issue.
	tokenValue = "opaque-t0ken-9f8e"
)

var (
	epoch = pt.Epoch
	creds = pt.Creds{
		"qrvey-credentials/apiKey":          qrveyKey + "\n",
		"boldbi-credentials/embedSecret":    boldBISecret,
		"thoughtspot-credentials/secretKey": thoughtSpotKey,
	}
	simOpts = vendorsim.Options{QrveyAPIKey: qrveyKey, BoldBIEmbedSecret: boldBISecret, ThoughtSpotSecretKey: thoughtSpotKey}
)

// sampleRequest loads a config/samples file and points it at baseURL.
func sampleRequest(t *testing.T, file, baseURL string, timeout time.Duration) provider.Request {
	spec, reqSpec := pt.Sample(t, file)
	spec.HTTP.URL = pt.Rebase(t, spec.HTTP.URL, baseURL)
	req := pt.Request(t, creds, timeout)
	req.Config, req.Params = &spec, &reqSpec.VendorParams
	if reqSpec.Lifetime != nil {
		req.Lifetime = reqSpec.Lifetime.Duration
	}
	return req
}

// TestSamplesAgainstSimulator runs the documented Qrvey, Bold BI and
// ThoughtSpot samples, unchanged but for the host, against the simulator.
func TestSamplesAgainstSimulator(t *testing.T) {
	tests := []struct {
		name, file string
		opts       func(*vendorsim.Options)
		vars       map[string]string // merged into the sample's variables
		wantLife   time.Duration
		want       pt.Want
		checkBody  func(t *testing.T, body map[string]any)
	}{
		{name: "qrvey", file: "embedtokens_v1alpha1_embedprovider_http_qrvey.yaml", wantLife: time.Hour,
			checkBody: func(t *testing.T, body map[string]any) {
				if body["userid"] != "alice" || body["expiresIn"] != "60m" {
					t.Errorf("body = %v", body)
				}
			}},
		{name: "qrvey, user with quotes stays valid JSON", file: "embedtokens_v1alpha1_embedprovider_http_qrvey.yaml", wantLife: time.Hour,
			vars: map[string]string{"userID": `o"brien\` + "\n" + `","appid":"other`},
			checkBody: func(t *testing.T, body map[string]any) {
				if body["userid"] != `o"brien\`+"\n"+`","appid":"other` || body["appid"] != "app-123" {
					t.Errorf("body = %v", body)
				}
			}},
		{name: "qrvey, wrong API key", file: "embedtokens_v1alpha1_embedprovider_http_qrvey.yaml",
			opts: func(o *vendorsim.Options) { o.QrveyAPIKey = "other" },
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "HTTP 401"}},
		{name: "boldbi, expires_in", file: "embedtokens_v1alpha1_embedprovider_http_boldbi.yaml", wantLife: vendorsim.BoldBITokenLifetime,
			checkBody: func(t *testing.T, body map[string]any) {
				if body["embedsecret"] != boldBISecret || body["dashboard"].(map[string]any)["id"] == "" {
					t.Errorf("body = %v", body)
				}
			}},
		{name: "boldbi, JWT exp", file: "embedtokens_v1alpha1_embedprovider_http_boldbi.yaml", wantLife: vendorsim.BoldBITokenLifetime,
			opts: func(o *vendorsim.Options) { o.BoldBIOmitExpiresIn = true }},
		{name: "boldbi, wrong secret fails the success check", file: "embedtokens_v1alpha1_embedprovider_http_boldbi.yaml",
			opts: func(o *vendorsim.Options) { o.BoldBIEmbedSecret = "other" },
			want: pt.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: `successPath .ApiStatus is not "true": Invalid embed secret`}},
		{name: "thoughtspot", file: "embedtokens_v1alpha1_embedprovider_http_thoughtspot.yaml", wantLife: 30 * time.Minute,
			checkBody: func(t *testing.T, body map[string]any) {
				if _, ok := body["org_id"]; ok || body["validity_time_in_sec"] != 1800.0 || body["username"] != "alice" {
					t.Errorf("body = %v", body)
				}
			}},
		{name: "thoughtspot with org", file: "embedtokens_v1alpha1_embedprovider_http_thoughtspot.yaml", wantLife: 30 * time.Minute,
			vars: map[string]string{"orgID": "7"},
			checkBody: func(t *testing.T, body map[string]any) {
				if body["org_id"] != 7.0 {
					t.Errorf("body = %v", body)
				}
			}},
		{name: "thoughtspot, org that is not a number", file: "embedtokens_v1alpha1_embedprovider_http_thoughtspot.yaml",
			vars: map[string]string{"orgID": `7, "username": "admin"`},
			want: pt.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true, Message: "invalid JSON"}},
		{name: "thoughtspot, wrong key", file: "embedtokens_v1alpha1_embedprovider_http_thoughtspot.yaml",
			opts: func(o *vendorsim.Options) { o.ThoughtSpotSecretKey = "other" },
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "invalid secret_key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := simOpts
			if tc.opts != nil {
				tc.opts(&opts)
			}
			sim := pt.StartSim(t, opts)
			req := sampleRequest(t, tc.file, sim.URL(), 0)
			for k, v := range tc.vars {
				req.Params.HTTP.Variables[k] = v
			}
			tok, err := httpprovider.New().Issue(context.Background(), req)
			leaks := []string{qrveyKey, boldBISecret, thoughtSpotKey, tok.Value}
			for _, c := range sim.Calls() {
				leaks = append(leaks, c.Token)
				if tc.checkBody != nil {
					tc.checkBody(t, c.Body)
				}
			}
			pt.CheckError(t, err, tc.want, leaks...)
			if err != nil {
				return
			}
			if sim.Validate(tok.Value) != vendorsim.ValidityValid {
				t.Fatalf("token %v is not valid in the simulator", tok)
			}
			if want := epoch.Add(tc.wantLife); !tok.ExpiresAt.Equal(want) || !tok.IssuedAt.Equal(epoch) {
				t.Errorf("token = %v, want expiry %v", tok, want)
			}
		})
	}
}

func TestFaultsAgainstSimulator(t *testing.T) {
	tests := []struct {
		name    string
		fault   vendorsim.Fault
		timeout time.Duration
		want    pt.Want
	}{
		{"401", vendorsim.Fault{Status: 401}, 0, pt.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "simulated fault"}},
		{"403", vendorsim.Fault{Status: 403}, 0, pt.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true}},
		{"429 with Retry-After", vendorsim.Fault{Status: 429, RetryAfter: 5 * time.Second}, 0, pt.Want{Reason: v1alpha1.ReasonVendorQuotaExceeded, RetryAfter: 5 * time.Second}},
		{"500", vendorsim.Fault{Status: 500}, 0, pt.Want{Reason: v1alpha1.ReasonVendorUnavailable}},
		{"503 with Retry-After", vendorsim.Fault{Status: 503, RetryAfter: time.Second}, 0, pt.Want{Reason: v1alpha1.ReasonVendorUnavailable, RetryAfter: time.Second}},
		{"HTML page", vendorsim.Fault{Garbage: true}, 0, pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "HTML"}},
		{"empty token", vendorsim.Fault{EmptyToken: true}, 0, pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "empty"}},
		{"timeout", vendorsim.Fault{Delay: time.Hour}, 100 * time.Millisecond, pt.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "did not answer within 100ms"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sim := pt.StartSim(t, simOpts)
			sim.SetFault(tc.fault)
			req := sampleRequest(t, "embedtokens_v1alpha1_embedprovider_http_thoughtspot.yaml", sim.URL(), tc.timeout)
			_, err := httpprovider.New().Issue(context.Background(), req)
			pt.CheckError(t, err, tc.want, thoughtSpotKey)
		})
	}
}

// TestResponses covers every expiry form, success check and malformed
// answer through a real HTTP round trip to a scripted server.
func TestResponses(t *testing.T) {
	jwtTok := pt.JWTWithExp(t, epoch.Add(3*time.Hour))
	at := epoch.Add(2 * time.Hour)
	secs, millis := strconv.FormatInt(at.Unix(), 10), strconv.FormatInt(at.UnixMilli(), 10)
	type spec = v1alpha1.HTTPProvider
	tests := []struct {
		name   string
		spec   spec
		status int
		body   string
		want   time.Time // expected expiry
		err    pt.Want
	}{
		{"expires_in number", spec{TokenPath: ".t", ExpiresInPath: ".in"}, 200, `{"t":"TOK","in":600}`, epoch.Add(10 * time.Minute), pt.Want{}},
		{"expires_in string", spec{TokenPath: ".t", ExpiresInPath: ".in"}, 200, `{"t":"TOK","in":"600"}`, epoch.Add(10 * time.Minute), pt.Want{}},
		{"epoch seconds detected", spec{TokenPath: ".t", ExpiresAtPath: ".at"}, 200, `{"t":"TOK","at":` + secs + `}`, at, pt.Want{}},
		{"epoch milliseconds detected", spec{TokenPath: ".t", ExpiresAtPath: ".at"}, 200, `{"t":"TOK","at":` + millis + `}`, at, pt.Want{}},
		{"epoch milliseconds as string", spec{TokenPath: ".t", ExpiresAtPath: ".at"}, 200, `{"t":"TOK","at":"` + millis + `"}`, at, pt.Want{}},
		{"RFC 3339 detected", spec{TokenPath: ".t", ExpiresAtPath: ".at"}, 200, `{"t":"TOK","at":"` + at.Format(time.RFC3339) + `"}`, at, pt.Want{}},
		{"explicit EpochSeconds", spec{TokenPath: ".t", ExpiresAtPath: ".at", ExpiresAtFormat: "EpochSeconds"}, 200, `{"t":"TOK","at":` + secs + `}`, at, pt.Want{}},
		{"explicit EpochMilliseconds", spec{TokenPath: ".t", ExpiresAtPath: ".at", ExpiresAtFormat: "EpochMilliseconds"}, 200, `{"t":"TOK","at":` + millis + `}`, at, pt.Want{}},
		{"explicit RFC3339", spec{TokenPath: ".t", ExpiresAtPath: ".at", ExpiresAtFormat: "RFC3339"}, 200, `{"t":"TOK","at":"` + at.Format(time.RFC3339) + `"}`, at, pt.Want{}},
		{"explicit RFC3339 given a number", spec{TokenPath: ".t", ExpiresAtPath: ".at", ExpiresAtFormat: "RFC3339"}, 200, `{"t":"TOK","at":` + millis + `}`, time.Time{},
			pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "expiresAtPath .at"}},
		{"fixed duration", spec{TokenPath: ".t", Expiry: &v1alpha1.ExpiryFallback{Duration: &metav1.Duration{Duration: 15 * time.Minute}}}, 200, `{"t":"TOK"}`, epoch.Add(15 * time.Minute), pt.Want{}},
		{"from JWT", spec{TokenPath: ".t", Expiry: &v1alpha1.ExpiryFallback{FromJWT: ptr.To(true)}}, 200, `{"t":"` + jwtTok + `"}`, epoch.Add(3 * time.Hour), pt.Want{}},
		{"from JWT, opaque token", spec{TokenPath: ".t", Expiry: &v1alpha1.ExpiryFallback{FromJWT: ptr.To(true)}}, 200, `{"t":"opaque"}`, time.Time{},
			pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "not a JWT"}},
		{"missing expires_in falls back", spec{TokenPath: ".t", ExpiresInPath: ".in", Expiry: &v1alpha1.ExpiryFallback{FromJWT: ptr.To(true)}}, 200, `{"t":"` + jwtTok + `","in":null}`, epoch.Add(3 * time.Hour), pt.Want{}},
		{"missing expires_in without fallback", spec{TokenPath: ".t", ExpiresInPath: ".in"}, 200, `{"t":"TOK"}`, time.Time{},
			pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "no expiry at .in"}},
		{"bad expires_in", spec{TokenPath: ".t", ExpiresInPath: ".in"}, 200, `{"t":"TOK","in":"soon"}`, time.Time{},
			pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "expiresInPath .in"}},
		{"nested path with index and quoted key", spec{TokenPath: `$.data[0]["access.token"]`, ExpiresInPath: ".data[0].ttl"}, 200, `{"data":[{"access.token":"TOK","ttl":60}]}`, epoch.Add(time.Minute), pt.Want{}},
		{"success check passes on number", spec{TokenPath: ".t", ExpiresInPath: ".in", SuccessPath: ".code", SuccessValue: "0"}, 200, `{"code":0.0,"t":"TOK","in":60}`, epoch.Add(time.Minute), pt.Want{}},
		{"success check passes on bool", spec{TokenPath: ".t", ExpiresInPath: ".in", SuccessPath: ".ok", SuccessValue: "True"}, 200, `{"ok":true,"t":"TOK","in":60}`, epoch.Add(time.Minute), pt.Want{}},
		{"success check fails", spec{TokenPath: ".t", ExpiresInPath: ".in", SuccessPath: ".status", SuccessValue: "ok"}, 200, `{"status":"error","message":"quota exceeded","t":"TOK","in":60}`, time.Time{},
			pt.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: `successPath .status is not "ok": quota exceeded`}},
		{"success field missing", spec{TokenPath: ".t", ExpiresInPath: ".in", SuccessPath: ".ok", SuccessValue: "true"}, 200, `{"t":"TOK","in":60}`, time.Time{},
			pt.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true}},
		{"HTML", spec{TokenPath: ".t", ExpiresInPath: ".in"}, 200, `<html><body>TOK</body></html>`, time.Time{},
			pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "HTML"}},
		{"truncated JSON", spec{TokenPath: ".t", ExpiresInPath: ".in"}, 200, `{"t":"TOK","in":6`, time.Time{},
			pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "not JSON"}},
		{"two JSON documents", spec{TokenPath: ".t", ExpiresInPath: ".in"}, 200, `{"t":"TOK","in":6} {}`, time.Time{},
			pt.Want{Reason: v1alpha1.ReasonInvalidResponse}},
		{"JSON without token", spec{TokenPath: ".t", ExpiresInPath: ".in"}, 200, `{"in":60}`, time.Time{},
			pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "no token at tokenPath .t"}},
		{"token is a number", spec{TokenPath: ".t", ExpiresInPath: ".in"}, 200, `{"t":12345,"in":60}`, time.Time{},
			pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Message: "is a number, not a string"}},
		{"a token of 64 KiB is accepted", spec{TokenPath: ".t", ExpiresInPath: ".in"}, 200, `{"t":"` + strings.Repeat("a", 64<<10) + `","in":60}`, epoch.Add(time.Minute), pt.Want{}},
		{"a token of a megabyte is refused unquoted", spec{TokenPath: ".t", ExpiresInPath: ".in"}, 200, `{"t":"` + strings.Repeat("a", 1_000_000) + `","in":60}`, time.Time{},
			pt.Want{Reason: v1alpha1.ReasonInvalidResponse, Permanent: true, Message: "the token at tokenPath .t is 1000000 bytes, more than the 65536 bytes"}},
		{"400 with message", spec{TokenPath: ".t", ExpiresInPath: ".in"}, 400, `{"error":{"message":"username unknown"}}`, time.Time{},
			pt.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "HTTP 400: username unknown"}},
		{"502 HTML", spec{TokenPath: ".t", ExpiresInPath: ".in"}, 502, `<html>bad gateway</html>`, time.Time{},
			pt.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "HTTP 502"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(strings.ReplaceAll(tc.body, "TOK", tokenValue)))
			}))
			defer srv.Close()
			req := pt.Request(t, creds, 0)
			tc.spec.URL = srv.URL + "/token"
			req.Config.HTTP, req.Params.HTTP = &tc.spec, &v1alpha1.HTTPParams{}
			tok, err := httpprovider.New().Issue(context.Background(), req)
			pt.CheckError(t, err, tc.err, "TOK", jwtTok, strings.Repeat("a", 32))
			if err == nil && (tok.Value == "" || !tok.ExpiresAt.Equal(tc.want)) {
				t.Fatalf("token = %v, want expiry %v", tok, tc.want)
			}
		})
	}
}
