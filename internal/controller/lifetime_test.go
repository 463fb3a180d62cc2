package controller

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/issuance"
	"github.com/embedtokens/embed-token-operator/internal/refresh"
)

func lifetimeRequest(lifetime time.Duration) *v1alpha1.EmbedTokenRequest {
	return &v1alpha1.EmbedTokenRequest{Spec: v1alpha1.EmbedTokenRequestSpec{
		ProviderRef:  v1alpha1.ProviderRef{Name: "shared", Kind: "ClusterEmbedProvider"},
		VendorParams: v1alpha1.VendorParams{Qrvey: &v1alpha1.QrveyParams{UserID: "u", AppID: "a"}},
		Lifetime:     &metav1.Duration{Duration: lifetime},
	}}
}

func providerWithCap(limit *metav1.Duration) *issuance.Provider {
	return &issuance.Provider{Name: "shared", Spec: &v1alpha1.EmbedProviderSpec{MaxLifetime: limit}}
}

// derived is the scope of a reconcile of etr, whose Secret stores stored,
// once resolveProvider found prov.
func derived(prov *issuance.Provider, etr *v1alpha1.EmbedTokenRequest, stored refresh.StoredToken) *scope {
	s := newScope(etr, t0)
	s.secret.Stored = stored
	s.useProvider(prov, refresh.Settings{})
	return s
}

func TestLifetimeNoteAndHash(t *testing.T) {
	day := &metav1.Duration{Duration: 24 * time.Hour}
	tests := []struct {
		name      string
		requested time.Duration
		prov      *issuance.Provider
		note      string // "" for none
		// sameHashAs, when set, is a lifetime whose uncapped hash must equal
		// this one's: the cap did not change what is asked of the vendor.
		sameHashAs time.Duration
	}{
		{name: "within the default cap: no note, the hash of the requested lifetime",
			requested: time.Hour, prov: providerWithCap(nil), sameHashAs: time.Hour},
		{name: "above the default cap of a provider built in code",
			requested: 87600 * time.Hour, prov: providerWithCap(nil), sameHashAs: 24 * time.Hour,
			note: "asked the vendor for 24h: provider shared's maxLifetime caps the 87600h the request asks for"},
		{name: "above an explicit cap",
			requested: 10 * time.Hour, prov: providerWithCap(&metav1.Duration{Duration: time.Hour}), sameHashAs: time.Hour,
			note: "asked the vendor for 1h: provider shared's maxLifetime caps the 10h the request asks for"},
		{name: "minutes and seconds are written plainly",
			requested: 90 * time.Minute, prov: providerWithCap(&metav1.Duration{Duration: 90 * time.Second}), sameHashAs: 90 * time.Second,
			note: "asked the vendor for 1m30s: provider shared's maxLifetime caps the 1h30m the request asks for"},
		{name: "at the cap: no note", requested: 24 * time.Hour, prov: providerWithCap(day), sameHashAs: 24 * time.Hour},
		{name: "without a provider the requested lifetime is hashed", requested: 87600 * time.Hour, sameHashAs: 87600 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			etr := lifetimeRequest(tt.requested)
			s := derived(tt.prov, etr, refresh.StoredToken{})
			if got := s.lifetimeNote; got != tt.note {
				t.Errorf("lifetimeNote = %q, want %q", got, tt.note)
			}
			if got, want := s.inputHash, refresh.InputHash(etr, tt.sameHashAs); got != want {
				t.Errorf("input hash %s, want the hash for %s (%s)", got, tt.sameHashAs, want)
			}
		})
	}
}

func TestInputHashFollowsTheGrantedLifetime(t *testing.T) {
	etr := lifetimeRequest(10 * time.Hour)
	at := func(limit time.Duration) string {
		p := providerWithCap(&metav1.Duration{Duration: limit})
		return derived(p, etr, refresh.StoredToken{}).inputHash
	}
	if at(24*time.Hour) != at(48*time.Hour) {
		t.Error("raising a cap the request is under changed the hash: its token would be re-minted for nothing")
	}
	if at(24*time.Hour) == at(time.Hour) {
		t.Error("lowering the cap below the request's lifetime kept the hash: the long-lived token would be kept")
	}
	if at(time.Hour) == at(2*time.Hour) {
		t.Error("changing a cap that applies kept the hash")
	}
}

func TestReadyMessageSaysWhatTheLifetimeCapAskedFor(t *testing.T) {
	etr := lifetimeRequest(87600 * time.Hour)
	now := t0
	o := derived(providerWithCap(nil), etr, refresh.StoredToken{})
	o.secret.Stored = refresh.StoredToken{Present: true, IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	o.decision = refresh.Decision{At: now.Add(16 * time.Hour)}
	setStatus(etr, o)
	msg := readyMessage(etr)
	if !strings.HasPrefix(msg, "The token is valid until ") ||
		!strings.HasSuffix(msg, " (asked the vendor for 24h: provider shared's maxLifetime caps the 87600h the request asks for)") {
		t.Errorf("Ready message %q does not end with the cap", msg)
	}

	o.lifetimeNote = ""
	setStatus(etr, o)
	if msg := readyMessage(etr); strings.Contains(msg, "maxLifetime") {
		t.Errorf("Ready message %q mentions a cap that does not apply", msg)
	}
}

func TestLifetimeNoteSaysAStoredTokenRenewsAtTheCap(t *testing.T) {
	issued := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	prov := providerWithCap(&metav1.Duration{Duration: 10 * time.Minute})
	tests := []struct {
		name   string
		req    time.Duration
		stored refresh.StoredToken
		note   string
	}{
		{name: "a token the vendor issued for longer, recorded at the cap",
			req:    10 * time.Minute,
			stored: refresh.StoredToken{Present: true, IssuedAt: issued, ExpiresAt: issued.Add(10 * time.Minute), VendorExpiresAt: issued.Add(time.Hour)},
			note:   "the vendor issued a token valid for 1h, longer than provider shared's maxLifetime of 10m; it is renewed as if it expired after 10m"},
		{name: "both notes when the request also asks for more than the cap",
			req:    time.Hour,
			stored: refresh.StoredToken{Present: true, IssuedAt: issued, ExpiresAt: issued.Add(10 * time.Minute), VendorExpiresAt: issued.Add(time.Hour)},
			note: "asked the vendor for 10m: provider shared's maxLifetime caps the 1h the request asks for; " +
				"the vendor issued a token valid for 1h, longer than provider shared's maxLifetime of 10m; it is renewed as if it expired after 10m"},
		{name: "a token that honoured the cap gets no note about the vendor",
			req:    10 * time.Minute,
			stored: refresh.StoredToken{Present: true, IssuedAt: issued, ExpiresAt: issued.Add(10 * time.Minute)}},
		{name: "no stored token, no note about the vendor", req: 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := derived(prov, lifetimeRequest(tt.req), tt.stored).lifetimeNote; got != tt.note {
				t.Errorf("lifetimeNote = %q, want %q", got, tt.note)
			}
		})
	}
}
