package vendorsim_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

const thoughtSpotKey = "ts-key"

func TestThoughtSpotToken(t *testing.T) {
	tests := []struct {
		name, body string
		wantStatus int
		wantTTL    time.Duration
	}{
		{"success", `{"username":"alice","secret_key":"` + thoughtSpotKey + `","validity_time_in_sec":1800,"org_id":7}`, 200, 30 * time.Minute},
		{"default validity", `{"username":"alice","secret_key":"` + thoughtSpotKey + `"}`, 200, vendorsim.DefaultThoughtSpotValidity},
		{"wrong key", `{"username":"alice","secret_key":"nope"}`, 401, 0},
		{"missing username", `{"secret_key":"` + thoughtSpotKey + `"}`, 400, 0},
		{"fractional validity", `{"username":"a","secret_key":"` + thoughtSpotKey + `","validity_time_in_sec":1.5}`, 400, 0},
		{"string validity", `{"username":"a","secret_key":"` + thoughtSpotKey + `","validity_time_in_sec":"60"}`, 400, 0},
		{"zero validity", `{"username":"a","secret_key":"` + thoughtSpotKey + `","validity_time_in_sec":0}`, 400, 0},
		{"string org", `{"username":"a","secret_key":"` + thoughtSpotKey + `","org_id":"7"}`, 400, 0},
		{"not JSON", `username=a`, 400, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startWith(t, vendorsim.Options{ThoughtSpotSecretKey: thoughtSpotKey})
			r := do(t, http.DefaultClient, http.MethodPost, s.URL()+vendorsim.ThoughtSpotTokenPath, "", tc.body)
			if r.status != tc.wantStatus {
				t.Fatalf("got %d %s", r.status, r.raw)
			}
			if tc.wantStatus != 200 {
				if e, _ := r.json["error"].(map[string]any); e["message"] == nil || s.IssuedCount() != 0 {
					t.Errorf("error answer %s", r.raw)
				}
				return
			}
			token, _ := r.json["token"].(string)
			if !strings.HasPrefix(token, vendorsim.ThoughtSpotTokenPrefix) || r.json["valid_for_username"] == nil ||
				r.json["creation_time_in_millis"] != float64(epoch.UnixMilli()) ||
				r.json["expiration_time_in_millis"] != float64(epoch.Add(tc.wantTTL).UnixMilli()) {
				t.Fatalf("answer %s", r.raw)
			}
			if s.Validate(token) != vendorsim.ValidityValid {
				t.Errorf("token not valid")
			}
			if calls := do(t, http.DefaultClient, http.MethodGet, s.URL()+"/_sim/calls", "", ""); strings.Contains(calls.raw, thoughtSpotKey) {
				t.Errorf("admin API reveals the secret key: %s", calls.raw)
			}
		})
	}
}
