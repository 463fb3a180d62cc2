package kubectlplugin

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/tools/portforward"
)

func TestParseTemplateRef(t *testing.T) {
	tests := []struct {
		name, ref, defaultNS string
		wantNS, wantTemplate string
		wantErr              bool
	}{
		{"namespace and template are split at the slash", "shop/per-user-qlik", "default", "shop", "per-user-qlik", false},
		{"a bare template is in the kubeconfig's namespace", "per-user-qlik", "web", "web", "per-user-qlik", false},
		{"an empty namespace is refused", "/per-user-qlik", "web", "", "", true},
		{"an empty template is refused", "shop/", "web", "", "", true},
		{"a second slash is refused", "shop/a/b", "web", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, tmpl, err := ParseTemplateRef(tt.ref, tt.defaultNS)
			if (err != nil) != tt.wantErr || ns != tt.wantNS || tmpl != tt.wantTemplate {
				t.Errorf("ParseTemplateRef(%q) = %q, %q, %v", tt.ref, ns, tmpl, err)
			}
		})
	}
}

func TestParseParams(t *testing.T) {
	many := make([]string, maxParams+1)
	for i := range many {
		many[i] = fmt.Sprintf("p%d=v", i)
	}
	tests := []struct {
		name    string
		flags   []string
		want    string
		wantErr string
	}{
		{"no flags are no parameters", nil, "map[]", ""},
		{"each flag is a parameter", []string{"user=alice", "region=eu"}, "map[region:eu user:alice]", ""},
		{"a value may hold '=' and be empty", []string{"filter=a=b", "note="}, "map[filter:a=b note:]", ""},
		{"a flag without '=' is refused", []string{"user"}, "", "name=value"},
		{"a flag without a name is refused", []string{"=alice"}, "", "name=value"},
		{"a name given twice is refused", []string{"user=a", "user=b"}, "", "twice"},
		{"more parameters than the endpoint takes are refused", many, "", "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseParams(tt.flags)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ParseParams error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != tt.want {
				t.Errorf("ParseParams = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func jwtWithClaims(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(claims)) + "." + enc([]byte("sig"))
}

func TestHasAudience(t *testing.T) {
	tests := []struct {
		name  string
		token string
		want  bool
	}{
		{"a JWT whose aud is the audience has it", jwtWithClaims(`{"aud":"embedtokens.io"}`), true},
		{"a JWT whose aud list includes the audience has it", jwtWithClaims(`{"aud":["https://kubernetes.default.svc","embedtokens.io"]}`), true},
		{"a JWT for the API server does not", jwtWithClaims(`{"aud":["https://kubernetes.default.svc"]}`), false},
		{"a JWT without aud does not", jwtWithClaims(`{"sub":"x"}`), false},
		{"an opaque token does not", "abcdef.0123456789abcdef", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HasAudience(tt.token, "embedtokens.io"); got != tt.want {
				t.Errorf("HasAudience = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCredentialKind(t *testing.T) {
	tests := []struct {
		name   string
		cfg    rest.Config
		bearer string
		want   string
	}{
		{"a static bearer token", rest.Config{}, "abc", "bearer token"},
		{"an exec plugin", rest.Config{ExecProvider: &api.ExecConfig{Command: "aws"}}, "", "exec credential plugin"},
		{"a client certificate", rest.Config{TLSClientConfig: rest.TLSClientConfig{CertData: []byte("x")}}, "", "client certificate"},
		{"nothing at all", rest.Config{}, "", "no credential"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := credentialKind(&tt.cfg, tt.bearer)
			if !strings.Contains(got, tt.want) {
				t.Errorf("credentialKind = %q, want %q", got, tt.want)
			}
			msg := notServiceAccount("alice", got).Error()
			for _, want := range []string{"alice", tt.want, "not a ServiceAccount", "embedtokens.io", "from a pod", "--caller-token-file"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
		})
	}
}

// TestPortForwardFallsBackToSPDY dials the WebSocket port-forward of an API
// server that refuses the upgrade, as one behind a proxy without WebSockets
// does, and checks that the plugin then tries SPDY.
func TestPortForwardFallsBackToSPDY(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "upgrade refused", http.StatusBadRequest)
	}))
	defer srv.Close()
	u, err := url.Parse(srv.URL + "/api/v1/namespaces/ops/pods/endpoint-0/portforward")
	if err != nil {
		t.Fatal(err)
	}
	dialer, err := portforward.NewSPDYOverWebsocketDialerForStreaming(u, &rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = dialer.Dial(portforward.PortForwardProtocolV1Name)
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"a refused WebSocket upgrade falls back", err, true},
		{"a proxy that cannot tunnel HTTPS falls back", errors.New("proxy: unknown scheme: https"), true},
		{"any other failure does not", errors.New("connection refused"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := fallBackToSPDY(tc.err); got != tc.want {
				t.Errorf("fallBackToSPDY(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
