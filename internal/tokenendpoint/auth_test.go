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
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// reviewAPI stands in for the API server's review endpoints in these unit
// tests only (the envtest suite uses the real ones): it authenticates the
// tokens in users and allows what allowed says, counting the reviews.
type reviewAPI struct {
	users   map[string]authenticationv1.UserInfo
	allowed bool
	fail    bool
	reviews atomic.Int64
}

func (a *reviewAPI) client() client.Client {
	return fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		Create: func(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.CreateOption) error {
			a.reviews.Add(1)
			if a.fail {
				return errors.New("connection refused")
			}
			switch o := obj.(type) {
			case *authenticationv1.TokenReview:
				u, ok := a.users[o.Spec.Token]
				o.Status = authenticationv1.TokenReviewStatus{Authenticated: ok, User: u, Audiences: o.Spec.Audiences}
			case *authorizationv1.SubjectAccessReview:
				ra := o.Spec.ResourceAttributes
				ok := a.allowed && ra.Group == "embedtokens.io" && ra.Resource == "embedtokentemplates" &&
					ra.Subresource == "token" && ra.Verb == "create"
				o.Status = authorizationv1.SubjectAccessReviewStatus{Allowed: ok}
			}
			return nil
		},
	}).Build()
}

// signed is an unverified JWT with exp, as the review's cache reads it.
func signed(t *testing.T, exp time.Time) string {
	t.Helper()
	claims := jwt.RegisteredClaims{}
	if !exp.IsZero() {
		claims.ExpiresAt = jwt.NewNumericDate(exp)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("test key"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenReviewer(t *testing.T) {
	sa := authenticationv1.UserInfo{
		Username: "system:serviceaccount:team-a:web", UID: "u-1", Groups: []string{"system:serviceaccounts"},
		Extra: map[string]authenticationv1.ExtraValue{podNameExtra: {"web-7"}},
	}
	cases := []struct {
		name string
		// exp is the bearer token's expiry from now; noExp leaves it out.
		exp       time.Duration
		noExp     bool
		unknown   bool
		fail      bool
		advance   time.Duration
		wantErr   int
		wantCalls int
	}{
		{name: "a token is reviewed once within five minutes", advance: 4 * time.Minute, exp: time.Hour, wantCalls: 1},
		{name: "a token is reviewed again after five minutes", advance: 5*time.Minute + time.Millisecond, exp: time.Hour, wantCalls: 2},
		{name: "a token is reviewed again once past its exp", advance: 2 * time.Minute, exp: time.Minute, wantCalls: 2},
		{name: "a token without exp is reviewed once within five minutes", advance: 4 * time.Minute, noExp: true, wantCalls: 1},
		{name: "a token the API server refuses is 401 each time", unknown: true, wantErr: 401, wantCalls: 2},
		{name: "an API server that cannot be reached is 503 each time", fail: true, wantErr: 503, wantCalls: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(epoch)
			var exp time.Time
			if !tc.noExp {
				exp = epoch.Add(tc.exp)
			}
			bearer := signed(t, exp)
			api := &reviewAPI{users: map[string]authenticationv1.UserInfo{}, fail: tc.fail}
			if !tc.unknown {
				api.users[bearer] = sa
			}
			r := NewTokenReviewer(api.client(), clk, 0)
			for i := range 2 {
				c, err := r.Authenticate(context.Background(), bearer)
				var e *Error
				if tc.wantErr != 0 {
					if !errors.As(err, &e) || e.Status != tc.wantErr {
						t.Fatalf("call %d: error %v, want status %d", i, err, tc.wantErr)
					}
				} else if err != nil {
					t.Fatalf("call %d: %v", i, err)
				} else if c.Namespace != "team-a" || c.ServiceAccount != "web" || c.PodName != "web-7" || c.UID != "u-1" ||
					c.Username != sa.Username || len(c.Groups) != 1 || len(c.Extra[podNameExtra]) != 1 {
					t.Fatalf("call %d: caller %+v", i, c)
				}
				clk.Step(tc.advance)
			}
			if api.reviews.Load() != int64(tc.wantCalls) {
				t.Errorf("%d TokenReviews, want %d", api.reviews.Load(), tc.wantCalls)
			}
		})
	}
}

func TestTokenReviewerRefusesWithoutAsking(t *testing.T) {
	cases := []struct {
		name   string
		bearer string
	}{
		{name: "no token is 401", bearer: ""},
		{name: "a token longer than any projected token is 401", bearer: string(make([]byte, MaxBearerTokenBytes+1))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api := &reviewAPI{}
			_, err := NewTokenReviewer(api.client(), clocktesting.NewFakeClock(epoch), 0).Authenticate(context.Background(), tc.bearer)
			var e *Error
			if !errors.As(err, &e) || e.Status != http.StatusUnauthorized || api.reviews.Load() != 0 {
				t.Fatalf("error %v after %d reviews, want 401 after none", err, api.reviews.Load())
			}
		})
	}
}

func TestAccessReviewer(t *testing.T) {
	caller := Caller{Username: "system:serviceaccount:team-a:web", Groups: []string{"system:serviceaccounts"}}
	cases := []struct {
		name      string
		allowed   bool
		fail      bool
		advance   time.Duration
		wantErr   int
		wantCalls int
	}{
		{name: "an allowed decision is reused within ten seconds", allowed: true, advance: 9 * time.Second, wantCalls: 1},
		{name: "an allowed decision is asked again after ten seconds", allowed: true, advance: 10*time.Second + time.Millisecond, wantCalls: 2},
		{name: "a denial is 403 and asked again each time", wantErr: 403, wantCalls: 2},
		{name: "an API server that cannot be reached is 503 each time", fail: true, wantErr: 503, wantCalls: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(epoch)
			api := &reviewAPI{allowed: tc.allowed, fail: tc.fail}
			a := NewAccessReviewer(api.client(), clk, 0)
			for i := range 2 {
				err := a.Authorize(context.Background(), caller, "team-a", "dash")
				var e *Error
				if tc.wantErr == 0 && err != nil || tc.wantErr != 0 && (!errors.As(err, &e) || e.Status != tc.wantErr) {
					t.Fatalf("call %d: %v, want status %d", i, err, tc.wantErr)
				}
				clk.Step(tc.advance)
			}
			if api.reviews.Load() != int64(tc.wantCalls) {
				t.Errorf("%d SubjectAccessReviews, want %d", api.reviews.Load(), tc.wantCalls)
			}
		})
	}
}

func TestAccessKeySeparatesCallers(t *testing.T) {
	base := Caller{Username: "u", Groups: []string{"a", "b"}, Extra: map[string][]string{"k": {"v"}}}
	cases := []struct {
		name   string
		caller Caller
		ns     string
		tmpl   string
	}{
		{name: "another user", caller: Caller{Username: "v", Groups: base.Groups, Extra: base.Extra}, ns: "ns", tmpl: "t"},
		{name: "groups joined differently", caller: Caller{Username: "u", Groups: []string{"ab"}, Extra: base.Extra}, ns: "ns", tmpl: "t"},
		{name: "other extra", caller: Caller{Username: "u", Groups: base.Groups, Extra: map[string][]string{"k": {"w"}}}, ns: "ns", tmpl: "t"},
		{name: "another namespace", caller: base, ns: "ns2", tmpl: "t"},
		{name: "another template", caller: base, ns: "ns", tmpl: "t2"},
	}
	for _, tc := range cases {
		t.Run(tc.name+" is another key", func(t *testing.T) {
			if accessKey(tc.caller, tc.ns, tc.tmpl) == accessKey(base, "ns", "t") {
				t.Error("same key")
			}
		})
	}
}

func TestConcurrentCallsShareReviews(t *testing.T) {
	sa := authenticationv1.UserInfo{Username: "system:serviceaccount:team-a:web"}
	bearer := signed(t, epoch.Add(time.Hour))
	api := &reviewAPI{users: map[string]authenticationv1.UserInfo{bearer: sa}, allowed: true}
	clk := clocktesting.NewFakeClock(epoch)
	authn, authz := NewTokenReviewer(api.client(), clk, 0), NewAccessReviewer(api.client(), clk, 0)
	start := make(chan struct{})
	var wg sync.WaitGroup
	var failures atomic.Int64
	for range 500 {
		wg.Go(func() {
			<-start
			c, err := authn.Authenticate(context.Background(), bearer)
			if err == nil {
				err = authz.Authorize(context.Background(), c, "team-a", "dash")
			}
			if err != nil {
				failures.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if failures.Load() != 0 || api.reviews.Load() != 2 {
		t.Errorf("%d failures and %d reviews, want none and one TokenReview and one SubjectAccessReview", failures.Load(), api.reviews.Load())
	}
}
