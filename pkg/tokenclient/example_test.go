package tokenclient_test

import (
	"encoding/json"
	"net/http"

	"github.com/embedtokens/embed-token-operator/pkg/tokenclient"
)

// userOf stands for the application's own session lookup.
func userOf(r *http.Request) string { return r.Header.Get("X-Forwarded-User") }

// A backend route that hands the browser a per-user token: the vendor
// credential stays with the operator, the ServiceAccount token and the CA
// are read from the default mounts.
func Example() {
	c, err := tokenclient.New(tokenclient.Options{
		Endpoint: "https://embed-token-operator-token-endpoint.embed-token-operator-system.svc:8443",
	})
	if err != nil {
		return // outside a pod with the mounts
	}
	http.HandleFunc("/embed-token", func(w http.ResponseWriter, r *http.Request) {
		t, err := c.Token(r.Context(), "shop", "per-user-qlik", map[string]string{"user": userOf(r)})
		if err != nil {
			http.Error(w, "no embed token", http.StatusBadGateway)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"token": t.Value, "expiresAt": t.ExpiresAt})
	})
}
