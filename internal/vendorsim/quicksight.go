package vendorsim

// Amazon QuickSight's embed URL API and the AWS STS action that gives a
// pod's web identity credentials. QuickSight checks every call's SigV4
// signature, recomputed with the SDK's signer from the simulator's own copy
// of the credentials, as AWS does; STS's AssumeRoleWithWebIdentity is
// unsigned and answers in XML, as STS's query protocol does.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// QuickSight and STS wire constants, exported so clients under test and the
// standalone binary agree with the simulator without repeating literals.
const (
	// QuickSightEmbedRedeemPath is every simulated embed URL's path (the
	// code and the page it opens are in the query); a GET of the URL
	// redeems it, once.
	QuickSightEmbedRedeemPath = "/embed"
	// QuickSightURLRedemptionWindow is how long an embed URL may wait to
	// be redeemed, as QuickSight's.
	QuickSightURLRedemptionWindow = 5 * time.Minute
	// QuickSightMaxSigningSkew is how far a request's X-Amz-Date may be
	// from the simulator's clock, as AWS allows.
	QuickSightMaxSigningSkew = 15 * time.Minute
	// DefaultQuickSightAccountID is the AWS account the simulated
	// QuickSight belongs to when Options.QuickSight.AccountID is empty.
	DefaultQuickSightAccountID = "111122223333"
	// DefaultQuickSightRegion is the region it serves when
	// Options.QuickSight.Region is empty.
	DefaultQuickSightRegion = "us-east-1"
	// DefaultQuickSightAccessKeyID and DefaultQuickSightSecretAccessKey
	// are the access keys accepted when Options.QuickSight sets none, for
	// demos and tests; AWS's documentation example keys.
	DefaultQuickSightAccessKeyID     = "AKIAIOSFODNN7EXAMPLE"
	DefaultQuickSightSecretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	// DefaultQuickSightRoleARN is the only role the simulated STS lets a
	// web identity assume when Options.QuickSight.RoleARN is empty.
	DefaultQuickSightRoleARN = "arn:aws:iam::111122223333:role/embed-token-operator"
	// DefaultQuickSightWebIdentityToken is the only web identity the
	// simulated STS trusts when Options.QuickSight.WebIdentityToken is empty.
	DefaultQuickSightWebIdentityToken = "demo-web-identity-token"
	// QuickSightSTSCredentialsLifetime is how long credentials from the
	// simulated STS last.
	QuickSightSTSCredentialsLifetime = time.Hour
	// STSPath is where the simulated STS answers besides "/", the path an
	// STS endpoint's base URL gives.
	STSPath = "/sts"
)

// QuickSightRegisteredUserPath is GenerateEmbedUrlForRegisteredUser's route
// for account.
func QuickSightRegisteredUserPath(account string) string {
	return "/accounts/" + account + "/embed-url/registered-user"
}

// QuickSightAnonymousUserPath is GenerateEmbedUrlForAnonymousUser's route
// for account.
func QuickSightAnonymousUserPath(account string) string {
	return "/accounts/" + account + "/embed-url/anonymous-user"
}

// QuickSightOptions configure the simulated QuickSight and STS; the zero
// value uses the Default* constants.
type QuickSightOptions struct {
	// AccountID is the only AWS account whose routes answer.
	AccountID string
	// Region is the only region signatures may be scoped to.
	Region string
	// AccessKeyID and SecretAccessKey are the long-term keys that may
	// sign calls; credentials the simulated STS issued may too.
	AccessKeyID, SecretAccessKey string
	// RoleARN is the only role a web identity may assume.
	RoleARN string
	// WebIdentityToken is the only web identity STS trusts.
	WebIdentityToken string
}

func (o QuickSightOptions) withDefaults() QuickSightOptions {
	o.AccountID = cmp.Or(o.AccountID, DefaultQuickSightAccountID)
	o.Region = cmp.Or(o.Region, DefaultQuickSightRegion)
	o.AccessKeyID = cmp.Or(o.AccessKeyID, DefaultQuickSightAccessKeyID)
	o.SecretAccessKey = cmp.Or(o.SecretAccessKey, DefaultQuickSightSecretAccessKey)
	o.RoleARN = cmp.Or(o.RoleARN, DefaultQuickSightRoleARN)
	o.WebIdentityToken = cmp.Or(o.WebIdentityToken, DefaultQuickSightWebIdentityToken)
	return o
}

// quickSightState is what the QuickSight and STS routes share: the
// credentials STS issued and the embed URLs' codes not yet redeemed. The
// zero value is usable.
type quickSightState struct {
	mu sync.Mutex
	// sessions are STS's credentials, by access key ID.
	sessions map[string]stsSession
	// codes are the unredeemed embed URLs' codes, with their deadline.
	codes map[string]time.Time
	// assumed counts successful AssumeRoleWithWebIdentity calls.
	assumed int
}

type stsSession struct {
	secret, token string
	expires       time.Time
}

func (st *quickSightState) reset() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sessions, st.codes, st.assumed = nil, nil, 0
}

// QuickSightAssumedRoles counts the web identities STS exchanged for
// credentials, so tests can check that the operator reuses them.
func (s *Server) QuickSightAssumedRoles() int {
	s.quickSight.mu.Lock()
	defer s.quickSight.mu.Unlock()
	return s.quickSight.assumed
}

// quickSightVendor is the simulated Amazon QuickSight (both embed URL
// actions and the URLs' redemption) and the AWS STS its web identities
// call.
func quickSightVendor() vendor {
	return vendor{
		mount: func(s *Server, opts Options) routes {
			return routes{
				endpoints: []endpoint{quickSightEmbedEndpoint(s, opts, false), quickSightEmbedEndpoint(s, opts, true),
					quickSightRedeemEndpoint(s), stsEndpoint(s, opts)},
				reset: s.quickSight.reset,
			}
		},
		flags: func(f *Flags) {
			account := f.fs.String("quicksight-account-id", DefaultQuickSightAccountID, "AWS account whose QuickSight routes the simulator serves")
			region := f.fs.String("quicksight-region", DefaultQuickSightRegion, "region QuickSight signatures must be scoped to")
			keyID := f.credential("quicksight-access-key-id", "VENDORSIM_QUICKSIGHT_ACCESS_KEY_ID", "access key ID that may sign QuickSight calls", quoted(DefaultQuickSightAccessKeyID))
			secret := f.credential("quicksight-secret-access-key", "VENDORSIM_QUICKSIGHT_SECRET_ACCESS_KEY", "secret access key of that key ID", "AWS's documentation example key")
			role := f.fs.String("quicksight-role-arn", DefaultQuickSightRoleARN, "only role the simulated STS lets a web identity assume")
			webIdentity := f.credential("quicksight-web-identity-token", "VENDORSIM_QUICKSIGHT_WEB_IDENTITY_TOKEN", "only web identity token the simulated STS trusts", quoted(DefaultQuickSightWebIdentityToken))
			f.set(func(o *Options) error {
				o.QuickSight = QuickSightOptions{AccountID: *account, Region: *region, AccessKeyID: *keyID,
					SecretAccessKey: *secret, RoleARN: *role, WebIdentityToken: *webIdentity}
				return nil
			})
		},
		banner: func(base string, opts Options) string {
			o := opts.QuickSight.withDefaults()
			return "QuickSight endpoint and STS endpoint " + base + " (embed URLs at " + QuickSightRegisteredUserPath(o.AccountID) + ", region " + o.Region + ")"
		},
	}
}

// quickSightErrorBody is QuickSight's REST JSON error: the SDK reads the
// error code from __type.
func quickSightErrorBody(status int, msg string) any {
	code := map[int]string{
		http.StatusBadRequest:          "InvalidParameterValueException",
		http.StatusUnauthorized:        "AccessDeniedException",
		http.StatusForbidden:           "AccessDeniedException",
		http.StatusNotFound:            "ResourceNotFoundException",
		http.StatusConflict:            "ConflictException",
		http.StatusTooManyRequests:     "ThrottlingException",
		http.StatusInternalServerError: "InternalFailureException",
	}[status]
	return map[string]any{"__type": cmp.Or(code, "InternalFailureException"), "Message": msg, "RequestId": newToken("")[:36]}
}

// quickSightEmbedEndpoint simulates one GenerateEmbedUrl action (anonymous
// or registered user) of the configured account.
func quickSightEmbedEndpoint(s *Server, opts Options, anonymous bool) endpoint {
	o := opts.QuickSight.withDefaults()
	path := QuickSightRegisteredUserPath(o.AccountID)
	if anonymous {
		path = QuickSightAnonymousUserPath(o.AccountID)
	}
	fail := func(status int, msg string) reply {
		return reply{status: status, body: quickSightErrorBody(status, msg)}
	}
	return endpoint{
		vendor:     "quickSight",
		method:     http.MethodPost,
		path:       path,
		emptyToken: map[string]any{"EmbedUrl": "", "Status": http.StatusOK, "RequestId": "empty"},
		errorBody:  quickSightErrorBody,
		issue: func(r *http.Request, body map[string]any, decodeErr error) reply {
			if status, msg := s.quickSightVerifySignature(r, o); status != 0 {
				return fail(status, msg)
			}
			if decodeErr != nil {
				return fail(http.StatusBadRequest, "request body must be a JSON object")
			}
			if msg := quickSightCheckBody(body, anonymous); msg != "" {
				return fail(http.StatusBadRequest, msg)
			}
			code := newToken("")
			url := "http://" + r.Host + QuickSightEmbedRedeemPath + "?open=" + quickSightInitial(body) +
				"&code=" + code + "&identityprovider=quicksight&isauthcode=true"
			s.quickSight.mu.Lock()
			if s.quickSight.codes == nil {
				s.quickSight.codes = map[string]time.Time{}
			}
			s.quickSight.codes[code] = s.clock.Now().Add(QuickSightURLRedemptionWindow)
			s.quickSight.mu.Unlock()
			requestID := newToken("")[:36]
			return reply{status: http.StatusOK, token: url, ttl: QuickSightURLRedemptionWindow,
				body:   map[string]any{"EmbedUrl": url, "Status": http.StatusOK, "RequestId": requestID},
				header: http.Header{"X-Amzn-Requestid": {requestID}}}
		},
	}
}

// quickSightInitial is the dashboard or topic the URL opens, for its path.
func quickSightInitial(body map[string]any) string {
	exp, _ := body["ExperienceConfiguration"].(map[string]any)
	for _, k := range []string{"Dashboard", "QSearchBar"} {
		if e, ok := exp[k].(map[string]any); ok {
			return cmp.Or(stringField(e, "InitialDashboardId"), stringField(e, "InitialTopicId"), "start")
		}
	}
	return "start"
}

var quickSightUserARN = regexp.MustCompile(`^arn:aws[a-z-]*:quicksight:[a-z0-9-]+:[0-9]{12}:user/.+$`)

// quickSightCheckBody checks what QuickSight checks of a GenerateEmbedUrl
// body, answering why it is refused or "".
func quickSightCheckBody(body map[string]any, anonymous bool) string {
	if v, ok := body["SessionLifetimeInMinutes"]; ok {
		n, isNumber := v.(float64)
		if !isNumber || n < 15 || n > 600 || n != float64(int64(n)) {
			return "SessionLifetimeInMinutes must be a whole number from 15 to 600"
		}
	}
	if v, ok := body["AllowedDomains"]; ok {
		list, _ := v.([]any)
		if len(list) > 3 {
			return "AllowedDomains may list at most 3 domains"
		}
	}
	exp, _ := body["ExperienceConfiguration"].(map[string]any)
	if len(exp) != 1 {
		return "ExperienceConfiguration must set exactly one experience"
	}
	if !anonymous {
		if !quickSightUserARN.MatchString(stringField(body, "UserArn")) {
			return "UserArn must be a QuickSight user ARN"
		}
		return ""
	}
	arns, _ := body["AuthorizedResourceArns"].([]any)
	if len(arns) == 0 || len(arns) > 25 {
		return "AuthorizedResourceArns must list 1 to 25 ARNs"
	}
	if stringField(body, "Namespace") == "" {
		return "Namespace is required"
	}
	if tags, _ := body["SessionTags"].([]any); len(tags) > 50 {
		return "SessionTags may hold at most 50 tags"
	}
	if d, ok := exp["Dashboard"].(map[string]any); ok {
		id := stringField(d, "InitialDashboardId")
		for _, a := range arns {
			if arn, _ := a.(string); strings.HasSuffix(arn, ":dashboard/"+id) {
				return ""
			}
		}
		return "InitialDashboardId must be one of the AuthorizedResourceArns"
	}
	return ""
}

// authHeader is a parsed SigV4 Authorization header.
type authHeader struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
}

var authHeaderRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/([0-9]{8})/([^/]+)/([^/]+)/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$`)

// quickSightVerifySignature recomputes r's SigV4 signature, as AWS does:
// the credential scope must be this region's quicksight, the key known, the
// signing time within QuickSightMaxSigningSkew of the simulator's clock and
// the signature the one the SDK's signer computes from the same canonical
// request. It answers 0 when all hold, else the status AWS answers and why.
func (s *Server) quickSightVerifySignature(r *http.Request, o QuickSightOptions) (int, string) {
	m := authHeaderRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return http.StatusForbidden, "missing or malformed SigV4 Authorization header"
	}
	h := authHeader{accessKey: m[1], date: m[2], region: m[3], service: m[4], signedHeaders: strings.Split(m[5], ";"), signature: m[6]}
	if h.region != o.Region || h.service != "quicksight" {
		return http.StatusForbidden, fmt.Sprintf("credential scope %s/%s is not %s/quicksight", h.region, h.service, o.Region)
	}
	signedAt, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || signedAt.Format("20060102") != h.date {
		return http.StatusForbidden, "X-Amz-Date is missing or disagrees with the credential scope"
	}
	if skew := s.clock.Now().Sub(signedAt); skew > QuickSightMaxSigningSkew || skew < -QuickSightMaxSigningSkew {
		return http.StatusForbidden, "signature expired: X-Amz-Date is more than 15 minutes from the server's time"
	}
	creds, ok := s.quickSightCredentials(h.accessKey, o)
	if !ok {
		return http.StatusForbidden, "the security token included in the request is invalid"
	}
	if creds.SessionToken != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Amz-Security-Token")), []byte(creds.SessionToken)) != 1 {
		return http.StatusForbidden, "the security token included in the request is invalid"
	}
	raw, _ := io.ReadAll(r.Body) // the core has read it already and left a copy
	sum := sha256.Sum256(raw)
	want, err := resign(r, h, raw, creds, hex.EncodeToString(sum[:]), signedAt)
	if err != nil {
		return http.StatusForbidden, "cannot recompute the signature: " + err.Error()
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(h.signature)) != 1 {
		return http.StatusForbidden, "the request signature we calculated does not match the signature you provided"
	}
	return 0, ""
}

// resign signs a copy of r holding only its signed headers with creds, and
// returns the signature the SDK's signer computes for it.
func resign(r *http.Request, h authHeader, raw []byte, creds aws.Credentials, payloadHash string, signedAt time.Time) (string, error) {
	clone, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(raw)) //nolint:gosec // G704: a copy to sign, never sent
	if err != nil {
		return "", fmt.Errorf("rebuild request: %w", err)
	}
	clone.Host = r.Host
	clone.ContentLength = 0
	for _, name := range h.signedHeaders {
		switch name {
		case "host":
		case "content-length":
			clone.ContentLength = int64(len(raw))
		default:
			clone.Header[http.CanonicalHeaderKey(name)] = r.Header.Values(name)
		}
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, clone, payloadHash, h.service, h.region, signedAt); err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	got := authHeaderRE.FindStringSubmatch(clone.Header.Get("Authorization"))
	if got == nil || got[5] != strings.Join(h.signedHeaders, ";") {
		return "", fmt.Errorf("signed headers differ")
	}
	return got[6], nil
}

// quickSightCredentials are the credentials of accessKey: the configured
// long-term keys or a live STS session's.
func (s *Server) quickSightCredentials(accessKey string, o QuickSightOptions) (aws.Credentials, bool) {
	if accessKey == o.AccessKeyID {
		return aws.Credentials{AccessKeyID: o.AccessKeyID, SecretAccessKey: o.SecretAccessKey}, true
	}
	s.quickSight.mu.Lock()
	defer s.quickSight.mu.Unlock()
	sess, ok := s.quickSight.sessions[accessKey]
	if !ok || !s.clock.Now().Before(sess.expires) {
		return aws.Credentials{}, false
	}
	return aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: sess.secret, SessionToken: sess.token}, true
}

// quickSightRedeemEndpoint simulates opening an embed URL: the first GET
// within the redemption window starts the session, any later one is
// refused (403, as the other single-use redeemers answer a replay), as
// QuickSight refuses a reused URL.
func quickSightRedeemEndpoint(s *Server) endpoint {
	errorBody := func(status int, msg string) any { return map[string]any{"message": msg} }
	return endpoint{
		vendor:     "quickSight",
		method:     http.MethodGet,
		path:       QuickSightEmbedRedeemPath,
		queryBody:  true,
		emptyToken: map[string]any{},
		errorBody:  errorBody,
		issue: func(r *http.Request, body map[string]any, _ error) reply {
			code := stringField(body, "code")
			s.quickSight.mu.Lock()
			deadline, ok := s.quickSight.codes[code]
			delete(s.quickSight.codes, code)
			s.quickSight.mu.Unlock()
			if ok {
				s.forgetToken("http://" + r.Host + r.URL.RequestURI())
			}
			switch {
			case !ok:
				return reply{status: http.StatusForbidden, body: errorBody(0, "embed URL unknown or already used")}
			case !s.clock.Now().Before(deadline):
				return reply{status: http.StatusForbidden, body: errorBody(0, "embed URL expired")}
			}
			return reply{status: http.StatusOK, body: map[string]any{"session": "started"}}
		},
	}
}

// forgetToken drops token from the token store, so Validate says unknown
// once a single-use token is used.
func (s *Server) forgetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, token)
}

// stsEndpoint simulates AWS STS's AssumeRoleWithWebIdentity.
func stsEndpoint(s *Server, opts Options) endpoint {
	o := opts.QuickSight.withDefaults()
	errorBody := func(status int, msg string) any {
		code := "InvalidParameterValue"
		switch status {
		case http.StatusForbidden:
			code = "AccessDenied"
		case http.StatusTooManyRequests:
			code = "Throttling"
		case http.StatusBadRequest:
		default:
			if status >= 500 {
				code = "ServiceUnavailable"
			}
		}
		return stsError(code, msg)
	}
	return endpoint{
		vendor:       "sts",
		method:       http.MethodPost,
		path:         STSPath,
		exactPaths:   []string{"/"},
		formBodies:   true,
		secretFields: []string{"WebIdentityToken"},
		emptyToken:   rawBody{contentType: "text/xml", data: []byte("<AssumeRoleWithWebIdentityResponse/>")},
		errorBody:    errorBody,
		issue: func(r *http.Request, body map[string]any, decodeErr error) reply {
			switch {
			case decodeErr != nil || stringField(body, "Action") != "AssumeRoleWithWebIdentity" || stringField(body, "Version") != "2011-06-15":
				return reply{status: http.StatusBadRequest, body: stsError("InvalidAction", "only AssumeRoleWithWebIdentity, version 2011-06-15, is simulated")}
			case subtle.ConstantTimeCompare([]byte(stringField(body, "WebIdentityToken")), []byte(o.WebIdentityToken)) != 1:
				return reply{status: http.StatusBadRequest, body: stsError("InvalidIdentityToken", "the web identity token is not trusted")}
			case stringField(body, "RoleArn") != o.RoleARN:
				return reply{status: http.StatusForbidden, body: stsError("AccessDenied", "not authorized to perform sts:AssumeRoleWithWebIdentity")}
			case stringField(body, "RoleSessionName") == "":
				return reply{status: http.StatusBadRequest, body: stsError("ValidationError", "RoleSessionName is required")}
			}
			key := "ASIA" + strings.ToUpper(hex.EncodeToString([]byte(newToken("")[:8])))
			sess := stsSession{secret: newToken(""), token: newToken("sts_"), expires: s.clock.Now().Add(QuickSightSTSCredentialsLifetime)}
			s.quickSight.mu.Lock()
			if s.quickSight.sessions == nil {
				s.quickSight.sessions = map[string]stsSession{}
			}
			s.quickSight.sessions[key] = sess
			s.quickSight.assumed++
			s.quickSight.mu.Unlock()
			return reply{status: http.StatusOK, body: stsAssumeRoleResponse(o.RoleARN, stringField(body, "RoleSessionName"), key, sess)}
		},
	}
}

// stsAssumeRoleResponse is STS's XML answer to AssumeRoleWithWebIdentity.
func stsAssumeRoleResponse(roleARN, session, key string, sess stsSession) rawBody {
	type credentials struct {
		AccessKeyID     string `xml:"AccessKeyId"`
		SecretAccessKey string `xml:"SecretAccessKey"`
		SessionToken    string `xml:"SessionToken"`
		Expiration      string `xml:"Expiration"`
	}
	type user struct {
		Arn           string `xml:"Arn"`
		AssumedRoleID string `xml:"AssumedRoleId"`
	}
	type result struct {
		Credentials     credentials `xml:"Credentials"`
		AssumedRoleUser user        `xml:"AssumedRoleUser"`
		Audience        string      `xml:"Audience"`
	}
	out := struct {
		XMLName   xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleWithWebIdentityResponse"`
		Result    result   `xml:"AssumeRoleWithWebIdentityResult"`
		RequestID string   `xml:"ResponseMetadata>RequestId"`
	}{
		Result: result{
			Credentials: credentials{AccessKeyID: key, SecretAccessKey: sess.secret, SessionToken: sess.token,
				Expiration: sess.expires.UTC().Format(time.RFC3339)},
			AssumedRoleUser: user{
				Arn:           strings.Replace(strings.Replace(roleARN, ":iam::", ":sts::", 1), ":role/", ":assumed-role/", 1) + "/" + session,
				AssumedRoleID: "AROAEXAMPLE:" + session,
			},
			Audience: "sts.amazonaws.com",
		},
		RequestID: newToken("")[:36],
	}
	data, _ := xml.Marshal(out) // plain strings always marshal
	return rawBody{contentType: "text/xml", data: data}
}

// stsError is STS's XML error answer.
func stsError(code, msg string) rawBody {
	out := struct {
		XMLName   xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
		Type      string   `xml:"Error>Type"`
		Code      string   `xml:"Error>Code"`
		Message   string   `xml:"Error>Message"`
		RequestID string   `xml:"RequestId"`
	}{Type: "Sender", Code: code, Message: msg, RequestID: newToken("")[:36]}
	data, _ := xml.Marshal(out) // plain strings always marshal
	return rawBody{contentType: "text/xml", data: data}
}
