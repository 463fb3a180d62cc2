package quicksight_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"sigs.k8s.io/yaml"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/egress"
	"github.com/embedtokens/embed-token-operator/internal/provider/quicksight"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

const (
	account   = vendorsim.DefaultQuickSightAccountID
	region    = vendorsim.DefaultQuickSightRegion
	keyID     = vendorsim.DefaultQuickSightAccessKeyID
	secretKey = vendorsim.DefaultQuickSightSecretAccessKey
	userARN   = "arn:aws:quicksight:us-east-1:111122223333:user/default/alice"
	dashboard = "arn:aws:quicksight:us-east-1:111122223333:dashboard/sales-7"
)

// capture is one request as it reached the wire.
type capture struct {
	method, path string
	header       http.Header
	body         []byte
}

// recorder serves the simulator behind a proxy that records every request
// byte for byte before the simulator sees it.
type recorder struct {
	sim *vendorsim.Server
	url string

	mu    sync.Mutex
	calls []capture
}

func startRecorder(t *testing.T, opts vendorsim.Options) *recorder {
	t.Helper()
	rec := &recorder{sim: pt.StartSim(t, opts)}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.calls = append(rec.calls, capture{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: raw})
		rec.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(raw))
		rec.sim.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	rec.url = ts.URL
	return rec
}

func (r *recorder) captures() []capture {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]capture(nil), r.calls...)
}

// secretCreds are the simulator's keys in Secrets, written with blanks
// around them as `kubectl create secret --from-file` may leave them.
func secretCreds() pt.Creds {
	return pt.Creds{"aws/id": " " + keyID + "\n", "aws/secret": secretKey + "\n"}
}

func secretConfig(endpoint string) *v1alpha1.QuickSightProvider {
	return &v1alpha1.QuickSightProvider{
		Region: region, AWSAccountID: account, Namespace: "default", Endpoint: endpoint,
		Credentials: v1alpha1.AWSCredentials{Secret: &v1alpha1.AWSSecretCredentials{
			AccessKeyIDSecretRef: pt.Ref("aws/id"), SecretAccessKeySecretRef: pt.Ref("aws/secret"),
		}},
	}
}

func registered() *v1alpha1.QuickSightParams {
	return &v1alpha1.QuickSightParams{
		RegisteredUser: &v1alpha1.QuickSightRegisteredUser{
			UserARN:    userARN,
			Experience: v1alpha1.QuickSightRegisteredExperience{Dashboard: &v1alpha1.QuickSightDashboard{InitialDashboardID: "sales-7"}},
		},
		SessionLifetimeInMinutes: aws.Int64(60),
		AllowedDomains:           []string{"https://portal.example.com"},
	}
}

func anonymous() *v1alpha1.QuickSightParams {
	return &v1alpha1.QuickSightParams{
		Anonymous: &v1alpha1.QuickSightAnonymousUser{
			AuthorizedResourceARNs: []string{dashboard},
			Experience:             v1alpha1.QuickSightAnonymousExperience{Dashboard: &v1alpha1.QuickSightDashboard{InitialDashboardID: "sales-7"}},
			SessionTags:            []v1alpha1.QuickSightSessionTag{{Key: "tenant", Value: "acme"}, {Key: "region", Value: "EU,US"}},
		},
		SessionLifetimeInMinutes: aws.Int64(15),
	}
}

func request(t *testing.T, creds pt.Creds, cfg *v1alpha1.QuickSightProvider, params *v1alpha1.QuickSightParams) provider.Request {
	t.Helper()
	req := pt.Request(t, creds, 0)
	req.Config.QuickSight, req.Params.QuickSight = cfg, params
	return req
}

var sigV4 = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20300102/us-east-1/quicksight/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=[0-9a-f]{64}$`)

// TestWireCapture checks each action's request as it reaches the wire:
// method, path, the JSON body byte for byte as the SDK writes it, and a
// SigV4 Authorization header scoped to the region's quicksight at the
// call's time, which the simulator recomputes and accepts.
func TestWireCapture(t *testing.T) {
	tests := []struct {
		name   string
		params *v1alpha1.QuickSightParams
		path   string
		body   string
	}{
		{
			name:   "a registered user's dashboard is GenerateEmbedUrlForRegisteredUser",
			params: registered(),
			path:   "/accounts/111122223333/embed-url/registered-user",
			body:   `{"AllowedDomains":["https://portal.example.com"],"ExperienceConfiguration":{"Dashboard":{"InitialDashboardId":"sales-7"}},"SessionLifetimeInMinutes":60,"UserArn":"arn:aws:quicksight:us-east-1:111122223333:user/default/alice"}`,
		},
		{
			name:   "an anonymous viewer is GenerateEmbedUrlForAnonymousUser with its session tags",
			params: anonymous(),
			path:   "/accounts/111122223333/embed-url/anonymous-user",
			body:   `{"AuthorizedResourceArns":["arn:aws:quicksight:us-east-1:111122223333:dashboard/sales-7"],"ExperienceConfiguration":{"Dashboard":{"InitialDashboardId":"sales-7"}},"Namespace":"default","SessionLifetimeInMinutes":15,"SessionTags":[{"Key":"tenant","Value":"acme"},{"Key":"region","Value":"EU,US"}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := startRecorder(t, vendorsim.Options{})
			tok, err := quicksight.New().Issue(context.Background(), request(t, secretCreds(), secretConfig(rec.url), tt.params))
			pt.CheckError(t, err, pt.Want{}, keyID, secretKey)
			pt.CheckWindow(t, tok, quicksight.URLRedemptionWindow)
			if !strings.HasPrefix(tok.Value, "http://") || !strings.Contains(tok.Value, vendorsim.QuickSightEmbedRedeemPath) {
				t.Errorf("token = %q, want the simulator's embed URL", tok.Value)
			}
			calls := rec.captures()
			if len(calls) != 1 {
				t.Fatalf("%d calls, want 1", len(calls))
			}
			c := calls[0]
			if c.method != http.MethodPost || c.path != tt.path || string(c.body) != tt.body {
				t.Errorf("sent %s %s\n%s\nwant POST %s\n%s", c.method, c.path, c.body, tt.path, tt.body)
			}
			if ct := c.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if got := c.header.Get("X-Amz-Date"); got != "20300102T030405Z" {
				t.Errorf("X-Amz-Date = %q, want the call's time", got)
			}
			m := sigV4.FindStringSubmatch(c.header.Get("Authorization"))
			if m == nil || !strings.Contains(m[1], "host") || !strings.Contains(m[1], "x-amz-date") || !strings.Contains(m[1], "content-type") {
				t.Errorf("Authorization = %q, want SigV4 over host, content-type and x-amz-date", c.header.Get("Authorization"))
			}
			if got := rec.sim.Calls(); len(got) != 1 || got[0].Status != http.StatusOK {
				t.Errorf("simulator saw %+v, want one accepted call", got)
			}
		})
	}
}

// TestEmbedURLRedeemsOnce opens an issued URL twice: QuickSight starts a
// session the first time only, which is why the vendor is single-use.
func TestEmbedURLRedeemsOnce(t *testing.T) {
	sim := pt.StartSim(t, vendorsim.Options{})
	p := quicksight.New()
	req := request(t, secretCreds(), secretConfig(sim.URL()), registered())
	if !provider.IsSingleUse(p, req.Config) {
		t.Error("QuickSight must be single-use")
	}
	tok, err := p.Issue(context.Background(), req)
	pt.CheckError(t, err, pt.Want{})
	if v := sim.Validate(tok.Value); v != vendorsim.ValidityValid {
		t.Errorf("before redemption the URL is %s", v)
	}
	for i, want := range []int{http.StatusOK, http.StatusForbidden} {
		resp, err := http.Get(tok.Value)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("redemption %d answered %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	if v := sim.Validate(tok.Value); v != vendorsim.ValidityUnknown {
		t.Errorf("after redemption the URL is %s, want unknown", v)
	}
}

// TestFailures checks how QuickSight's and the SDK's failures are reported.
func TestFailures(t *testing.T) {
	wrongSecret := pt.Creds{"aws/id": keyID, "aws/secret": "not-the-secret-key"}
	tests := []struct {
		name   string
		creds  pt.Creds
		fault  *vendorsim.Fault
		cfg    func(url string) *v1alpha1.QuickSightProvider
		params *v1alpha1.QuickSightParams
		want   pt.Want
	}{
		{
			name: "a wrong secret key fails the signature check and is unauthorized", creds: wrongSecret, params: registered(),
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "AccessDeniedException"},
		},
		{
			name: "throttling is a quota with the vendor's Retry-After", params: registered(),
			fault: &vendorsim.Fault{Status: http.StatusTooManyRequests, RetryAfter: 7 * time.Second},
			want:  pt.Want{Reason: v1alpha1.ReasonVendorQuotaExceeded, RetryAfter: 7 * time.Second, Message: "ThrottlingException"},
		},
		{
			name: "an internal failure is transient", params: registered(),
			fault: &vendorsim.Fault{Status: http.StatusInternalServerError},
			want:  pt.Want{Reason: v1alpha1.ReasonVendorUnavailable, Message: "QuickSight: vendor answered HTTP 500"},
		},
		{
			name: "an empty EmbedUrl is an invalid response", params: registered(),
			fault: &vendorsim.Fault{EmptyToken: true},
			want:  pt.Want{Reason: v1alpha1.ReasonInvalidResponse},
		},
		{
			name: "a dashboard outside the authorized resources is rejected", params: func() *v1alpha1.QuickSightParams {
				p := anonymous()
				p.Anonymous.Experience.Dashboard.InitialDashboardID = "other"
				return p
			}(),
			want: pt.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "InvalidParameterValueException"},
		},
		{
			name: "another account's route is not found", params: registered(),
			cfg: func(url string) *v1alpha1.QuickSightProvider {
				c := secretConfig(url)
				c.AWSAccountID = "999999999999"
				return c
			},
			want: pt.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true, Message: "HTTP 404"},
		},
		{
			name: "a missing secret key is reported as the Secret's", creds: pt.Creds{"aws/id": keyID}, params: registered(),
			want: pt.Want{Reason: v1alpha1.ReasonCredentialsNotFound},
		},
		{
			name: "a blank access key ID is invalid credentials", creds: pt.Creds{"aws/id": " \n", "aws/secret": secretKey}, params: registered(),
			want: pt.Want{Reason: v1alpha1.ReasonInvalidCredentials, Permanent: true},
		},
		{
			name: "a request block of another vendor is a mismatch", params: nil,
			want: pt.Want{Reason: v1alpha1.ReasonVendorMismatch, Permanent: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := pt.StartSim(t, vendorsim.Options{})
			if tt.fault != nil {
				sim.SetFault(*tt.fault)
			}
			creds := tt.creds
			if creds == nil {
				creds = secretCreds()
			}
			cfg := secretConfig(sim.URL())
			if tt.cfg != nil {
				cfg = tt.cfg(sim.URL())
			}
			_, err := quicksight.New().Issue(context.Background(), request(t, creds, cfg, tt.params))
			t.Logf("error: %v", err)
			pt.CheckError(t, err, tt.want, keyID, secretKey, "not-the-secret-key")
		})
	}
}

// TestRequestGoesThroughTheProvidersClient checks that the SDK sends with
// the HTTP client the operator built for the provider: a client whose
// egress guard refuses the simulator's address never reaches it.
func TestRequestGoesThroughTheProvidersClient(t *testing.T) {
	sim := pt.StartSim(t, vendorsim.Options{})
	req := request(t, secretCreds(), secretConfig(sim.URL()), registered())
	client, err := provider.NewHTTPClient(time.Second, nil, egressNothing())
	if err != nil {
		t.Fatal(err)
	}
	req.HTTPClient = client
	_, err = quicksight.New().Issue(context.Background(), req)
	pt.CheckError(t, err, pt.Want{Reason: v1alpha1.ReasonVendorAddressNotAllowed, Permanent: true})
	if n := sim.CallCount(); n != 0 {
		t.Errorf("the simulator saw %d calls, want none", n)
	}
}

// webIdentity is a pod's web identity: a token file and the variables EKS
// sets.
func webIdentity(t *testing.T, token, roleARN string) func(string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{quicksight.EnvWebIdentityTokenFile: file, quicksight.EnvRoleARN: roleARN}
	return func(k string) string { return env[k] }
}

func podIdentityConfig(endpoint string) *v1alpha1.QuickSightProvider {
	cfg := secretConfig(endpoint)
	cfg.Credentials = v1alpha1.AWSCredentials{PodIdentity: &v1alpha1.AWSPodIdentity{STSEndpoint: endpoint}}
	return cfg
}

// TestWebIdentity exchanges the pod's web identity with the simulator
// playing STS (AssumeRoleWithWebIdentity), signs QuickSight calls with the
// session's credentials, and reuses them for later calls.
func TestWebIdentity(t *testing.T) {
	rec := startRecorder(t, vendorsim.Options{})
	p := quicksight.NewWithOptions(quicksight.Options{Getenv: webIdentity(t, vendorsim.DefaultQuickSightWebIdentityToken, vendorsim.DefaultQuickSightRoleARN)})
	for range 2 {
		_, err := p.Issue(context.Background(), request(t, nil, podIdentityConfig(rec.url), registered()))
		pt.CheckError(t, err, pt.Want{}, vendorsim.DefaultQuickSightWebIdentityToken)
	}
	if n := rec.sim.QuickSightAssumedRoles(); n != 1 {
		t.Errorf("STS assumed the role %d times, want once for both calls", n)
	}
	calls := rec.captures()
	if len(calls) != 3 {
		t.Fatalf("%d calls, want STS then QuickSight twice", len(calls))
	}
	sts := calls[0]
	form := string(sts.body)
	for _, want := range []string{"Action=AssumeRoleWithWebIdentity", "Version=2011-06-15",
		"RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fembed-token-operator",
		"RoleSessionName=" + quicksight.RoleSessionName, "WebIdentityToken=" + vendorsim.DefaultQuickSightWebIdentityToken} {
		if !strings.Contains(form, want) {
			t.Errorf("STS body %q lacks %s", form, want)
		}
	}
	if sts.method != http.MethodPost || sts.path != "/" || sts.header.Get("Authorization") != "" {
		t.Errorf("STS call %s %s, Authorization %q: want an unsigned POST /", sts.method, sts.path, sts.header.Get("Authorization"))
	}
	for _, c := range calls[1:] {
		if !strings.Contains(c.header.Get("Authorization"), "Credential=ASIA") || c.header.Get("X-Amz-Security-Token") == "" {
			t.Errorf("QuickSight call not signed with the session's credentials: %v", c.header)
		}
	}
}

// TestWebIdentityFailures checks a pod identity that cannot work.
func TestWebIdentityFailures(t *testing.T) {
	tests := []struct {
		name      string
		getenv    func(t *testing.T) func(string) string
		namespace string
		want      pt.Want
	}{
		{
			name:   "a pod without a web identity says how to give it one",
			getenv: func(*testing.T) func(string) string { return func(string) string { return "" } },
			want:   pt.Want{Reason: v1alpha1.ReasonCredentialsNotFound, Permanent: true, Message: "eks.amazonaws.com/role-arn"},
		},
		{
			name: "an untrusted web identity is unauthorized by STS",
			getenv: func(t *testing.T) func(string) string {
				return webIdentity(t, "some-other-token", vendorsim.DefaultQuickSightRoleARN)
			},
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "InvalidIdentityToken"},
		},
		{
			name: "a role the web identity may not assume is unauthorized by STS",
			getenv: func(t *testing.T) func(string) string {
				return webIdentity(t, vendorsim.DefaultQuickSightWebIdentityToken, "arn:aws:iam::111122223333:role/other")
			},
			want: pt.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "AWS STS"},
		},
		{
			name: "a namespaced EmbedProvider may not use the operator's identity",
			getenv: func(t *testing.T) func(string) string {
				return webIdentity(t, vendorsim.DefaultQuickSightWebIdentityToken, vendorsim.DefaultQuickSightRoleARN)
			},
			namespace: "team-a",
			want:      pt.Want{Reason: v1alpha1.ReasonProviderInvalid, Permanent: true, Message: "only a ClusterEmbedProvider"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := pt.StartSim(t, vendorsim.Options{})
			p := quicksight.NewWithOptions(quicksight.Options{Getenv: tt.getenv(t)})
			req := request(t, nil, podIdentityConfig(sim.URL()), registered())
			req.ProviderNamespace = tt.namespace
			_, err := p.Issue(context.Background(), req)
			t.Logf("error: %v", err)
			pt.CheckError(t, err, tt.want, vendorsim.DefaultQuickSightWebIdentityToken, "some-other-token")
		})
	}
}

// TestInputs checks the SDK inputs built from the API's blocks.
func TestInputs(t *testing.T) {
	cfg := secretConfig("")
	tests := []struct {
		name   string
		params *v1alpha1.QuickSightParams
		want   string
	}{
		{
			name: "the console experience opens its initial path",
			params: &v1alpha1.QuickSightParams{RegisteredUser: &v1alpha1.QuickSightRegisteredUser{UserARN: userARN,
				Experience: v1alpha1.QuickSightRegisteredExperience{Console: &v1alpha1.QuickSightConsole{InitialPath: "/start"}}}},
			want: `{"AwsAccountId":"111122223333","ExperienceConfiguration":{"QuickSightConsole":{"InitialPath":"/start"}},"UserArn":"` + userARN + `"}`,
		},
		{
			name: "a user named by name is the provider's account's, namespace's and region's",
			params: &v1alpha1.QuickSightParams{RegisteredUser: &v1alpha1.QuickSightRegisteredUser{UserName: "alice",
				Experience: v1alpha1.QuickSightRegisteredExperience{Dashboard: &v1alpha1.QuickSightDashboard{InitialDashboardID: "d"}}}},
			want: `{"AwsAccountId":"111122223333","ExperienceConfiguration":{"Dashboard":{"InitialDashboardId":"d"}},"UserArn":"` + userARN + `"}`,
		},
		{
			name: "a named user's namespace and identity region replace the provider's, in the region's partition",
			params: &v1alpha1.QuickSightParams{RegisteredUser: &v1alpha1.QuickSightRegisteredUser{UserName: "embed-role/alice",
				Namespace: "tenant-a", IdentityRegion: "us-gov-west-1",
				Experience: v1alpha1.QuickSightRegisteredExperience{Dashboard: &v1alpha1.QuickSightDashboard{InitialDashboardID: "d"}}}},
			want: `{"AwsAccountId":"111122223333","ExperienceConfiguration":{"Dashboard":{"InitialDashboardId":"d"}},` +
				`"UserArn":"arn:aws-us-gov:quicksight:us-gov-west-1:111122223333:user/tenant-a/embed-role/alice"}`,
		},
		{
			name: "a Q search bar without a topic sends no topic",
			params: &v1alpha1.QuickSightParams{RegisteredUser: &v1alpha1.QuickSightRegisteredUser{UserARN: userARN,
				Experience: v1alpha1.QuickSightRegisteredExperience{QSearchBar: &v1alpha1.QuickSightQSearchBar{}}}},
			want: `{"AwsAccountId":"111122223333","ExperienceConfiguration":{"QSearchBar":{}},"UserArn":"` + userARN + `"}`,
		},
		{
			name: "an anonymous request's namespace replaces the provider's",
			params: &v1alpha1.QuickSightParams{Anonymous: &v1alpha1.QuickSightAnonymousUser{Namespace: "tenant-a",
				AuthorizedResourceARNs: []string{dashboard},
				Experience:             v1alpha1.QuickSightAnonymousExperience{QSearchBar: &v1alpha1.QuickSightQSearchBar{InitialTopicID: "t1"}}}},
			want: `{"AuthorizedResourceArns":["` + dashboard + `"],"AwsAccountId":"111122223333","ExperienceConfiguration":{"QSearchBar":{"InitialTopicId":"t1"}},"Namespace":"tenant-a"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in any
			if tt.params.RegisteredUser != nil {
				in = quicksight.RegisteredUserInput(cfg, tt.params)
			} else {
				in = quicksight.AnonymousUserInput(cfg, tt.params)
			}
			got, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			if norm := normalize(t, got); norm != normalize(t, []byte(tt.want)) {
				t.Errorf("input = %s\nwant    %s", norm, tt.want)
			}
		})
	}
}

// normalize drops the SDK's null fields and sorts keys.
func normalize(t *testing.T, raw []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(dropNulls(v))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func dropNulls(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e == nil {
				delete(x, k)
			} else {
				x[k] = dropNulls(e)
			}
		}
	case []any:
		for i, e := range x {
			x[i] = dropNulls(e)
		}
	}
	return v
}

// egressNothing is the egress guard of a cluster with no allow list, which
// refuses loopback addresses such as the simulator's.
func egressNothing() egress.Guard { return egress.Guard{Scope: egress.Cluster} }

// sample reads a config/samples file holding one provider and one
// template: their specs.
func sample(t *testing.T, file string) (v1alpha1.EmbedProviderSpec, v1alpha1.EmbedTokenTemplateSpec) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "config", "samples", file))
	if err != nil {
		t.Fatal(err)
	}
	var prov v1alpha1.EmbedProviderSpec
	var tmpl v1alpha1.EmbedTokenTemplateSpec
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var obj struct {
			Kind string          `json:"kind"`
			Spec json.RawMessage `json:"spec"`
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var dst any = &prov
		if obj.Kind == "EmbedTokenTemplate" {
			dst = &tmpl
		}
		if err := json.Unmarshal(obj.Spec, dst); err != nil {
			t.Fatalf("%s, %s: %v", file, obj.Kind, err)
		}
	}
	return prov, tmpl
}

// TestSamples runs the documented samples against the simulator, their
// templates' placeholders as they stand.
func TestSamples(t *testing.T) {
	tests := []struct {
		name, file string
		creds      pt.Creds
		getenv     func(t *testing.T) func(string) string
	}{
		{
			name: "access keys from a Secret", file: "embedtokens_v1alpha1_embedprovider_quicksight.yaml",
			creds:  pt.Creds{"quicksight-credentials/accessKeyID": keyID, "quicksight-credentials/secretAccessKey": secretKey},
			getenv: func(*testing.T) func(string) string { return func(string) string { return "" } },
		},
		{
			name: "the operator pod's web identity", file: "embedtokens_v1alpha1_clusterembedprovider_quicksight_irsa.yaml",
			getenv: func(t *testing.T) func(string) string {
				return webIdentity(t, vendorsim.DefaultQuickSightWebIdentityToken, vendorsim.DefaultQuickSightRoleARN)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := pt.StartSim(t, vendorsim.Options{})
			prov, tmpl := sample(t, tt.file)
			prov.QuickSight.Endpoint = sim.URL()
			if id := prov.QuickSight.Credentials.PodIdentity; id != nil {
				id.STSEndpoint = sim.URL()
			}
			req := request(t, tt.creds, prov.QuickSight, tmpl.QuickSight)
			tok, err := quicksight.NewWithOptions(quicksight.Options{Getenv: tt.getenv(t)}).Issue(context.Background(), req)
			pt.CheckError(t, err, pt.Want{})
			if sim.Validate(tok.Value) != vendorsim.ValidityValid {
				t.Errorf("the simulator does not know the URL %q", tok.Value)
			}
		})
	}
}

// TestIncompleteBlockIsRefusedBeforeSending checks that a block admission
// would refuse, when it reaches the provider anyway (an older CRD), is a
// permanent InvalidRequest and sends nothing.
func TestIncompleteBlockIsRefusedBeforeSending(t *testing.T) {
	sim := pt.StartSim(t, vendorsim.Options{})
	cfg := secretConfig(sim.URL())
	cfg.AWSAccountID = ""
	_, err := quicksight.New().Issue(context.Background(), request(t, secretCreds(), cfg, registered()))
	t.Logf("error: %v", err)
	pt.CheckError(t, err, pt.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true, Message: "AwsAccountId"}, keyID, secretKey)
	if n := sim.CallCount(); n != 0 {
		t.Errorf("the simulator saw %d calls", n)
	}
}
