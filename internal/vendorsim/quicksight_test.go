package vendorsim_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

const quickSightBody = `{"ExperienceConfiguration":{"Dashboard":{"InitialDashboardId":"d1"}},"UserArn":"arn:aws:quicksight:us-east-1:111122223333:user/default/alice"}`

var longTermKeys = aws.Credentials{AccessKeyID: vendorsim.DefaultQuickSightAccessKeyID, SecretAccessKey: vendorsim.DefaultQuickSightSecretAccessKey}

// signed is a GenerateEmbedUrlForRegisteredUser request signed with SigV4
// by the SDK's signer; tamper may change it after signing.
func signed(t testing.TB, base string, creds aws.Credentials, region string, at time.Time, tamper func(*http.Request)) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+vendorsim.QuickSightRegisteredUserPath(vendorsim.DefaultQuickSightAccountID), strings.NewReader(quickSightBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256([]byte(quickSightBody))
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "quicksight", region, at); err != nil {
		t.Fatal(err)
	}
	if tamper != nil {
		tamper(req)
	}
	return req
}

func send(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() //nolint:errcheck // test
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// TestQuickSightChecksSigV4 signs requests with the SDK's signer and
// expects the simulator to accept exactly the ones AWS would.
func TestQuickSightChecksSigV4(t *testing.T) {
	tests := []struct {
		name   string
		creds  aws.Credentials
		region string
		at     time.Duration // signing time after epoch
		tamper func(*http.Request)
		want   int
		msg    string
	}{
		{name: "a request signed with the known keys is answered", creds: longTermKeys, region: "us-east-1", want: http.StatusOK, msg: `"EmbedUrl":"http://`},
		{name: "a request signed 14 minutes ago is answered", creds: longTermKeys, region: "us-east-1", at: -14 * time.Minute, want: http.StatusOK},
		{name: "a request signed 16 minutes ago has expired", creds: longTermKeys, region: "us-east-1", at: -16 * time.Minute, want: http.StatusForbidden, msg: "signature expired"},
		{name: "a body changed after signing fails the signature", creds: longTermKeys, region: "us-east-1", want: http.StatusForbidden, msg: "does not match",
			tamper: func(r *http.Request) {
				body := strings.Replace(quickSightBody, "alice", "mallory", 1)
				r.Body, r.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
			}},
		{name: "a signed header changed after signing fails the signature", creds: longTermKeys, region: "us-east-1", want: http.StatusForbidden, msg: "does not match",
			tamper: func(r *http.Request) { r.Header.Set("Content-Type", "application/json; charset=utf-8") }},
		{name: "a wrong secret key fails the signature", creds: aws.Credentials{AccessKeyID: longTermKeys.AccessKeyID, SecretAccessKey: "wrong"}, region: "us-east-1", want: http.StatusForbidden, msg: "does not match"},
		{name: "an unknown access key is refused", creds: aws.Credentials{AccessKeyID: "AKIAUNKNOWN", SecretAccessKey: "x"}, region: "us-east-1", want: http.StatusForbidden, msg: "security token"},
		{name: "another region's scope is refused", creds: longTermKeys, region: "eu-west-1", want: http.StatusForbidden, msg: "credential scope"},
		{name: "an unsigned request is refused", creds: longTermKeys, region: "us-east-1", want: http.StatusForbidden, msg: "Authorization",
			tamper: func(r *http.Request) { r.Header.Del("Authorization") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := start(t)
			status, body := send(t, signed(t, s.URL(), tt.creds, tt.region, epoch.Add(tt.at), tt.tamper))
			if status != tt.want || !strings.Contains(body, tt.msg) {
				t.Errorf("answered %d %s, want %d with %q", status, body, tt.want, tt.msg)
			}
			if tt.want != http.StatusOK && !strings.Contains(body, `"__type":"AccessDeniedException"`) {
				t.Errorf("refusal %s is not QuickSight's AccessDeniedException", body)
			}
		})
	}
}

// TestSTSWebIdentity assumes the role with the trusted web identity, then
// signs QuickSight calls with the session's credentials until they expire.
func TestSTSWebIdentity(t *testing.T) {
	s, clk := start(t)
	form := url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"}, "RoleArn": {vendorsim.DefaultQuickSightRoleARN},
		"RoleSessionName": {"test"}, "WebIdentityToken": {vendorsim.DefaultQuickSightWebIdentityToken}}
	resp, err := http.PostForm(s.URL()+"/", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() //nolint:errcheck // test
	var out struct {
		Credentials struct {
			AccessKeyID     string `xml:"AccessKeyId"`
			SecretAccessKey string
			SessionToken    string
			Expiration      string
		} `xml:"AssumeRoleWithWebIdentityResult>Credentials"`
	}
	if err := xml.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("STS answered %d, %v", resp.StatusCode, err)
	}
	c := out.Credentials
	if !strings.HasPrefix(c.AccessKeyID, "ASIA") || c.SessionToken == "" || c.Expiration != epoch.Add(time.Hour).Format(time.RFC3339) {
		t.Fatalf("credentials %+v", c)
	}
	if s.QuickSightAssumedRoles() != 1 {
		t.Errorf("QuickSightAssumedRoles = %d", s.QuickSightAssumedRoles())
	}
	session := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	if status, body := send(t, signed(t, s.URL(), session, "us-east-1", epoch, nil)); status != http.StatusOK {
		t.Errorf("signed with the session: %d %s", status, body)
	}
	noToken := signed(t, s.URL(), session, "us-east-1", epoch, func(r *http.Request) { r.Header.Del("X-Amz-Security-Token") })
	if status, _ := send(t, noToken); status != http.StatusForbidden {
		t.Errorf("without the session token: %d, want 403", status)
	}
	clk.Step(time.Hour)
	if status, _ := send(t, signed(t, s.URL(), session, "us-east-1", epoch.Add(time.Hour), nil)); status != http.StatusForbidden {
		t.Errorf("with expired session credentials: %d, want 403", status)
	}
}

// TestSTSRefusals checks what STS refuses, in its XML error shape.
func TestSTSRefusals(t *testing.T) {
	base := url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"}, "RoleArn": {vendorsim.DefaultQuickSightRoleARN},
		"RoleSessionName": {"test"}, "WebIdentityToken": {vendorsim.DefaultQuickSightWebIdentityToken}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vs := range base {
			f[key] = vs
		}
		f.Set(k, v)
		return f
	}
	tests := []struct {
		name string
		form url.Values
		want int
		code string
	}{
		{"an untrusted web identity", with("WebIdentityToken", "other"), http.StatusBadRequest, "InvalidIdentityToken"},
		{"a role the identity may not assume", with("RoleArn", "arn:aws:iam::111122223333:role/other"), http.StatusForbidden, "AccessDenied"},
		{"another action", with("Action", "AssumeRole"), http.StatusBadRequest, "InvalidAction"},
		{"no session name", with("RoleSessionName", ""), http.StatusBadRequest, "ValidationError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := start(t)
			resp, err := http.PostForm(s.URL()+vendorsim.STSPath, tt.form)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close() //nolint:errcheck // test
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.want || !strings.Contains(string(raw), "<Code>"+tt.code+"</Code>") || resp.Header.Get("Content-Type") != "text/xml" {
				t.Errorf("answered %d %s %s, want %d %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw, tt.want, tt.code)
			}
			if s.QuickSightAssumedRoles() != 0 {
				t.Error("a refused call assumed the role")
			}
		})
	}
}

// TestQuickSightEmbedURLExpiresUnredeemed lets an embed URL wait past its
// redemption window: QuickSight then refuses it.
func TestQuickSightEmbedURLExpiresUnredeemed(t *testing.T) {
	s, clk := start(t)
	status, body := send(t, signed(t, s.URL(), longTermKeys, "us-east-1", epoch, nil))
	if status != http.StatusOK {
		t.Fatalf("%d %s", status, body)
	}
	embed := body[strings.Index(body, `"EmbedUrl":"`)+len(`"EmbedUrl":"`):]
	embed = strings.ReplaceAll(embed[:strings.Index(embed, `"`)], `\u0026`, "&")
	clk.Step(vendorsim.QuickSightURLRedemptionWindow)
	if v := s.Validate(embed); v != vendorsim.ValidityExpired {
		t.Errorf("Validate = %s, want expired", v)
	}
	resp, err := http.Get(embed)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("redeeming late answered %d, want 403", resp.StatusCode)
	}
}

// FuzzQuickSightRequest sends arbitrary Authorization and X-Amz-Date
// headers and bodies to GenerateEmbedUrlForRegisteredUser: the simulator
// must never panic, and must answer 200 only to the one seed signed with
// the known keys.
func FuzzQuickSightRequest(f *testing.F) {
	s := vendorsim.New(vendorsim.Options{Clock: clocktesting.NewFakeClock(epoch)})
	valid := signed(f, "http://sim.test", longTermKeys, "us-east-1", epoch, nil)
	f.Add(valid.Header.Get("Authorization"), valid.Header.Get("X-Amz-Date"), quickSightBody)
	f.Add("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20300102/us-east-1/quicksight/aws4_request, SignedHeaders=host, Signature="+strings.Repeat("0", 64), "20300102T030405Z", "{}")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, auth, date, body string) {
		req := httptest.NewRequest(http.MethodPost, "http://sim.test"+vendorsim.QuickSightRegisteredUserPath(vendorsim.DefaultQuickSightAccountID), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		req.Header.Set("X-Amz-Date", date)
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		signedSeed := auth == valid.Header.Get("Authorization") && date == valid.Header.Get("X-Amz-Date") && body == quickSightBody
		if w.Code == http.StatusOK && !signedSeed {
			t.Fatalf("answered 200 to an unsigned request: %q %q %q", auth, date, body)
		}
		if signedSeed && w.Code != http.StatusOK {
			t.Fatalf("refused the signed request: %d %s", w.Code, w.Body)
		}
	})
}
