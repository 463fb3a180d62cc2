// Package tokenclient calls the embed-token-operator's token endpoint from a
// backend running in a pod, so the backend can hand each signed-in user an
// analytics embed token without holding any vendor credential.
//
// The pod mounts a projected ServiceAccount token of audience embedtokens.io
// and the operator's CA (the embedtokens-ca.crt ConfigMap, key ca.crt),
// by default both under /var/run/secrets/embedtokens.io. The client
//
//   - re-reads the projected token on every call, since the kubelet rotates it;
//   - verifies the endpoint's certificate against the CA file only, re-reading
//     it when it changes, since the operator rotates its CA;
//   - retries 429 and 503 answers after their Retry-After, a bounded number
//     of times and never past the caller's context;
//   - keeps each (template, parameters) token in memory and fetches a new one
//     before less than a third of its lifetime, or 30 s, is left, so a page
//     view never receives a nearly expired token;
//   - returns *Error, with the endpoint's reason and status, for refusals.
//
// Tokens from templates whose vendor tokens are single-use (cache: None)
// must be fetched with Fetch, which never caches.
//
// A backend route serving the browser:
//
//	c, err := tokenclient.New(tokenclient.Options{
//		Endpoint: "https://embed-token-operator-token-endpoint.embed-token-operator-system.svc:8443",
//	})
//	if err != nil {
//		return err
//	}
//	http.HandleFunc("/embed-token", func(w http.ResponseWriter, r *http.Request) {
//		t, err := c.Token(r.Context(), "shop", "per-user-qlik", map[string]string{"user": userOf(r)})
//		if err != nil {
//			http.Error(w, "no token", http.StatusBadGateway)
//			return
//		}
//		json.NewEncoder(w).Encode(map[string]any{"token": t.Value, "expiresAt": t.ExpiresAt})
//	})
package tokenclient
