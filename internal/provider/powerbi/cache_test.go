package powerbi_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider/powerbi"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	"github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// TestOneEntraCallForManyEmbedTokens issues ten embed tokens for one
// provider: one access token serves them all.
func TestOneEntraCallForManyEmbedTokens(t *testing.T) {
	s, _, v := sim(t, simOptions())
	p := powerbi.New()
	req := request(t, v.url, v.url, "secret")
	seen := map[string]bool{}
	for i := range 10 {
		req.Now = providertest.Epoch.Add(time.Duration(i) * time.Minute)
		tok, err := p.Issue(context.Background(), req)
		providertest.CheckError(t, err, success, secret)
		if seen[tok.Value] || s.Validate(tok.Value) != vendorsim.ValidityValid {
			t.Fatalf("embed token %d is a repeat or not valid", i)
		}
		seen[tok.Value] = true
	}
	if n := entraCalls(v.requests()); n != 1 || s.PowerBIEntraCalls() != 1 {
		t.Errorf("%d Entra ID calls for 10 embed tokens, want 1", n)
	}
	if n := len(v.requests()); n != 11 {
		t.Errorf("%d requests, want 1 Entra ID call and 10 GenerateToken calls", n)
	}
}

// TestConcurrentMissesShareOneCall starts ten requests at once while the
// Entra ID call is slow: they wait for one call instead of making ten.
func TestConcurrentMissesShareOneCall(t *testing.T) {
	s, _, v := sim(t, simOptions())
	s.SetFault(vendorsim.Fault{Delay: 300 * time.Millisecond, Count: 1})
	p := powerbi.New()
	req := request(t, v.url, v.url, "secret")
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Go(func() {
			_, err := p.Issue(context.Background(), req)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		providertest.CheckError(t, err, success, secret)
	}
	if n := entraCalls(v.requests()); n != 1 {
		t.Errorf("%d Entra ID calls for 10 concurrent requests, want 1", n)
	}
}

// TestReuseNeedsEnoughLife reuses an access token only while it has the
// requested embed lifetime left (at most half its own life) beyond its
// refresh margin, since Power BI cuts embed tokens to it.
func TestReuseNeedsEnoughLife(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lifetime  time.Duration
		after     time.Duration // since the first token
		wantFresh bool
	}{
		{"10m token, 45m later", 10 * time.Minute, 45 * time.Minute, false},
		{"10m token, 51m later", 10 * time.Minute, 51 * time.Minute, true},
		{"2m token, 53m later", 2 * time.Minute, 53 * time.Minute, false},
		{"2m token, 55m later: within the refresh margin", 2 * time.Minute, 55 * time.Minute, true},
		{"2h token, 29m later", 2 * time.Hour, 29 * time.Minute, false},
		{"2h token, 31m later", 2 * time.Hour, 31 * time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, v := sim(t, simOptions())
			p := powerbi.New()
			req := request(t, v.url, v.url, "secret")
			req.Lifetime = tc.lifetime
			for _, at := range []time.Duration{0, tc.after} {
				req.Now = providertest.Epoch.Add(at)
				_, err := p.Issue(context.Background(), req)
				providertest.CheckError(t, err, success, secret)
			}
			if got := entraCalls(v.requests()) == 2; got != tc.wantFresh {
				t.Errorf("fresh access token %v, want %v", got, tc.wantFresh)
			}
		})
	}
}

// TestRefusedAccessTokenIsReplacedOnce: when Power BI refuses a cached
// access token (expired, or unknown to it), the cache is dropped and the
// call made once more with a fresh token.
func TestRefusedAccessTokenIsReplacedOnce(t *testing.T) {
	t.Run("expired at Power BI: 403 TokenExpired", func(t *testing.T) {
		s, clock, v := sim(t, simOptions())
		p := powerbi.New()
		req := request(t, v.url, v.url, "secret")
		_, err := p.Issue(context.Background(), req)
		providertest.CheckError(t, err, success, secret)
		clock.Step(2 * time.Hour) // Power BI's clock: the cached token has expired there
		tok, err := p.Issue(context.Background(), req)
		providertest.CheckError(t, err, success, secret)
		calls := s.Calls()
		if len(calls) != 5 || !vendorsim.IsPowerBIEntraCall(calls[3]) || calls[2].Status != http.StatusForbidden {
			t.Fatalf("calls = %+v; want Entra, GenerateToken, a refused GenerateToken, Entra, GenerateToken", calls)
		}
		if s.Validate(tok.Value) != vendorsim.ValidityValid {
			t.Error("the retried embed token is not valid")
		}
	})
	t.Run("unknown at Power BI: 401", func(t *testing.T) {
		s, _, v := sim(t, simOptions())
		p := powerbi.New()
		req := request(t, v.url, v.url, "secret")
		_, err := p.Issue(context.Background(), req)
		providertest.CheckError(t, err, success, secret)
		s.Reset() // forgets every token it issued
		_, err = p.Issue(context.Background(), req)
		providertest.CheckError(t, err, success, secret)
		if n := s.PowerBIEntraCalls(); n != 1 || len(s.Calls()) != 3 {
			t.Errorf("after the reset: %d Entra ID calls in %+v; want one, between a refused and a good GenerateToken", n, s.Calls())
		}
	})
	t.Run("refused again: reported, no third try", func(t *testing.T) {
		_, _, entra := sim(t, simOptions())
		api := scripted(t, func(n int, _ *http.Request) (int, http.Header, string) {
			if n == 1 {
				return 200, nil, embedAnswer("H4sIfirst", time.Hour)
			}
			return 403, nil, `{"error":{"code":"TokenExpired","message":"Access token has expired, resubmit with a new access token"}}`
		})
		p := powerbi.New()
		req := request(t, entra.url, api.url, "secret")
		_, err := p.Issue(context.Background(), req)
		providertest.CheckError(t, err, success, secret)
		_, err = p.Issue(context.Background(), req)
		providertest.CheckError(t, err, providertest.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true, Message: "TokenExpired"}, secret)
		if e, g := entraCalls(entra.requests()), len(api.requests()); e != 2 || g != 3 {
			t.Errorf("%d Entra ID and %d GenerateToken calls, want 2 and 3", e, g)
		}
		_, _ = p.Issue(context.Background(), req)
		if e := entraCalls(entra.requests()); e != 3 {
			t.Errorf("a refused fresh token stayed cached: %d Entra ID calls, want 3", e)
		}
	})
	t.Run("other 403: not retried, cache kept", func(t *testing.T) {
		_, _, entra := sim(t, simOptions())
		api := scripted(t, func(n int, _ *http.Request) (int, http.Header, string) {
			if n == 2 {
				return 403, nil, `{"error":{"code":"PowerBINotAuthorizedException","message":""}}`
			}
			return 200, nil, embedAnswer("H4sItoken", time.Hour)
		})
		p := powerbi.New()
		req := request(t, entra.url, api.url, "secret")
		for i, want := range []providertest.Want{success, {Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true}, success} {
			_, err := p.Issue(context.Background(), req)
			providertest.CheckError(t, err, want, secret)
			if e := entraCalls(entra.requests()); e != 1 {
				t.Fatalf("call %d: %d Entra ID calls, want 1", i, e)
			}
		}
	})
}

// TestRotationDropsTheCache rotates the client secret: the next call gets a
// new access token with the new secret, which replaces the old one, and a
// call with the old secret finds nothing cached.
func TestRotationDropsTheCache(t *testing.T) {
	old, _, v := sim(t, simOptions())
	rotated := simOptions()
	rotated.PowerBIClientSecret = "rotated-s3cret"
	rotated.Clock = clocktesting.NewFakeClock(providertest.Epoch)
	next := vendorsim.New(rotated)
	p := powerbi.New()
	req := request(t, v.url, v.url, "secret")
	req.Credentials = providertest.Creds{"pbi/secret": secret}
	_, err := p.Issue(context.Background(), req)
	providertest.CheckError(t, err, success, secret)

	v.swap(next.Handler()) // Entra ID now knows only the rotated secret
	req.Credentials = providertest.Creds{"pbi/secret": "rotated-s3cret"}
	tok, err := p.Issue(context.Background(), req)
	providertest.CheckError(t, err, success, secret, "rotated-s3cret")
	if next.PowerBIEntraCalls() != 1 || next.Validate(tok.Value) != vendorsim.ValidityValid || old.PowerBIEntraCalls() != 1 {
		t.Fatalf("the rotated secret did not get its own access token: %+v", next.Calls())
	}
	if n := powerbi.CachedTokens(p); n != 1 {
		t.Errorf("%d access tokens cached, want 1: the old secret's must be gone", n)
	}
	req.Credentials = providertest.Creds{"pbi/secret": secret}
	_, err = p.Issue(context.Background(), req)
	providertest.CheckError(t, err, providertest.Want{Reason: v1alpha1.ReasonVendorUnauthorized, Permanent: true}, secret)
}

// TestProvidersDoNotShareTokens: two providers (two HTTP clients) with the
// same configuration each get their own access token.
func TestProvidersDoNotShareTokens(t *testing.T) {
	_, _, v := sim(t, simOptions())
	p := powerbi.New()
	for range 2 {
		_, err := p.Issue(context.Background(), request(t, v.url, v.url, "secret"))
		providertest.CheckError(t, err, success, secret)
	}
	if n := entraCalls(v.requests()); n != 2 {
		t.Errorf("%d Entra ID calls for two providers, want 2", n)
	}
}
