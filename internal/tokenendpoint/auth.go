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
	"crypto/sha256"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/singleflight"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// Cache bounds of the authenticator and authorizer.
const (
	// MaxReviewCacheTTL bounds how long a successful TokenReview is reused,
	// so a deleted ServiceAccount or pod loses access within it.
	MaxReviewCacheTTL = 5 * time.Minute
	// MaxAccessCacheTTL bounds how long an allowed SubjectAccessReview is
	// reused, so a removed RoleBinding takes effect within it.
	MaxAccessCacheTTL = 10 * time.Second
	// DefaultAuthCacheSize is the entries each of the two caches holds when
	// Options leave it zero.
	DefaultAuthCacheSize = 10000
	// MaxBearerTokenBytes bounds the bearer token a caller sends; projected
	// ServiceAccount tokens are about a kilobyte.
	MaxBearerTokenBytes = 8 << 10
	// reviewTimeout bounds a TokenReview or SubjectAccessReview that
	// concurrent calls share.
	reviewTimeout = 10 * time.Second
)

// podNameExtra is the extra key the API server puts a bound token's pod
// name under.
const podNameExtra = "authentication.kubernetes.io/pod-name"

// Caller is who called, as the API server's TokenReview says.
type Caller struct {
	// Username is the authenticated user, for a ServiceAccount
	// system:serviceaccount:NAMESPACE:NAME.
	Username string
	// UID is the user's UID.
	UID string
	// Groups are the user's groups.
	Groups []string
	// Extra is the review's extra information, passed on to the
	// SubjectAccessReview.
	Extra map[string][]string
	// Namespace and ServiceAccount are parsed from a ServiceAccount's
	// username; empty for other users.
	Namespace      string
	ServiceAccount string
	// PodName is the pod a bound token was issued for, if any.
	PodName string
}

// Authenticator turns a bearer token into a Caller. It returns an *Error:
// 401 for a token that does not authenticate, 503 when it cannot tell.
type Authenticator interface {
	Authenticate(ctx context.Context, bearer string) (Caller, error)
}

// Authorizer decides whether caller may create a token from the template
// namespace/name. It returns an *Error: 403 when denied, 503 when it
// cannot tell.
type Authorizer interface {
	Authorize(ctx context.Context, caller Caller, namespace, name string) error
}

// TokenReviewer is the Authenticator of the running operator: a TokenReview
// for the endpoint's audience, its successes cached by the token's SHA-256
// until the earlier of the token's expiry and MaxReviewCacheTTL. Failures
// are not cached, so a caller fixing its token is served at once.
type TokenReviewer struct {
	client  client.Client
	clock   clock.PassiveClock
	cache   *cache.LRUExpireCache
	flights singleflight.Group
}

// NewTokenReviewer creates a TokenReviewer that creates TokenReviews with c
// and keeps at most size results (DefaultAuthCacheSize when zero).
func NewTokenReviewer(c client.Client, clk clock.PassiveClock, size int) *TokenReviewer {
	if size <= 0 {
		size = DefaultAuthCacheSize
	}
	return &TokenReviewer{client: c, clock: clk, cache: cache.NewLRUExpireCacheWithClock(size, clk)}
}

// Authenticate implements Authenticator.
func (r *TokenReviewer) Authenticate(ctx context.Context, bearer string) (Caller, error) {
	if bearer == "" {
		return Caller{}, unauthorized("an Authorization: Bearer header with a ServiceAccount token of audience " + v1alpha1.TokenEndpointAudience + " is required")
	}
	if len(bearer) > MaxBearerTokenBytes {
		return Caller{}, unauthorized("the bearer token is too long")
	}
	key := sha256.Sum256([]byte(bearer))
	if c, ok := r.cache.Get(key); ok {
		return c.(Caller), nil
	}
	// Concurrent calls with one token (a pod's page loads) share a review.
	c, _, err := share(ctx, &r.flights, string(key[:]), reviewTimeout, func(ctx context.Context) (Caller, error) {
		return r.review(ctx, key, bearer)
	})
	if err != nil {
		return Caller{}, toError(ctx, err)
	}
	return c, nil
}

// review creates the TokenReview and caches a success.
func (r *TokenReviewer) review(ctx context.Context, key [sha256.Size]byte, bearer string) (Caller, error) {
	// A review that ended after the caller's lookup may have cached it.
	if c, ok := r.cache.Get(key); ok {
		return c.(Caller), nil
	}
	review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{
		Token:     bearer,
		Audiences: []string{v1alpha1.TokenEndpointAudience},
	}}
	if err := r.client.Create(ctx, review); err != nil {
		// The error can only describe the request, never echo the token:
		// the API server does not return the spec of a failed create.
		return Caller{}, &Error{Status: http.StatusServiceUnavailable, Reason: ReasonServiceUnavailable,
			Message: "the token could not be reviewed; try again"}
	}
	st := review.Status
	if !st.Authenticated || !slices.Contains(st.Audiences, v1alpha1.TokenEndpointAudience) {
		return Caller{}, unauthorized("the token is not valid for audience " + v1alpha1.TokenEndpointAudience + " (wrong audience, expired, or its holder is gone)")
	}
	c := callerFrom(st.User)
	if ttl := r.cacheTTL(bearer); ttl > 0 {
		r.cache.Add(key, c, ttl)
	}
	return c, nil
}

// cacheTTL is how long a reviewed token's result may be reused: until its
// exp, read without verifying the signature (the review verified the token;
// exp only bounds the cache), and at most MaxReviewCacheTTL.
func (r *TokenReviewer) cacheTTL(bearer string) time.Duration {
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(bearer, &claims); err != nil || claims.ExpiresAt == nil {
		return MaxReviewCacheTTL
	}
	return min(claims.ExpiresAt.Sub(r.clock.Now()), MaxReviewCacheTTL)
}

// callerFrom reads a Caller from a TokenReview's user.
func callerFrom(u authenticationv1.UserInfo) Caller {
	c := Caller{Username: u.Username, UID: u.UID, Groups: u.Groups}
	if len(u.Extra) > 0 {
		c.Extra = make(map[string][]string, len(u.Extra))
		for k, v := range u.Extra {
			c.Extra[k] = v
		}
		if pod := u.Extra[podNameExtra]; len(pod) == 1 {
			c.PodName = pod[0]
		}
	}
	if ns, name, err := serviceaccount.SplitUsername(u.Username); err == nil {
		c.Namespace, c.ServiceAccount = ns, name
	}
	return c
}

func unauthorized(msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Reason: ReasonUnauthorized, Message: msg}
}

// AccessReviewer is the Authorizer of the running operator: a
// SubjectAccessReview for verb create on embedtokentemplates/token, its
// allowed decisions cached for MaxAccessCacheTTL and denials not at all.
type AccessReviewer struct {
	client  client.Client
	cache   *cache.LRUExpireCache
	flights singleflight.Group
}

// NewAccessReviewer creates an AccessReviewer that creates
// SubjectAccessReviews with c and keeps at most size allowed decisions
// (DefaultAuthCacheSize when zero).
func NewAccessReviewer(c client.Client, clk clock.PassiveClock, size int) *AccessReviewer {
	if size <= 0 {
		size = DefaultAuthCacheSize
	}
	return &AccessReviewer{client: c, cache: cache.NewLRUExpireCacheWithClock(size, clk)}
}

// Authorize implements Authorizer.
func (a *AccessReviewer) Authorize(ctx context.Context, caller Caller, namespace, name string) error {
	key := accessKey(caller, namespace, name)
	if _, ok := a.cache.Get(key); ok {
		return nil
	}
	_, _, err := share(ctx, &a.flights, string(key[:]), reviewTimeout, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, a.review(ctx, key, caller, namespace, name)
	})
	if err != nil {
		return toError(ctx, err)
	}
	return nil
}

// review creates the SubjectAccessReview and caches an allowed decision.
func (a *AccessReviewer) review(ctx context.Context, key [sha256.Size]byte, caller Caller, namespace, name string) error {
	if _, ok := a.cache.Get(key); ok {
		return nil
	}
	extra := make(map[string]authorizationv1.ExtraValue, len(caller.Extra))
	for k, v := range caller.Extra {
		extra[k] = v
	}
	resource, subresource, _ := strings.Cut(v1alpha1.TokenSubresource, "/")
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   caller.Username,
		UID:    caller.UID,
		Groups: caller.Groups,
		Extra:  extra,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Group:       v1alpha1.GroupVersion.Group,
			Version:     v1alpha1.GroupVersion.Version,
			Resource:    resource,
			Subresource: subresource,
			Verb:        "create",
			Namespace:   namespace,
			Name:        name,
		},
	}}
	if err := a.client.Create(ctx, sar); err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Reason: ReasonServiceUnavailable,
			Message: "the caller's access could not be reviewed; try again"}
	}
	if !sar.Status.Allowed || sar.Status.Denied {
		return &Error{Status: http.StatusForbidden, Reason: ReasonForbidden, Message: fmt.Sprintf(
			"%s may not create %s for %s/%s in API group %s", caller.Username, v1alpha1.TokenSubresource,
			namespace, name, v1alpha1.GroupVersion.Group)}
	}
	a.cache.Add(key, struct{}{}, MaxAccessCacheTTL)
	return nil
}

// accessKey hashes everything a SubjectAccessReview decides on.
func accessKey(c Caller, namespace, name string) [sha256.Size]byte {
	var h keyHash
	h.strings(c.Username, c.UID, namespace, name)
	h.strings(c.Groups...)
	keys := slices.Sorted(maps.Keys(c.Extra))
	h.strings(keys...)
	for _, k := range keys {
		h.strings(c.Extra[k]...)
	}
	return h.sum()
}
