package httpprovider_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
	"github.com/embedtokens/embed-token-operator/internal/provider/httpprovider"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

const (
	domoSample = "embedtokens_v1alpha1_embedprovider_http_domo.yaml"
	domoSecret = "d0mo-s3cret"
)

// domoRequest loads the Domo sample and points both of its calls at baseURL.
func domoRequest(t *testing.T, baseURL string) (provider.Request, string) {
	spec, reqSpec := pt.Sample(t, domoSample)
	cc := spec.HTTP.Auth.ClientCredentials
	spec.HTTP.URL = pt.Rebase(t, spec.HTTP.URL, baseURL)
	cc.TokenURL = pt.Rebase(t, cc.TokenURL, baseURL)
	req := pt.Request(t, pt.Creds{"domo-credentials/clientSecret": domoSecret + "\n"}, 0)
	req.Config, req.Params, req.Lifetime = &spec, &reqSpec.VendorParams, reqSpec.Lifetime.Duration
	return req, cc.ClientID
}

// TestDomoSample runs the documented Domo sample against the simulator: ten
// embed tokens, issued at once, cost one access token, and both calls
// carry Domo's wire format.
func TestDomoSample(t *testing.T) {
	_, clientID := domoRequest(t, "http://127.0.0.1")
	sim := pt.StartSim(t, vendorsim.Options{DomoClientID: clientID, DomoClientSecret: domoSecret})
	p := httpprovider.New()
	tokens := make([]provider.Token, 10)
	errs := make([]error, 10)
	var wg sync.WaitGroup
	for i := range tokens {
		req, _ := domoRequest(t, sim.URL())
		req.Params.HTTP.Variables["embedID"] = fmt.Sprintf("E%04d", i)
		wg.Go(func() { tokens[i], errs[i] = p.Issue(context.Background(), req) })
	}
	wg.Wait()
	var access string
	var embeds []vendorsim.Call
	for _, c := range sim.Calls() {
		switch c.Path {
		case vendorsim.DomoTokenPath:
			access = c.Token
			if want := map[string]any{"grant_type": "client_credentials", "scope": "data audit user dashboard"}; !reflect.DeepEqual(c.Body, want) {
				t.Errorf("token query = %v, want %v", c.Body, want)
			}
		case vendorsim.DomoEmbedAuthPath:
			embeds = append(embeds, c)
		}
	}
	for i, tok := range tokens {
		pt.CheckError(t, errs[i], pt.Want{}, domoSecret, access)
		if sim.Validate(tok.Value) != vendorsim.ValidityValid {
			t.Errorf("token %d (%v) is not valid in the simulator", i, tok)
		}
		pt.CheckWindow(t, tok, time.Hour)
	}
	if n := len(sim.Calls()) - len(embeds); n != 1 || len(embeds) != 10 {
		t.Fatalf("%d access token calls and %d embed calls, want 1 and 10", n, len(embeds))
	}
	var ids []string
	for _, c := range embeds {
		auths, _ := c.Body["authorizations"].([]any)
		a, _ := auths[0].(map[string]any)
		id, _ := a["token"].(string)
		ids = append(ids, id)
		want := map[string]any{"sessionLength": 60.0, "authorizations": []any{map[string]any{
			"token": id, "permissions": []any{"READ", "FILTER", "EXPORT"},
			"filters": []any{map[string]any{"column": "Region", "operator": "IN", "values": []any{"EU"}}},
		}}}
		if !reflect.DeepEqual(c.Body, want) {
			t.Errorf("embed body = %v, want %v", c.Body, want)
		}
	}
	var wantIDs []string
	for i := range 10 {
		wantIDs = append(wantIDs, fmt.Sprintf("E%04d", i))
	}
	if slices.Sort(ids); !slices.Equal(ids, wantIDs) {
		t.Errorf("embed IDs sent = %v, want %v", ids, wantIDs)
	}
}

// TestDomoSampleExpiredAccessToken checks the sample past its access
// token's reuse: a new one is fetched a minute before the old expires, and
// a token the vendor no longer accepts is replaced after one refusal.
func TestDomoSampleExpiredAccessToken(t *testing.T) {
	_, clientID := domoRequest(t, "http://127.0.0.1")
	sim := pt.StartSim(t, vendorsim.Options{DomoClientID: clientID, DomoClientSecret: domoSecret})
	p := httpprovider.New()
	issue := func(after time.Duration) {
		t.Helper()
		req, _ := domoRequest(t, sim.URL())
		req.Now = pt.Epoch.Add(after)
		_, err := p.Issue(context.Background(), req)
		pt.CheckError(t, err, pt.Want{}, domoSecret)
	}
	count := func() (auth, embed int) {
		for _, c := range sim.Calls() {
			if c.Path == vendorsim.DomoTokenPath {
				auth++
			} else {
				embed++
			}
		}
		return auth, embed
	}
	issue(0)
	issue(vendorsim.DomoAccessTokenLifetime - time.Minute - time.Second)
	if auth, embed := count(); auth != 1 || embed != 2 {
		t.Fatalf("within the reuse window: %d access and %d embed calls", auth, embed)
	}
	issue(vendorsim.DomoAccessTokenLifetime - time.Minute)
	if auth, embed := count(); auth != 2 || embed != 3 {
		t.Fatalf("at the margin: %d access and %d embed calls", auth, embed)
	}
	sim.Reset() // forgets the access token: Domo now refuses it with 401
	issue(vendorsim.DomoAccessTokenLifetime)
	if auth, embed := count(); auth != 1 || embed != 2 {
		t.Errorf("after the vendor forgot the token: %d access and %d embed calls, want 1 and 2", auth, embed)
	}
}

// TestDomoSampleReadsTheGrant has Domo grant a 30-minute session where the
// sample asks for 60: the embed token's exp says so, and the operator
// stores 30 minutes, not the 60 asked for.
func TestDomoSampleReadsTheGrant(t *testing.T) {
	_, clientID := domoRequest(t, "http://127.0.0.1")
	sim := pt.StartSim(t, vendorsim.Options{DomoClientID: clientID, DomoClientSecret: domoSecret, DomoMaxSession: 30 * time.Minute})
	req, _ := domoRequest(t, sim.URL())
	tok, err := httpprovider.New().Issue(context.Background(), req)
	pt.CheckError(t, err, pt.Want{}, domoSecret)
	exp, ok := provider.JWTExpiry(tok.Value)
	if !ok || !tok.ExpiresAt.Equal(exp) {
		t.Errorf("stored expiry %s, the token's exp %s (%v)", tok.ExpiresAt, exp, ok)
	}
	if got := tok.ExpiresAt.Sub(tok.IssuedAt); got < 30*time.Minute-time.Second || got > 30*time.Minute {
		t.Errorf("stored lifetime %s, want the 30m Domo granted", got)
	}
}

// TestDomoSampleEmptyGrant has Domo answer a token whose emb claim is
// empty, as it does when the API client may not see the embed: the sample
// refuses it, as Domo's own sample does, instead of storing a token that
// opens nothing.
func TestDomoSampleEmptyGrant(t *testing.T) {
	req, clientID := domoRequest(t, "http://127.0.0.1")
	embedID := req.Params.HTTP.Variables["embedID"]
	sim := pt.StartSim(t, vendorsim.Options{DomoClientID: clientID, DomoClientSecret: domoSecret, DomoDeniedEmbedIDs: []string{embedID}})
	req, _ = domoRequest(t, sim.URL())
	_, err := httpprovider.New().Issue(context.Background(), req)
	pt.CheckError(t, err, pt.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true,
		Message: "the token at tokenPath .authentication has no emb claim or an empty one"}, domoSecret)
}
