// Package looker signs Looker SSO embed URLs locally with the embed secret:
// no HTTP call is made. A signed URL opens one Looker embed session; Looker
// refuses its nonce a second time, so the tokens are single-use.
//
// The URL is built as Looker's published algorithm and its official Embed
// SDK (looker-open-source/embed-sdk, server_utils/auth_utils.ts) build it:
// every parameter is a JSON value; the signature is the base64 HMAC-SHA1,
// keyed with the embed secret, of the newline-joined host, embed path,
// nonce, time, session_length, external_user_id, permissions, models,
// group_ids, external_group_id and user_attributes (these three only when
// set) and access_filters.
package looker

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // Looker's signature is HMAC-SHA1; the vendor decides the algorithm.
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// EmbedPathPrefix starts every signed URL's path; the URL-encoded target
// path follows it.
const EmbedPathPrefix = "/login/embed/"

// maxSecretBytes bounds the embed secret read from a Secret: Looker's are
// 64 hex digits.
const maxSecretBytes = 4 << 10

// Provider is the Looker implementation of provider.Provider,
// provider.ConfigValidator and provider.SingleUser. It keeps no state.
type Provider struct {
	// nonce returns a new nonce for each URL; tests fix it.
	nonce func() string
}

// New returns the Looker provider.
func New() *Provider { return &Provider{nonce: newNonce} }

// SecretRefs implements provider.Provider: the references of spec.looker.
func (p *Provider) SecretRefs(config *v1alpha1.EmbedProviderSpec) []v1alpha1.SecretKeySelector {
	return provider.SecretRefsIn(config.Looker)
}

// SingleUse implements provider.SingleUser: Looker redeems each signed
// URL's nonce once.
func (p *Provider) SingleUse(*v1alpha1.EmbedProviderSpec) bool { return true }

// Validate implements provider.ConfigValidator: the URL names a host and
// the embed secret is readable and not blank.
func (p *Provider) Validate(ctx context.Context, config *v1alpha1.EmbedProviderSpec, creds provider.CredentialReader) error {
	if config.Looker == nil {
		return provider.Permanent(v1alpha1.ReasonVendorMismatch, "looker provider needs spec.looker")
	}
	if _, _, err := instance(config.Looker.URL); err != nil {
		return err
	}
	_, err := secret(ctx, config.Looker, creds)
	return err
}

// Issue implements provider.Provider: the token is the signed embed URL.
// It expires when the session it opens would end (time + session_length);
// Looker also refuses to redeem it once its time is more than a few minutes
// old, which a caller fetching it at page load never sees.
func (p *Provider) Issue(ctx context.Context, req provider.Request) (provider.Token, error) {
	cfg, params := req.Config.Looker, req.Params.Looker
	if cfg == nil || params == nil {
		return provider.Token{}, provider.Permanent(v1alpha1.ReasonVendorMismatch, "looker provider needs spec.looker on both provider and request")
	}
	scheme, host, err := instance(cfg.URL)
	if err != nil {
		return provider.Token{}, err
	}
	key, err := secret(ctx, cfg, req.Credentials)
	if err != nil {
		return provider.Token{}, err
	}
	session := SessionLength(req.Lifetime)
	u, err := Sign(key, scheme, host, params, p.nonce(), req.Now.Unix(), session)
	if err != nil {
		return provider.Token{}, err
	}
	if err := provider.CheckTokenSize("the signed Looker embed URL", u); err != nil {
		return provider.Token{}, err
	}
	issued := time.Unix(req.Now.Unix(), 0).UTC()
	return provider.Token{Value: u, IssuedAt: issued, ExpiresAt: issued.Add(time.Duration(session) * time.Second)}, nil
}

// SessionLength is the session_length, in whole seconds, for a requested
// lifetime: at least 1, at most Looker's 30 days, and 1h when unset.
func SessionLength(lifetime time.Duration) int64 {
	if lifetime <= 0 {
		lifetime = v1alpha1.DefaultLifetime
	}
	return min(max(int64(lifetime/time.Second), 1), v1alpha1.MaxLookerSessionLength)
}

// instance splits the provider's URL into the scheme browsers use and the
// host (with its port) that is signed.
func instance(raw string) (scheme, host string, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", "", provider.Permanent(v1alpha1.ReasonProviderInvalid, "spec.looker.url must be an absolute http(s) URL")
	}
	return u.Scheme, u.Host, nil
}

// secret reads the embed secret, without surrounding whitespace (Looker's
// secrets have none; a Secret made from a file often ends in a newline).
func secret(ctx context.Context, cfg *v1alpha1.LookerProvider, creds provider.CredentialReader) ([]byte, error) {
	raw, err := creds.Read(ctx, cfg.EmbedSecretSecretRef)
	if err != nil {
		return nil, err
	}
	key := bytes.TrimSpace(raw)
	switch {
	case len(key) == 0:
		return nil, provider.Permanent(v1alpha1.ReasonInvalidCredentials, "the Looker embed secret is empty")
	case len(key) > maxSecretBytes:
		return nil, provider.Permanent(v1alpha1.ReasonInvalidCredentials, "the Looker embed secret is %d bytes, more than the %d accepted", len(key), maxSecretBytes)
	}
	return key, nil
}

// Sign builds the signed embed URL for params on scheme://host, with the
// given nonce, time (Unix seconds) and session length (seconds). Its
// parameters and their order are the official Embed SDK's.
func Sign(key []byte, scheme, host string, p *v1alpha1.LookerParams, nonce string, unix, sessionLength int64) (string, error) {
	if !strings.HasPrefix(p.TargetPath, "/embed/") {
		return "", provider.Permanent(v1alpha1.ReasonInvalidRequest, "spec.looker.targetPath must start with /embed/")
	}
	accessFilters, err := accessFilters(p.AccessFilters)
	if err != nil {
		return "", err
	}
	forceLogout := p.ForceLogoutLogin == nil || *p.ForceLogoutLogin
	v := values{
		{"external_user_id", jsonString(p.ExternalUserID)},
		{"first_name", optional(p.FirstName != "", jsonString(p.FirstName))},
		{"last_name", optional(p.LastName != "", jsonString(p.LastName))},
		{"permissions", jsonValue(orEmpty(p.Permissions))},
		{"models", jsonValue(orEmpty(p.Models))},
		{"group_ids", optional(len(p.GroupIDs) > 0, jsonValue(p.GroupIDs))},
		{"user_attributes", optional(len(p.UserAttributes) > 0, jsonValue(p.UserAttributes))},
		{"external_group_id", optional(p.ExternalGroupID != "", jsonString(p.ExternalGroupID))},
		{"access_filters", accessFilters},
		{"force_logout_login", strconv.FormatBool(forceLogout)},
		{"session_length", strconv.FormatInt(sessionLength, 10)},
		{"nonce", jsonString(nonce)},
		{"time", strconv.FormatInt(unix, 10)},
	}
	embedPath := EmbedPathPrefix + EncodeURIComponent(p.TargetPath)
	v = append(v, field{"signature", Signature(key, StringToSign(host, embedPath, v.get))})
	return scheme + "://" + host + embedPath + "?" + v.encode(), nil
}

// StringToSign is Looker's string to sign: host, embed path and the JSON
// values of the signed parameters, newline-joined; group_ids,
// external_group_id and user_attributes take a line only when sent. get
// returns a parameter's value as sent, "" when it is not sent.
func StringToSign(host, embedPath string, get func(string) string) string {
	lines := []string{host, embedPath}
	for _, name := range []string{"nonce", "time", "session_length", "external_user_id", "permissions", "models"} {
		lines = append(lines, get(name))
	}
	for _, name := range []string{"group_ids", "external_group_id", "user_attributes"} {
		if v := get(name); v != "" {
			lines = append(lines, v)
		}
	}
	return strings.Join(append(lines, get("access_filters")), "\n")
}

// Signature is the base64 HMAC-SHA1 of stringToSign keyed with the embed
// secret.
func Signature(key []byte, stringToSign string) string {
	mac := hmac.New(sha1.New, key)
	mac.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// field is one query parameter; an empty value is not sent.
type field struct{ name, value string }

// values are the query parameters in the order they are sent.
type values []field

func (v values) get(name string) string {
	for _, f := range v {
		if f.name == name {
			return f.value
		}
	}
	return ""
}

// encode writes the query as the Embed SDK does: name=encodeURIComponent(value).
func (v values) encode() string {
	var b strings.Builder
	for _, f := range v {
		if f.value == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(f.name + "=" + EncodeURIComponent(f.value))
	}
	return b.String()
}

func optional(set bool, value string) string {
	if !set {
		return ""
	}
	return value
}

func orEmpty(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

// jsonValue writes v as JSON the way JavaScript's JSON.stringify does for
// the values used here: compact, with <, > and & left as they are. Its
// inputs (strings, string lists and maps, integers) always encode.
func jsonValue(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // strings, []string, []int64 and map[string]string cannot fail
	return strings.TrimSuffix(b.String(), "\n")
}

func jsonString(s string) string { return jsonValue(s) }

// accessFilters is the compact JSON of spec.looker.accessFilters, which
// must be an object, or {} when unset.
func accessFilters(raw *apiextensionsv1.JSON) (string, error) {
	if raw == nil || len(bytes.TrimSpace(raw.Raw)) == 0 || string(bytes.TrimSpace(raw.Raw)) == "null" {
		return "{}", nil
	}
	var out bytes.Buffer
	if err := json.Compact(&out, raw.Raw); err != nil || out.Bytes()[0] != '{' {
		return "", provider.Permanent(v1alpha1.ReasonInvalidRequest, "spec.looker.accessFilters must be a JSON object")
	}
	return out.String(), nil
}

// EncodeURIComponent escapes s as JavaScript's encodeURIComponent does,
// which the Embed SDK uses for the target path and every query value:
// everything but ASCII letters, digits and - _ . ! ~ * ' ( ) is
// percent-encoded as UTF-8.
func EncodeURIComponent(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// newNonce returns 128 random bits in hex, so no two URLs share a nonce.
func newNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails since Go 1.24
	return hex.EncodeToString(b)
}
