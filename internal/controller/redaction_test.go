package controller_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"go.uber.org/zap/zapcore"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider/oauth2"
)

// echoClientID and echoSecret are a client's credentials holding every
// character that JSON, HTML and URL encoders escape.
const (
	echoClientID = "embed client"
	echoSecret   = `p&ss<w>"0rd'/+x`
)

// echoForms are the forms in which a vendor can quote echoSecret back:
// as sent in a JSON body (Go escapes &, <, > and "), in a form body, in a
// Basic Authorization header, and as each of those is escaped again by the
// vendor's error page.
func echoForms() []string {
	jsonEscape := func(s string) string {
		b, _ := json.Marshal(s)
		return string(b[1 : len(b)-1])
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	forms := []string{echoSecret, jsonEscape(echoSecret), jsonEscape(jsonEscape(echoSecret)), url.QueryEscape(echoSecret),
		url.PathEscape(echoSecret), b64(echoSecret), base64.RawURLEncoding.EncodeToString([]byte(echoSecret)),
		b64(url.QueryEscape(echoClientID) + ":" + url.QueryEscape(echoSecret)), b64(echoClientID + ":" + echoSecret)}
	for _, f := range forms[:4] {
		forms = append(forms, html.EscapeString(f))
	}
	return forms
}

// containsAny returns the forms text holds.
func containsAny(text string, forms []string) []string {
	var found []string
	for _, f := range forms {
		if strings.Contains(text, f) {
			found = append(found, f)
		}
	}
	return found
}

// newEchoVendor is a token endpoint that refuses every call with an RFC 6749
// error whose description quotes the request's Authorization and x-api-key
// headers and its body: as received (/raw), HTML-escaped (/html) or as a
// JSON string (/quoted).
func newEchoVendor() *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var echo []string
		for _, part := range [][2]string{{"auth", r.Header.Get("Authorization")}, {"key", r.Header.Get("X-Api-Key")}, {"body", string(body)}} {
			if part[1] != "" {
				echo = append(echo, part[0]+" "+part[1])
			}
		}
		desc := strings.Join(echo, " ")
		switch {
		case strings.HasPrefix(r.URL.Path, "/html"):
			desc = html.EscapeString(desc)
		case strings.HasPrefix(r.URL.Path, "/quoted"):
			b, _ := json.Marshal(desc)
			desc = string(b)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": desc})
	}))
	DeferCleanup(srv.Close)
	return srv
}

// newCuttingVendor is a token endpoint that refuses every call, quoting
// the first 64 bytes of the request's body with no sign of the cut, as some
// vendors' validation errors do.
func newCuttingVendor() *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request",
			"error_description": "cannot parse body " + string(body[:min(64, len(body))])})
	}))
	DeferCleanup(srv.Close)
	return srv
}

var _ = Describe("Credentials a vendor echoes", Ordered, func() {
	var logs *gbytes.Buffer
	BeforeAll(func() {
		logs = gbytes.NewBuffer() // safe for the manager's goroutines
		stopMgr()
		stopMgr = startManagerWithLogger(zap.New(zap.WriteTo(logs), zap.JSONEncoder(), zap.Level(zapcore.Level(-10))))
		DeferCleanup(func() {
			stopMgr()
			stopMgr = startManager()
		})
	})

	It("reach no condition, Event or log line in any encoding", func() {
		ctx := context.Background()
		f := newFixture(ctx)
		f.createSecret(ctx, "echo-creds", map[string][]byte{"secret": []byte(echoSecret)})
		ref := v1alpha1.SecretKeySelector{Name: "echo-creds", Key: "secret"}
		vendor := newEchoVendor()

		oauth2Spec := func(u, auth, encoding string) (v1alpha1.EmbedProviderSpec, v1alpha1.VendorParams) {
			cfg := &v1alpha1.OAuth2Provider{TokenURL: u, ClientID: echoClientID, ClientSecretSecretRef: &ref,
				ClientAuthMethod: auth, BodyEncoding: encoding}
			return v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{OAuth2: cfg}, AllowInsecureHTTP: true},
				v1alpha1.VendorParams{OAuth2: &v1alpha1.OAuth2Params{}}
		}
		specs := map[string]func(url string) (v1alpha1.EmbedProviderSpec, v1alpha1.VendorParams){
			"basic-form": func(u string) (v1alpha1.EmbedProviderSpec, v1alpha1.VendorParams) {
				return oauth2Spec(u, oauth2.AuthBasic, oauth2.EncodingForm)
			},
			"post-json": func(u string) (v1alpha1.EmbedProviderSpec, v1alpha1.VendorParams) {
				return oauth2Spec(u, oauth2.AuthPost, oauth2.EncodingJSON)
			},
			"http": func(u string) (v1alpha1.EmbedProviderSpec, v1alpha1.VendorParams) {
				cfg := &v1alpha1.HTTPProvider{URL: u, TokenPath: ".token", ExpiresInPath: ".expires_in",
					Body:    `{"key":"{{ secret "echo-creds" "secret" }}"}`,
					Headers: []v1alpha1.HTTPHeader{{Name: "x-api-key", ValueFrom: &v1alpha1.HTTPHeaderSource{SecretKeyRef: ref}}}}
				return v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{HTTP: cfg}, AllowInsecureHTTP: true},
					v1alpha1.VendorParams{HTTP: &v1alpha1.HTTPParams{}}
			},
		}
		var requests []*v1alpha1.EmbedTokenRequest
		for name, spec := range specs {
			for _, style := range []string{"raw", "html", "quoted"} {
				p, params := spec(vendor.URL + "/" + style + "/token")
				f.createNamedProvider(ctx, name+"-"+style, p)
				etr := f.request(name+"-"+style, time.Hour)
				etr.Spec.ProviderRef.Name, etr.Spec.VendorParams = name+"-"+style, params
				Expect(k8sClient.Create(ctx, etr)).To(Succeed())
				requests = append(requests, etr)
			}
		}

		forms := echoForms()
		for _, etr := range requests {
			Eventually(readyCondition(ctx, etr)).Should(And(
				haveReason(metav1.ConditionFalse, v1alpha1.ReasonVendorUnauthorized),
				HaveField("Message", ContainSubstring("[redacted]"))), "the echo of %s reached the condition, redacted", etr.Name)
			Expect(containsAny(readyCondition(ctx, etr)(Default).Message, forms)).To(BeEmpty(), "the condition of %s", etr.Name)
		}

		By("checking the Events")
		Eventually(func(g Gomega) {
			var events eventsv1.EventList
			g.Expect(k8sClient.List(ctx, &events, client.InNamespace(f.ns))).To(Succeed())
			warned := 0
			for _, e := range events.Items {
				g.Expect(containsAny(e.Note, forms)).To(BeEmpty(), "Event %s", e.Name)
				if e.Reason == v1alpha1.ReasonVendorUnauthorized {
					warned++
				}
			}
			g.Expect(warned).To(Equal(len(requests)))
		}).Should(Succeed())

		By("checking the manager's log, as written and decoded")
		var failed []string
		Eventually(func(g Gomega) {
			failed = nil
			for _, l := range jsonLines(string(logs.Contents())) {
				if ref, _ := l["embedTokenRequest"].(map[string]any); l["msg"] == "Issuing token failed" && ref["namespace"] == f.ns {
					failed = append(failed, l["message"].(string))
				}
			}
			g.Expect(len(failed)).To(BeNumerically(">=", len(requests)))
		}).Should(Succeed())
		Expect(strings.Join(failed, "\n")).To(ContainSubstring("[redacted]"))
		all := string(logs.Contents())
		Expect(containsAny(all, forms)).To(BeEmpty(), "the log as written")
		for _, l := range jsonLines(all) {
			decoded, _ := json.Marshal(l)
			for _, v := range l {
				if s, ok := v.(string); ok {
					Expect(containsAny(s, forms)).To(BeEmpty(), "a decoded log value in %s", decoded)
				}
			}
		}
	})

	It("reach no condition, Event or log line when the vendor quotes the request cut short", func() {
		const key = "Zq8kP3xL0vT2mR7nB4yH6cJ9wQ5e" // 28 bytes, as the platform key was
		ctx := context.Background()
		f := newFixture(ctx)
		f.createSecret(ctx, "cut-creds", map[string][]byte{"key": []byte(key)})
		f.createNamedProvider(ctx, "cutting", v1alpha1.EmbedProviderSpec{VendorConfig: v1alpha1.VendorConfig{
			HTTP: &v1alpha1.HTTPProvider{URL: newCuttingVendor().URL + "/token", TokenPath: ".token", ExpiresInPath: ".expires_in",
				Body: `{"pad":"{{ .Vars.pad }}","key":"{{ secret "cut-creds" "key" }}"}`}}, AllowInsecureHTTP: true})
		// The body's first 64 bytes are {"pad":"<pad>","key":" (17 bytes
		// and the pad) and then 47-len(pad) bytes of the key: the tenant
		// moves the cut with the pad's length.
		var requests []*v1alpha1.EmbedTokenRequest
		for _, shown := range []int{8, 13, 20, 27} {
			etr := f.httpRequest("cut-"+strconv.Itoa(shown), "cutting", time.Hour)
			etr.Spec.HTTP.Variables = map[string]string{"pad": strings.Repeat("x", 47-shown)}
			Expect(k8sClient.Create(ctx, etr)).To(Succeed())
			requests = append(requests, etr)
		}

		// Every beginning of 8 bytes or more holds the first 8.
		leak := key[:8]
		for _, etr := range requests {
			Eventually(readyCondition(ctx, etr)).Should(And(
				haveReason(metav1.ConditionFalse, v1alpha1.ReasonVendorRejected),
				HaveField("Message", ContainSubstring(`cannot parse body {"pad":"xxxxxxxx`))), "the quote of %s reached the condition", etr.Name)
			Expect(readyCondition(ctx, etr)(Default).Message).To(And(ContainSubstring("[redacted]"), Not(ContainSubstring(leak))),
				"the condition of %s", etr.Name)
		}

		By("checking the Events")
		Eventually(func(g Gomega) {
			var events eventsv1.EventList
			g.Expect(k8sClient.List(ctx, &events, client.InNamespace(f.ns))).To(Succeed())
			warned := 0
			for _, e := range events.Items {
				g.Expect(e.Note).NotTo(ContainSubstring(leak), "Event %s", e.Name)
				if e.Reason == v1alpha1.ReasonVendorRejected {
					warned++
				}
			}
			g.Expect(warned).To(BeNumerically(">=", len(requests)))
		}).Should(Succeed())

		By("checking the manager's log, as written and decoded")
		Eventually(func(g Gomega) {
			failed := 0
			for _, l := range jsonLines(string(logs.Contents())) {
				if ref, _ := l["embedTokenRequest"].(map[string]any); l["msg"] == "Issuing token failed" && ref["namespace"] == f.ns {
					failed++
				}
			}
			g.Expect(failed).To(BeNumerically(">=", len(requests)))
		}).Should(Succeed())
		// client-go's own dumps of API bodies at verbosity 8 hold every
		// Secret the manager reads, this one included: not the operator's.
		var lines []string
		for _, line := range strings.Split(string(logs.Contents()), "\n") {
			if !strings.Contains(line, `"msg":"Response Body"`) && !strings.Contains(line, `"msg":"Request Body"`) {
				lines = append(lines, line)
			}
		}
		all := strings.Join(lines, "\n")
		for _, line := range lines {
			Expect(line).NotTo(ContainSubstring(leak), "the log as written")
		}
		for _, l := range jsonLines(all) {
			for _, v := range l {
				if s, ok := v.(string); ok {
					Expect(s).NotTo(ContainSubstring(leak), "a decoded log value")
				}
			}
		}
	})
})
