/*
Copyright 2026 The embed-token-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package tokenendpoint

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// epoch is the fake clock's start.
var epoch = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// The bearer tokens of the fake authenticator.
const (
	aliceToken = "bearer-alice"
	bobToken   = "bearer-bob"
)

// fakeAuthn accepts the bearer tokens it maps to callers.
type fakeAuthn map[string]Caller

func (f fakeAuthn) Authenticate(_ context.Context, bearer string) (Caller, error) {
	if c, ok := f[bearer]; ok {
		return c, nil
	}
	return Caller{}, unauthorized("the token is not valid")
}

// fakeAuthz allows the usernames it holds, in namespace ns.
type fakeAuthz struct {
	ns    string
	users map[string]bool
}

func (f fakeAuthz) Authorize(_ context.Context, c Caller, namespace, _ string) error {
	if namespace == f.ns && f.users[c.Username] {
		return nil
	}
	return &Error{Status: http.StatusForbidden, Reason: ReasonForbidden, Message: "denied"}
}

// fakeMinter refuses parameters the template does not declare and issues
// numbered tokens valid for lifetime from the clock's now.
type fakeMinter struct {
	clock    *clocktesting.FakeClock
	lifetime time.Duration
	// prepareErr and mintErr, when set, fail the step.
	prepareErr error
	mintErr    error
	// block, when set, makes Mint wait for ctx to end.
	block bool
	// singleUse and credsVersion are put into Prepared.
	singleUse    bool
	credsVersion atomic.Value
	mints        atomic.Int64
	prepares     atomic.Int64
}

func (m *fakeMinter) Prepare(_ context.Context, tmpl *v1alpha1.EmbedTokenTemplate, params map[string]string, _ Caller) (Prepared, error) {
	m.prepares.Add(1)
	if m.prepareErr != nil {
		return Prepared{}, m.prepareErr
	}
	declared := map[string]bool{}
	for _, p := range tmpl.Spec.Parameters {
		declared[p.Name] = true
		if _, ok := params[p.Name]; !ok {
			return Prepared{}, InvalidParameters("parameter %q is missing", p.Name)
		}
	}
	for name := range params {
		if !declared[name] {
			return Prepared{}, InvalidParameters("parameter %q is not declared", name)
		}
	}
	v, _ := m.credsVersion.Load().(string)
	return Prepared{CredentialsVersion: v, SingleUse: m.singleUse, Payload: params}, nil
}

func (m *fakeMinter) Mint(ctx context.Context, p Prepared) (provider.Token, error) {
	if m.block {
		<-ctx.Done()
		return provider.Token{}, ctx.Err()
	}
	if m.mintErr != nil {
		return provider.Token{}, m.mintErr
	}
	n := m.mints.Add(1)
	now := m.clock.Now()
	return provider.Token{Value: fmt.Sprintf("vendor-token-%d-%v", n, p.Payload), IssuedAt: now, ExpiresAt: now.Add(m.lifetime)}, nil
}

// fixture is an Endpoint on fakes, with one Ready template default/dash
// declaring the parameter user, which alice may call.
type fixture struct {
	t        *testing.T
	ep       *Endpoint
	clock    *clocktesting.FakeClock
	minter   *fakeMinter
	reader   client.Client
	registry *prometheus.Registry
	logs     *strings.Builder
	logMu    *sync.Mutex
}

func template(mutate ...func(*v1alpha1.EmbedTokenTemplate)) *v1alpha1.EmbedTokenTemplate {
	t := &v1alpha1.EmbedTokenTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "dash", UID: "uid-1", Generation: 1},
		Spec: v1alpha1.EmbedTokenTemplateSpec{
			ProviderRef: v1alpha1.ProviderRef{Name: "vendor"},
			Parameters:  []v1alpha1.TemplateParameter{{Name: "user", Path: "jwt.subject"}},
		},
		Status: v1alpha1.EmbedTokenTemplateStatus{ObservedGeneration: 1, Conditions: []metav1.Condition{{
			Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready", ObservedGeneration: 1,
			LastTransitionTime: metav1.NewTime(epoch),
		}}},
	}
	for _, m := range mutate {
		m(t)
	}
	return t
}

func newFixture(t *testing.T, opts Options, objs ...client.Object) *fixture {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		objs = []client.Object{template()}
	}
	f := &fixture{t: t, clock: clocktesting.NewFakeClock(epoch), registry: prometheus.NewRegistry(),
		logs: &strings.Builder{}, logMu: &sync.Mutex{}}
	f.reader = fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithStatusSubresource(objs...).Build()
	f.minter = &fakeMinter{clock: f.clock, lifetime: time.Hour}
	opts.Templates = f.reader
	if opts.Minter == nil {
		opts.Minter = f.minter
	}
	opts.Authenticator = fakeAuthn{
		aliceToken: {Username: "system:serviceaccount:default:alice", Namespace: "default", ServiceAccount: "alice", PodName: "web-1"},
		bobToken:   {Username: "system:serviceaccount:default:bob", Namespace: "default", ServiceAccount: "bob"},
	}
	opts.Authorizer = fakeAuthz{ns: "default", users: map[string]bool{"system:serviceaccount:default:alice": true}}
	opts.Clock = f.clock
	opts.MetricsRegisterer = f.registry
	opts.Logger = funcr.New(func(prefix, args string) {
		f.logMu.Lock()
		defer f.logMu.Unlock()
		f.logs.WriteString(args + "\n")
	}, funcr.Options{})
	ep, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.ep = ep
	return f
}

const route = PathPrefix + "default/embedtokentemplates/dash/token"

// result is an answer, decoded.
type result struct {
	status     int
	retryAfter string
	token      TokenResponse
	err        errorBody
	raw        string
}

// call makes one call with ctx, the bearer token and the body.
func (f *fixture) callCtx(ctx context.Context, method, path, bearer, body string) result {
	req := httptest.NewRequestWithContext(ctx, method, path, strings.NewReader(body))
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	rec := httptest.NewRecorder()
	f.ep.ServeHTTP(rec, req)
	r := result{status: rec.Code, retryAfter: rec.Header().Get("Retry-After"), raw: rec.Body.String()}
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &r.token); err != nil {
			f.t.Fatalf("decoding %q: %v", rec.Body.String(), err)
		}
	} else if err := json.Unmarshal(rec.Body.Bytes(), &r.err); err != nil {
		f.t.Fatalf("decoding the error %q: %v", rec.Body.String(), err)
	}
	return r
}

func (f *fixture) call(bearer, body string) result {
	return f.callCtx(context.Background(), http.MethodPost, route, bearer, body)
}

// user is the body of a call for the end user u.
func user(u string) string { return `{"parameters":{"user":"` + u + `"}}` }

func TestErrorAnswers(t *testing.T) {
	notReady := template(func(t *v1alpha1.EmbedTokenTemplate) { t.Status.Conditions[0].Status = metav1.ConditionFalse })
	stale := template(func(t *v1alpha1.EmbedTokenTemplate) { t.Generation = 2 })
	tooMany := map[string]string{}
	for i := range MaxParameters + 1 {
		tooMany[fmt.Sprintf("p%d", i)] = "v"
	}
	tooManyBody, _ := json.Marshal(TokenRequest{Parameters: tooMany})
	cases := []struct {
		name       string
		template   *v1alpha1.EmbedTokenTemplate
		minter     func(*fakeMinter)
		timeout    time.Duration
		method     string
		path       string
		bearer     string
		body       string
		wantStatus int
		wantReason string
		wantRetry  string
		wantMints  int64
	}{
		{name: "a call without a bearer token is 401", bearer: "-", body: user("u"), wantStatus: 401, wantReason: ReasonUnauthorized},
		{name: "a token the authenticator refuses is 401", bearer: "garbage", body: user("u"), wantStatus: 401, wantReason: ReasonUnauthorized},
		{name: "a caller without access to the template is 403 Forbidden", bearer: bobToken, body: user("u"), wantStatus: 403, wantReason: ReasonForbidden},
		{name: "a caller asking in another namespace is 403 Forbidden", path: PathPrefix + "other/embedtokentemplates/dash/token", body: user("u"), wantStatus: 403, wantReason: ReasonForbidden},
		{name: "a template that does not exist is 404", path: PathPrefix + "default/embedtokentemplates/nope/token", body: user("u"), wantStatus: 404, wantReason: ReasonNotFound},
		{name: "a path outside the route is 404", path: PathPrefix + "default/embedtokentemplates/dash/other", wantStatus: 404, wantReason: ReasonNotFound},
		{name: "a namespace that is not a DNS label is 404", path: PathPrefix + "Bad_NS/embedtokentemplates/dash/token", wantStatus: 404, wantReason: ReasonNotFound},
		{name: "a GET is 405", method: http.MethodGet, wantStatus: 405, wantReason: ReasonMethodNotAllowed},
		{name: "a template not Ready is 409 TemplateNotReady", template: notReady, body: user("u"), wantStatus: 409, wantReason: ReasonTemplateNotReady},
		{name: "a template whose status is for an older generation is 409 TemplateNotReady", template: stale, body: user("u"), wantStatus: 409, wantReason: ReasonTemplateNotReady},
		{name: "an unknown field in the body is 400", body: `{"parameters":{"user":"u"},"extra":1}`, wantStatus: 400, wantReason: ReasonBadRequest},
		{name: "a body that is not JSON is 400", body: `{"parameters":`, wantStatus: 400, wantReason: ReasonBadRequest},
		{name: "a parameter value that is not a string is 400", body: `{"parameters":{"user":1}}`, wantStatus: 400, wantReason: ReasonBadRequest},
		{name: "two JSON objects are 400", body: user("u") + user("v"), wantStatus: 400, wantReason: ReasonBadRequest},
		{name: "a body over 16 KiB is 413", body: `{"parameters":{"user":"` + strings.Repeat("x", MaxBodyBytes) + `"}}`, wantStatus: 413, wantReason: ReasonRequestTooLarge},
		{name: "more than 32 parameters are 400 InvalidParameters", body: string(tooManyBody), wantStatus: 400, wantReason: ReasonInvalidParameters},
		{name: "a negative minValidFor is 400", body: `{"parameters":{"user":"u"},"minValidFor":"-1m"}`, wantStatus: 400, wantReason: ReasonBadRequest},
		{name: "a minValidFor that is not a duration is 400", body: `{"parameters":{"user":"u"},"minValidFor":"soon"}`, wantStatus: 400, wantReason: ReasonBadRequest},
		{name: "a missing parameter is 400 InvalidParameters", body: `{}`, wantStatus: 400, wantReason: ReasonInvalidParameters},
		{name: "an undeclared parameter is 400 InvalidParameters", body: `{"parameters":{"user":"u","role":"admin"}}`, wantStatus: 400, wantReason: ReasonInvalidParameters},
		{name: "a request the provider's rules deny is 403 RequestDenied with no vendor call", body: user("u"),
			minter: func(m *fakeMinter) {
				m.prepareErr = provider.Permanent(v1alpha1.ReasonRequestDenied, "users of tenant b only")
			},
			wantStatus: 403, wantReason: v1alpha1.ReasonRequestDenied},
		{name: "a vendor that is down is 503 with its Retry-After", body: user("u"),
			minter: func(m *fakeMinter) {
				m.mintErr = &provider.Error{Reason: v1alpha1.ReasonVendorUnavailable, Message: "vendor answered 503", RetryAfter: 1500 * time.Millisecond}
			},
			wantStatus: 503, wantReason: v1alpha1.ReasonVendorUnavailable, wantRetry: "2"},
		{name: "a vendor refusing the credentials is 502 VendorUnauthorized", body: user("u"),
			minter: func(m *fakeMinter) {
				m.mintErr = provider.Permanent(v1alpha1.ReasonVendorUnauthorized, "vendor answered 401")
			},
			wantStatus: 502, wantReason: v1alpha1.ReasonVendorUnauthorized},
		{name: "a provider that does not resolve is 503 ProviderNotFound", body: user("u"),
			minter: func(m *fakeMinter) {
				m.prepareErr = provider.Permanent(v1alpha1.ReasonProviderNotFound, "no provider vendor")
			},
			wantStatus: 503, wantReason: v1alpha1.ReasonProviderNotFound},
		{name: "the issuer's throttle is 429 RateLimited with Retry-After", body: user("u"),
			minter:     func(m *fakeMinter) { m.mintErr = fmt.Errorf("gate: %w", &Throttled{RetryAfter: 3 * time.Second}) },
			wantStatus: 429, wantReason: ReasonRateLimited, wantRetry: "3"},
		{name: "a vendor call outlasting the timeout is 504", body: user("u"), timeout: 10 * time.Millisecond,
			minter:     func(m *fakeMinter) { m.block = true },
			wantStatus: 504, wantReason: ReasonTimeout},
		{name: "a call with a token is 200", body: user("u"), wantStatus: 200, wantMints: 1},
		{name: "a call with an empty body to a template without parameters is 200",
			template: template(func(t *v1alpha1.EmbedTokenTemplate) { t.Spec.Parameters = nil }), wantStatus: 200, wantMints: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := tc.template
			if tmpl == nil {
				tmpl = template()
			}
			f := newFixture(t, Options{Timeout: tc.timeout}, tmpl)
			if tc.minter != nil {
				tc.minter(f.minter)
			}
			method, path, bearer := tc.method, tc.path, tc.bearer
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = route
			}
			switch bearer {
			case "":
				bearer = aliceToken
			case "-":
				bearer = ""
			}
			r := f.callCtx(context.Background(), method, path, bearer, tc.body)
			if r.status != tc.wantStatus || (tc.wantReason != "" && r.err.Reason != tc.wantReason) {
				t.Fatalf("got %d %s, want %d %s (%s)", r.status, r.err.Reason, tc.wantStatus, tc.wantReason, r.raw)
			}
			if r.retryAfter != tc.wantRetry {
				t.Errorf("Retry-After %q, want %q", r.retryAfter, tc.wantRetry)
			}
			if r.status != http.StatusOK && r.err.Message == "" {
				t.Errorf("no message in %s", r.raw)
			}
			if got := f.minter.mints.Load(); got != tc.wantMints {
				t.Errorf("%d vendor calls, want %d", got, tc.wantMints)
			}
			if strings.Contains(r.raw, aliceToken) || strings.Contains(f.logs.String(), aliceToken) {
				t.Errorf("the bearer token leaked: %s %s", r.raw, f.logs.String())
			}
			code := fmt.Sprint(tc.wantStatus)
			reason := tc.wantReason
			if tc.wantStatus == http.StatusOK {
				reason = reasonOK
			}
			var series float64
			for _, ns := range []string{"", "default"} {
				for _, name := range []string{"", "dash"} {
					series += testutil.ToFloat64(f.ep.metrics.requests.WithLabelValues(ns, name, code, reason))
				}
			}
			if series != 1 {
				t.Errorf("requests_total{code=%s,reason=%s} = %v, want 1", code, reason, series)
			}
		})
	}
}

func TestStatusForReason(t *testing.T) {
	cases := []struct {
		name   string
		reason string
		want   int
	}{
		{"a request the provider's rules deny is forbidden", v1alpha1.ReasonRequestDenied, 403},
		{"a request the vendor cannot be sent is bad", v1alpha1.ReasonInvalidRequest, 400},
		{"a refused parameter is bad", ReasonInvalidParameters, 400},
		{"a vendor's per-user limit is the vendor refusing", v1alpha1.ReasonTokenLimitReached, 502},
		{"the issuer's gates ask to wait", ReasonRateLimited, 429},
		{"an unavailable vendor is unavailable", v1alpha1.ReasonVendorUnavailable, 503},
		{"a vendor throttling the operator is unavailable, not the caller's 429", v1alpha1.ReasonVendorQuotaExceeded, 503},
		{"a missing provider leaves the template unavailable", v1alpha1.ReasonProviderNotFound, 503},
		{"missing credentials leave the template unavailable", v1alpha1.ReasonCredentialsNotFound, 503},
		{"a refused vendor address leaves the template unavailable", v1alpha1.ReasonVendorAddressNotAllowed, 503},
		{"a vendor refusing the credentials is a bad gateway", v1alpha1.ReasonVendorUnauthorized, 502},
		{"a vendor rejecting the request is a bad gateway", v1alpha1.ReasonVendorRejected, 502},
		{"a vendor answering nonsense is a bad gateway", v1alpha1.ReasonInvalidResponse, 502},
		{"a token living longer than allowed is a bad gateway", v1alpha1.ReasonLifetimeExceedsMax, 502},
		{"an unknown reason is the vendor's", "SomethingNew", 502},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := StatusForReason(tc.reason); got != tc.want {
				t.Errorf("StatusForReason(%q) = %d, want %d", tc.reason, got, tc.want)
			}
		})
	}
}

func TestPathPrefixIsTheAPIGroupVersion(t *testing.T) {
	if want := "/apis/" + v1alpha1.GroupVersion.String() + "/namespaces/"; PathPrefix != want {
		t.Errorf("PathPrefix %q, want %q", PathPrefix, want)
	}
}
