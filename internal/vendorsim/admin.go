package vendorsim

import (
	"encoding/json"
	"maps"
	"net/http"
	"time"
)

// redacted replaces secret request fields in admin output.
const redacted = "[redacted]"

// adminCall is a Call as the admin API shows it: secrets redacted and the
// issued token reduced to a flag, because tokens are credentials.
type adminCall struct {
	Vendor string         `json:"vendor"`
	Path   string         `json:"path"`
	Status int            `json:"status"`
	Time   time.Time      `json:"time"`
	Body   map[string]any `json:"body,omitempty"`
	Issued bool           `json:"issued"`
}

// mountAdmin adds the /_sim/ admin API and /healthz, for end-to-end tests
// that run the simulator as a separate process and cannot call Server methods.
func (s *Server) mountAdmin(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /_sim/calls", s.adminCalls)
	mux.HandleFunc("GET /_sim/validate", s.adminValidate)
	mux.HandleFunc("POST /_sim/validate", s.adminValidate)
	mux.HandleFunc("GET /_sim/fault", func(w http.ResponseWriter, _ *http.Request) {
		f, ok := s.currentFault()
		if !ok {
			writeJSON(w, http.StatusOK, map[string]any{"fault": nil})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"fault": f})
	})
	mux.HandleFunc("POST /_sim/fault", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes)).Decode(&f); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		s.SetFault(f)
		writeJSON(w, http.StatusOK, map[string]any{"fault": f})
	})
	mux.HandleFunc("DELETE /_sim/fault", func(w http.ResponseWriter, _ *http.Request) {
		s.ClearFault()
		writeJSON(w, http.StatusOK, map[string]any{"fault": nil})
	})
	mux.HandleFunc("POST /_sim/reset", func(w http.ResponseWriter, _ *http.Request) {
		s.Reset()
		writeJSON(w, http.StatusOK, map[string]string{"status": "reset"})
	})
}

// adminCalls serves GET /_sim/calls: the counters tests usually need plus the
// redacted log for debugging.
func (s *Server) adminCalls(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	list := make([]adminCall, len(s.calls))
	for i, c := range s.calls {
		body := c.Body
		if len(c.secretFields) > 0 && body != nil {
			body = maps.Clone(body)
			for _, f := range c.secretFields {
				if _, ok := body[f]; ok {
					body[f] = redacted
				}
			}
		}
		list[i] = adminCall{Vendor: c.Vendor, Path: c.Path, Status: c.Status, Time: c.Time, Body: body, Issued: c.Token != ""}
	}
	issued := s.issued
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"calls": len(list), "issued": issued, "log": list})
}

// adminValidate serves /_sim/validate; POST with {"token": ...} keeps tokens
// out of URLs and access logs.
func (s *Server) adminValidate(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	if r.Method == http.MethodPost {
		var req struct {
			Token string `json:"token"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "decode validate request: " + err.Error()})
			return
		}
		token = req.Token
	}
	if token == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "token is required"})
		return
	}
	v, expiresAt := s.validate(token)
	resp := map[string]any{"validity": v}
	if !expiresAt.IsZero() {
		resp["expiresAt"] = expiresAt
	}
	status := map[Validity]int{ValidityValid: http.StatusOK, ValidityExpired: http.StatusGone, ValidityUnknown: http.StatusNotFound}[v]
	writeJSON(w, status, resp)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may have gone; nothing to do about it
}
