package controller

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

func TestGrantedLifetime(t *testing.T) {
	tests := []struct {
		name             string
		requested, limit time.Duration
		want             time.Duration
	}{
		{"a request within the cap gets what it asks", time.Hour, 24 * time.Hour, time.Hour},
		{"a request at the cap gets it", 24 * time.Hour, 24 * time.Hour, 24 * time.Hour},
		{"a request above the cap gets the cap", 87600 * time.Hour, 24 * time.Hour, 24 * time.Hour},
		{"a short cap applies to a default request", time.Hour, 10 * time.Minute, 10 * time.Minute},
		{"no cap leaves the request alone", 87600 * time.Hour, 0, 87600 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := GrantedLifetime(tt.requested, tt.limit); got != tt.want {
				t.Errorf("GrantedLifetime(%s, %s) = %s, want %s", tt.requested, tt.limit, got, tt.want)
			}
		})
	}
}

func lifetimeRequest(lifetime time.Duration) *v1alpha1.EmbedTokenRequest {
	return &v1alpha1.EmbedTokenRequest{Spec: v1alpha1.EmbedTokenRequestSpec{
		ProviderRef:  v1alpha1.ProviderRef{Name: "shared", Kind: "ClusterEmbedProvider"},
		VendorParams: v1alpha1.VendorParams{Qrvey: &v1alpha1.QrveyParams{UserID: "u", AppID: "a"}},
		Lifetime:     &metav1.Duration{Duration: lifetime},
	}}
}

func providerWithCap(limit *metav1.Duration) *resolvedProvider {
	return &resolvedProvider{name: "shared", spec: &v1alpha1.EmbedProviderSpec{MaxLifetime: limit}}
}

func TestLifetimeNoteAndHash(t *testing.T) {
	day := &metav1.Duration{Duration: 24 * time.Hour}
	tests := []struct {
		name      string
		requested time.Duration
		prov      *resolvedProvider
		note      string // "" for none
		// sameHashAs, when set, is a lifetime whose uncapped hash must equal
		// this one's: the cap did not change what is asked of the vendor.
		sameHashAs time.Duration
	}{
		{name: "within the default cap: no note, the hash of the requested lifetime",
			requested: time.Hour, prov: providerWithCap(nil), sameHashAs: time.Hour},
		{name: "above the default cap of a provider built in code",
			requested: 87600 * time.Hour, prov: providerWithCap(nil), sameHashAs: 24 * time.Hour,
			note: "lifetime capped to 24h by provider shared's maxLifetime; the request asks for 87600h"},
		{name: "above an explicit cap",
			requested: 10 * time.Hour, prov: providerWithCap(&metav1.Duration{Duration: time.Hour}), sameHashAs: time.Hour,
			note: "lifetime capped to 1h by provider shared's maxLifetime; the request asks for 10h"},
		{name: "minutes and seconds are written plainly",
			requested: 90 * time.Minute, prov: providerWithCap(&metav1.Duration{Duration: 90 * time.Second}), sameHashAs: 90 * time.Second,
			note: "lifetime capped to 1m30s by provider shared's maxLifetime; the request asks for 1h30m"},
		{name: "at the cap: no note", requested: 24 * time.Hour, prov: providerWithCap(day), sameHashAs: 24 * time.Hour},
		{name: "without a provider the requested lifetime is hashed", requested: 87600 * time.Hour, sameHashAs: 87600 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			etr := lifetimeRequest(tt.requested)
			if got := tt.prov.lifetimeNote(etr); got != tt.note {
				t.Errorf("lifetimeNote = %q, want %q", got, tt.note)
			}
			if got, want := inputHash(etr, tt.prov.lifetime(etr)), inputHash(etr, tt.sameHashAs); got != want {
				t.Errorf("input hash %s, want the hash for %s (%s)", got, tt.sameHashAs, want)
			}
		})
	}
}

func TestInputHashFollowsTheGrantedLifetime(t *testing.T) {
	etr := lifetimeRequest(10 * time.Hour)
	at := func(limit time.Duration) string {
		p := providerWithCap(&metav1.Duration{Duration: limit})
		return inputHash(etr, p.lifetime(etr))
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

func TestReadyMessageSaysTheLifetimeWasCapped(t *testing.T) {
	etr := lifetimeRequest(87600 * time.Hour)
	now := t0
	o := &outcome{now: now, stored: StoredToken{Present: true, IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour)},
		decision:     Decision{At: now.Add(16 * time.Hour)},
		lifetimeNote: providerWithCap(nil).lifetimeNote(etr)}
	setStatus(etr, o)
	msg := readyMessage(etr)
	if !strings.HasPrefix(msg, "The token is valid until ") ||
		!strings.HasSuffix(msg, " (lifetime capped to 24h by provider shared's maxLifetime; the request asks for 87600h)") {
		t.Errorf("Ready message %q does not end with the cap", msg)
	}

	o.lifetimeNote = ""
	setStatus(etr, o)
	if msg := readyMessage(etr); strings.Contains(msg, "capped") {
		t.Errorf("Ready message %q mentions a cap that does not apply", msg)
	}
}
