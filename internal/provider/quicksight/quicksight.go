// Package quicksight issues Amazon QuickSight embed URLs through the AWS SDK
// for Go v2: GenerateEmbedUrlForRegisteredUser for QuickSight users and
// GenerateEmbedUrlForAnonymousUser for viewers without one, signed with
// SigV4 by the SDK. Credentials come from Secrets or, for a
// ClusterEmbedProvider, from the operator pod's web identity (IAM Roles for
// Service Accounts) exchanged with STS. Every call, STS's included, goes
// through the HTTP client the operator built for the provider.
//
// An embed URL can be redeemed once, within five minutes of its issue, so
// the provider is single-use: the token endpoint calls QuickSight for every
// caller and never stores or shares a URL.
package quicksight

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/quicksight"
	"github.com/aws/aws-sdk-go-v2/service/quicksight/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// URLRedemptionWindow is how long QuickSight accepts an embed URL after
// issuing it; the session it starts then lasts sessionLifetimeInMinutes.
// The token's ExpiresAt is the end of this window: after it the URL is
// useless, whatever the session's lifetime.
const URLRedemptionWindow = 5 * time.Minute

// Environment variables EKS sets in a pod whose service account is
// annotated with an IAM role (IAM Roles for Service Accounts).
const (
	// EnvRoleARN names the role the pod's web identity may assume.
	EnvRoleARN = "AWS_ROLE_ARN"
	// EnvWebIdentityTokenFile names the projected service account token
	// STS accepts as the web identity.
	EnvWebIdentityTokenFile = "AWS_WEB_IDENTITY_TOKEN_FILE" //nolint:gosec // G101: an environment variable name, not a credential
)

// RoleSessionName names the operator's sessions in CloudTrail.
const RoleSessionName = "embed-token-operator"

// maxCachedRoles bounds the pod identity credential caches one Provider
// keeps, one per (role, STS endpoint, region); beyond it they are all
// dropped and rebuilt on use.
const maxCachedRoles = 64

// maxDetail bounds the part of an AWS error message shown in a condition.
const maxDetail = 256

// Options configure a Provider; the zero value reads the process
// environment, which is what the manager wants.
type Options struct {
	// Getenv reads EnvRoleARN and EnvWebIdentityTokenFile; nil means
	// os.Getenv. Tests set it to point at their own token file.
	Getenv func(string) string
}

// Provider is the QuickSight implementation of provider.Provider. It is
// safe for concurrent use; it caches the credentials of assumed roles, which
// are the operator pod's own and so shared by every provider naming the
// same role.
type Provider struct {
	getenv func(string) string

	mu    sync.Mutex
	roles map[roleKey]*aws.CredentialsCache
}

// roleKey identifies one assumed role's credentials: the same role through
// another STS endpoint or region is another session.
type roleKey struct {
	roleARN, stsEndpoint, region, tokenFile string
}

// New returns the QuickSight provider, reading the pod's web identity from
// the process environment.
func New() *Provider { return NewWithOptions(Options{}) }

// NewWithOptions returns a QuickSight provider configured by o.
func NewWithOptions(o Options) *Provider {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	return &Provider{getenv: getenv, roles: map[roleKey]*aws.CredentialsCache{}}
}

// SecretRefs implements provider.Provider: the references of
// spec.quickSight, the access keys when they come from Secrets.
func (p *Provider) SecretRefs(config *v1alpha1.EmbedProviderSpec) []v1alpha1.SecretKeySelector {
	return provider.SecretRefsIn(config.QuickSight)
}

// SingleUse implements provider.SingleUser: every embed URL can be
// redeemed once.
func (p *Provider) SingleUse(*v1alpha1.EmbedProviderSpec) bool { return true }

// Validate implements provider.ConfigValidator: the access keys can be read,
// or the pod has a web identity to assume the role with.
func (p *Provider) Validate(ctx context.Context, config *v1alpha1.EmbedProviderSpec, creds provider.CredentialReader) error {
	cfg := config.QuickSight
	if cfg == nil {
		return provider.Permanent(v1alpha1.ReasonVendorMismatch, "quickSight provider needs spec.quickSight")
	}
	if cfg.Credentials.PodIdentity != nil {
		_, _, err := p.webIdentity(cfg.Credentials.PodIdentity)
		return err
	}
	_, err := secretCredentials(ctx, cfg.Credentials.Secret, creds)
	return err
}

// Issue implements provider.Provider: one GenerateEmbedUrl call.
func (p *Provider) Issue(ctx context.Context, req provider.Request) (provider.Token, error) {
	ctx = provider.WithVendor(ctx, v1alpha1.VendorQuickSight)
	cfg, params := req.Config.QuickSight, req.Params.QuickSight
	if cfg == nil || params == nil {
		return provider.Token{}, provider.Permanent(v1alpha1.ReasonVendorMismatch, "quickSight provider needs spec.quickSight on both provider and request")
	}
	creds, secrets, err := p.credentials(ctx, cfg, req)
	if err != nil {
		return provider.Token{}, err
	}
	client := quicksight.New(quicksight.Options{
		Region:       cfg.Region,
		Credentials:  creds,
		HTTPClient:   sdkClient{},
		BaseEndpoint: optional(cfg.Endpoint),
		Retryer:      aws.NopRetryer{}, // the controller retries, with its own backoff
		HTTPSignerV4: clockSigner{now: req.Now, signer: v4.NewSigner()},
	})
	ctx = withHTTPClient(ctx, req.HTTPClient)

	var url *string
	switch {
	case params.RegisteredUser != nil:
		out, callErr := client.GenerateEmbedUrlForRegisteredUser(ctx, RegisteredUserInput(cfg, params))
		if callErr == nil {
			url = out.EmbedUrl
		}
		err = callErr
	case params.Anonymous != nil:
		out, callErr := client.GenerateEmbedUrlForAnonymousUser(ctx, AnonymousUserInput(cfg, params))
		if callErr == nil {
			url = out.EmbedUrl
		}
		err = callErr
	default:
		return provider.Token{}, provider.Permanent(v1alpha1.ReasonInvalidRequest, "spec.quickSight needs registeredUser or anonymous")
	}
	if err != nil {
		return provider.Token{}, provider.Redact(classify(err), secrets...)
	}
	if url == nil || *url == "" {
		return provider.Token{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "QuickSight answered without an EmbedUrl")
	}
	if err := provider.CheckTokenSize("QuickSight's EmbedUrl", *url); err != nil {
		return provider.Token{}, err
	}
	// QuickSight states no expiry: the URL must be redeemed within
	// URLRedemptionWindow of its issue, counted from when the call was
	// sent so the recorded expiry is never late.
	return provider.Token{Value: *url, IssuedAt: req.Now, ExpiresAt: req.Now.Add(URLRedemptionWindow)}, nil
}

// RegisteredUserInput is the GenerateEmbedUrlForRegisteredUser request for
// params, which must have RegisteredUser set.
func RegisteredUserInput(cfg *v1alpha1.QuickSightProvider, params *v1alpha1.QuickSightParams) *quicksight.GenerateEmbedUrlForRegisteredUserInput {
	user := params.RegisteredUser
	in := &quicksight.GenerateEmbedUrlForRegisteredUserInput{
		AwsAccountId:             aws.String(cfg.AWSAccountID),
		UserArn:                  aws.String(UserARN(cfg, user)),
		AllowedDomains:           params.AllowedDomains,
		SessionLifetimeInMinutes: params.SessionLifetimeInMinutes,
		ExperienceConfiguration:  registeredExperience(user.Experience),
	}
	return in
}

// UserARN is the registered user's ARN: its userARN, or the one its
// userName has in the provider's account, in the namespace the user names
// (else the provider's, else "default") and its identity region (else the
// provider's region).
func UserARN(cfg *v1alpha1.QuickSightProvider, user *v1alpha1.QuickSightRegisteredUser) string {
	if user.UserARN != "" {
		return user.UserARN
	}
	region := cmp.Or(user.IdentityRegion, cfg.Region)
	return "arn:" + partition(region) + ":quicksight:" + region + ":" + cfg.AWSAccountID +
		":user/" + cmp.Or(user.Namespace, cfg.Namespace, "default") + "/" + user.UserName
}

// partition is the AWS partition of region: aws-cn for China, aws-us-gov
// for GovCloud, aws elsewhere.
func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

// AnonymousUserInput is the GenerateEmbedUrlForAnonymousUser request for
// params, which must have Anonymous set. The namespace is the request's,
// else the provider's, else QuickSight's "default".
func AnonymousUserInput(cfg *v1alpha1.QuickSightProvider, params *v1alpha1.QuickSightParams) *quicksight.GenerateEmbedUrlForAnonymousUserInput {
	anon := params.Anonymous
	namespace := cmp.Or(anon.Namespace, cfg.Namespace, "default")
	in := &quicksight.GenerateEmbedUrlForAnonymousUserInput{
		AwsAccountId:             aws.String(cfg.AWSAccountID),
		Namespace:                aws.String(namespace),
		AuthorizedResourceArns:   anon.AuthorizedResourceARNs,
		AllowedDomains:           params.AllowedDomains,
		SessionLifetimeInMinutes: params.SessionLifetimeInMinutes,
		ExperienceConfiguration:  anonymousExperience(anon.Experience),
	}
	for _, tag := range anon.SessionTags {
		in.SessionTags = append(in.SessionTags, types.SessionTag{Key: aws.String(tag.Key), Value: aws.String(tag.Value)})
	}
	return in
}

func registeredExperience(e v1alpha1.QuickSightRegisteredExperience) *types.RegisteredUserEmbeddingExperienceConfiguration {
	out := &types.RegisteredUserEmbeddingExperienceConfiguration{}
	switch {
	case e.Dashboard != nil:
		out.Dashboard = &types.RegisteredUserDashboardEmbeddingConfiguration{InitialDashboardId: aws.String(e.Dashboard.InitialDashboardID)}
	case e.Console != nil:
		out.QuickSightConsole = &types.RegisteredUserQuickSightConsoleEmbeddingConfiguration{InitialPath: optional(e.Console.InitialPath)}
	case e.QSearchBar != nil:
		out.QSearchBar = &types.RegisteredUserQSearchBarEmbeddingConfiguration{InitialTopicId: optional(e.QSearchBar.InitialTopicID)}
	}
	return out
}

func anonymousExperience(e v1alpha1.QuickSightAnonymousExperience) *types.AnonymousUserEmbeddingExperienceConfiguration {
	out := &types.AnonymousUserEmbeddingExperienceConfiguration{}
	switch {
	case e.Dashboard != nil:
		out.Dashboard = &types.AnonymousUserDashboardEmbeddingConfiguration{InitialDashboardId: aws.String(e.Dashboard.InitialDashboardID)}
	case e.QSearchBar != nil:
		out.QSearchBar = &types.AnonymousUserQSearchBarEmbeddingConfiguration{InitialTopicId: aws.String(e.QSearchBar.InitialTopicID)}
	}
	return out
}

// credentials returns what signs the call, and the strings an error must
// never show (the access keys read from Secrets).
func (p *Provider) credentials(ctx context.Context, cfg *v1alpha1.QuickSightProvider, req provider.Request) (aws.CredentialsProvider, []string, error) {
	if id := cfg.Credentials.PodIdentity; id != nil {
		if req.ProviderNamespace != "" {
			return nil, nil, provider.Permanent(v1alpha1.ReasonProviderInvalid,
				"spec.quickSight.credentials.podIdentity is the operator's own IAM identity: only a ClusterEmbedProvider may use it; "+
					"an EmbedProvider must name access keys in spec.quickSight.credentials.secret")
		}
		roleARN, tokenFile, err := p.webIdentity(id)
		if err != nil {
			return nil, nil, err
		}
		return p.assumedRole(roleKey{roleARN: roleARN, stsEndpoint: id.STSEndpoint, region: cfg.Region, tokenFile: tokenFile}), nil, nil
	}
	static, err := secretCredentials(ctx, cfg.Credentials.Secret, req.Credentials)
	if err != nil {
		return nil, nil, err
	}
	return credentials.StaticCredentialsProvider{Value: static},
		[]string{static.AccessKeyID, static.SecretAccessKey, static.SessionToken}, nil
}

// secretCredentials reads access keys from their Secrets.
func secretCredentials(ctx context.Context, s *v1alpha1.AWSSecretCredentials, creds provider.CredentialReader) (aws.Credentials, error) {
	if s == nil {
		return aws.Credentials{}, provider.Permanent(v1alpha1.ReasonProviderInvalid, "spec.quickSight.credentials needs secret or podIdentity")
	}
	read := func(ref v1alpha1.SecretKeySelector, what string) (string, error) {
		raw, err := creds.Read(ctx, ref)
		if err != nil {
			return "", err
		}
		v := strings.TrimSpace(string(raw))
		if v == "" {
			return "", provider.Permanent(v1alpha1.ReasonInvalidCredentials, "the %s in Secret %s key %s is empty", what, ref.Name, ref.Key)
		}
		return v, nil
	}
	var out aws.Credentials
	var err error
	if out.AccessKeyID, err = read(s.AccessKeyIDSecretRef, "access key ID"); err != nil {
		return aws.Credentials{}, err
	}
	if out.SecretAccessKey, err = read(s.SecretAccessKeySecretRef, "secret access key"); err != nil {
		return aws.Credentials{}, err
	}
	if s.SessionTokenSecretRef != nil {
		if out.SessionToken, err = read(*s.SessionTokenSecretRef, "session token"); err != nil {
			return aws.Credentials{}, err
		}
	}
	out.Source = "Secret"
	return out, nil
}

// webIdentity is the role to assume and the pod's web identity token file.
func (p *Provider) webIdentity(id *v1alpha1.AWSPodIdentity) (roleARN, tokenFile string, err error) {
	roleARN = cmp.Or(id.RoleARN, p.getenv(EnvRoleARN))
	tokenFile = p.getenv(EnvWebIdentityTokenFile)
	switch {
	case tokenFile == "":
		return "", "", provider.Permanent(v1alpha1.ReasonCredentialsNotFound,
			"the operator pod has no web identity ($%s is not set): annotate its service account with eks.amazonaws.com/role-arn", EnvWebIdentityTokenFile)
	case roleARN == "":
		return "", "", provider.Permanent(v1alpha1.ReasonCredentialsNotFound,
			"no role to assume: set spec.quickSight.credentials.podIdentity.roleARN, or $%s in the operator pod", EnvRoleARN)
	}
	return roleARN, tokenFile, nil
}

// assumedRole returns the cached credentials of one role, assumed with the
// pod's web identity when they are missing or about to expire.
func (p *Provider) assumedRole(key roleKey) aws.CredentialsProvider {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.roles[key]; ok {
		return c
	}
	if len(p.roles) >= maxCachedRoles {
		clear(p.roles)
	}
	stsClient := sts.New(sts.Options{
		Region:       key.region,
		HTTPClient:   sdkClient{},
		BaseEndpoint: optional(key.stsEndpoint),
		Retryer:      aws.NopRetryer{},
	})
	web := stscreds.NewWebIdentityRoleProvider(stsClient, key.roleARN, stscreds.IdentityTokenFile(key.tokenFile),
		func(o *stscreds.WebIdentityRoleOptions) { o.RoleSessionName = RoleSessionName })
	c := aws.NewCredentialsCache(stsCredentials{web}, func(o *aws.CredentialsCacheOptions) {
		o.ExpiryWindow = time.Minute
	})
	p.roles[key] = c
	return c
}

// clockSigner signs with SigV4 at the call's time, from the controller's
// clock, rather than the SDK's own reading of the system clock, so the
// signing time is the one the rest of the call uses.
type clockSigner struct {
	now    time.Time
	signer *v4.Signer
}

// SignHTTP implements quicksight.HTTPSignerV4.
func (s clockSigner) SignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string,
	sdkTime time.Time, optFns ...func(*v4.SignerOptions)) error {
	at := s.now
	if at.IsZero() {
		at = sdkTime
	}
	if err := s.signer.SignHTTP(ctx, creds, r, payloadHash, service, region, at, optFns...); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	return nil
}

// stsCredentials marks the errors of assuming a role, so classify can tell
// STS's refusal from QuickSight's.
type stsCredentials struct{ aws.CredentialsProvider }

func (s stsCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := s.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return c, &assumeRoleError{err: err}
	}
	return c, nil
}

// assumeRoleError is a failure of AssumeRoleWithWebIdentity.
type assumeRoleError struct{ err error }

func (e *assumeRoleError) Error() string { return "assume role with web identity: " + e.err.Error() }
func (e *assumeRoleError) Unwrap() error { return e.err }

// classify turns an SDK error into a provider.Error: the operator's own
// transport errors as they are, AWS error answers by their HTTP status (as
// every vendor's), with the AWS error code and a bounded message as detail.
func classify(err error) error {
	var assume *assumeRoleError
	stsFailed := errors.As(err, &assume)
	var pe *provider.Error
	var resp *awshttp.ResponseError
	var invalid *smithy.InvalidParamsError
	var unserializable *smithy.SerializationError
	switch {
	case errors.As(err, &pe):
		if stsFailed {
			return &provider.Error{Reason: pe.Reason, Message: "AWS STS: " + pe.Message, Permanent: pe.Permanent, RetryAfter: pe.RetryAfter, Err: pe.Err}
		}
		return pe
	case errors.As(err, &resp):
		what := "QuickSight"
		if stsFailed {
			what = "AWS STS (AssumeRoleWithWebIdentity)"
		}
		e := provider.Classify(provider.CheckStatus(&provider.Response{Status: resp.HTTPStatusCode(), Header: resp.Response.Header}, apiErrorDetail(err)))
		e.Message = what + ": " + e.Message
		if stsFailed && e.Reason == v1alpha1.ReasonVendorRejected {
			// STS refuses a web identity it does not trust with 400
			// (InvalidIdentityToken): the credentials are what is wrong.
			e.Reason = v1alpha1.ReasonVendorUnauthorized
		}
		return e
	case errors.As(err, &invalid):
		// The SDK checks required fields before sending anything.
		return provider.Permanent(v1alpha1.ReasonInvalidRequest, "spec.quickSight cannot be sent: %s", bounded(invalid.Error()))
	case errors.As(err, &unserializable):
		// An empty path parameter: nothing was sent.
		return provider.Permanent(v1alpha1.ReasonInvalidRequest, "spec.quickSight cannot be sent: %s", bounded(unserializable.Error()))
	case stsFailed:
		return provider.Transient(v1alpha1.ReasonCredentialsNotFound, "AWS credentials from the pod's web identity failed: %s", bounded(assume.err.Error()))
	}
	return &provider.Error{Reason: v1alpha1.ReasonVendorUnavailable, Message: "QuickSight call failed", Err: errors.New(bounded(err.Error()))}
}

// apiErrorDetail is the AWS error code and message, bounded.
func apiErrorDetail(err error) string {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return ""
	}
	detail := api.ErrorCode()
	if msg := api.ErrorMessage(); msg != "" {
		detail += ": " + msg
	}
	return bounded(detail)
}

func bounded(s string) string {
	if len(s) <= maxDetail {
		return s
	}
	return strings.ToValidUTF8(s[:maxDetail], "") + "…"
}

// httpClientKey carries the provider's HTTP client to sdkClient.
type httpClientKey struct{}

func withHTTPClient(ctx context.Context, c *http.Client) context.Context {
	return context.WithValue(ctx, httpClientKey{}, c)
}

// sdkClient is the SDK's HTTP client: it sends every request, QuickSight's
// and STS's, with the provider's HTTP client the call's context carries,
// through provider.Do, so the egress guard, the CA bundle, the timeout, the
// response size bound, the clock skew metric and the operator's transport
// error messages all apply. Cached role credentials refreshed during a
// later call use that call's client.
type sdkClient struct{}

// Do implements the SDK's HTTPClient interface.
func (sdkClient) Do(r *http.Request) (*http.Response, error) {
	c, _ := r.Context().Value(httpClientKey{}).(*http.Client)
	if c == nil {
		return nil, errors.New("quicksight: no HTTP client on the call's context")
	}
	resp, err := provider.Do(r.Context(), c, r)
	if err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", resp.Status, http.StatusText(resp.Status)),
		StatusCode:    resp.Status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        resp.Header,
		Body:          io.NopCloser(bytes.NewReader(resp.Body)),
		ContentLength: int64(len(resp.Body)),
		Request:       r,
	}, nil
}

// optional is nil for "", else a pointer to s.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
