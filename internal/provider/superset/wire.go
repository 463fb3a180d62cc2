package superset

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// This file holds Superset's wire formats: the bodies sent, the answers
// read and the error bodies turned into condition messages. The parsers
// are pure so they can be fuzzed; their errors never quote a body.

// loginRequest is the body of LoginPath. refresh asks for a refresh token
// too, as Superset's embedding guide does; the operator does not keep it.
type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Provider string `json:"provider"`
	Refresh  bool   `json:"refresh"`
}

func loginBody(username, password, authProvider string) ([]byte, error) {
	b, err := json.Marshal(loginRequest{Username: username, Password: password, Provider: authProvider, Refresh: true}) //nolint:gosec // G117: Superset's login takes the password in this body
	if err != nil {
		return nil, provider.Permanent(v1alpha1.ReasonInvalidRequest, "superset login cannot be encoded")
	}
	return b, nil
}

// guestRequest is the body of GuestTokenPath. rls is always sent, empty or
// not: Superset requires the field.
type guestRequest struct {
	User      guestUser  `json:"user"`
	Resources []resource `json:"resources"`
	RLS       []rlsRule  `json:"rls"`
}

type guestUser struct {
	Username   string            `json:"username"`
	FirstName  string            `json:"first_name,omitempty"`
	LastName   string            `json:"last_name,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

type resource struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

type rlsRule struct {
	Clause  string `json:"clause"`
	Dataset *int64 `json:"dataset,omitempty"`
}

// guestBody builds the guest token request, checking what the CRD schema
// also checks, since a provider.Request may be built in code.
func guestBody(p *v1alpha1.SupersetParams) ([]byte, error) {
	if p.User.Username == "" {
		return nil, provider.Permanent(v1alpha1.ReasonInvalidRequest, "spec.superset.user.username is required")
	}
	if len(p.Resources) == 0 {
		return nil, provider.Permanent(v1alpha1.ReasonInvalidRequest, "spec.superset.resources must name at least one dashboard")
	}
	if len(p.User.Attributes) > MaxUserAttributes {
		return nil, provider.Permanent(v1alpha1.ReasonInvalidRequest, "spec.superset.user.attributes has %d entries, more than %d", len(p.User.Attributes), MaxUserAttributes)
	}
	b := guestRequest{User: guestUser{Username: p.User.Username, FirstName: p.User.FirstName, LastName: p.User.LastName,
		Attributes: p.User.Attributes},
		Resources: make([]resource, 0, len(p.Resources)), RLS: make([]rlsRule, 0, len(p.RLS))}
	for i, r := range p.Resources {
		typ := r.Type
		if typ == "" {
			typ = DefaultResourceType
		}
		if typ != DefaultResourceType || r.ID == "" {
			return nil, provider.Permanent(v1alpha1.ReasonInvalidRequest, "spec.superset.resources[%d] must be a dashboard with an id", i)
		}
		b.Resources = append(b.Resources, resource{Type: typ, ID: r.ID})
	}
	for i, r := range p.RLS {
		if r.Clause == "" {
			return nil, provider.Permanent(v1alpha1.ReasonInvalidRequest, "spec.superset.rls[%d].clause is required", i)
		}
		rule := rlsRule{Clause: r.Clause}
		if r.Dataset != nil {
			if *r.Dataset < 1 {
				return nil, provider.Permanent(v1alpha1.ReasonInvalidRequest, "spec.superset.rls[%d].dataset must be a positive dataset ID", i)
			}
			rule.Dataset = r.Dataset
		}
		b.RLS = append(b.RLS, rule)
	}
	out, err := json.Marshal(b)
	if err != nil {
		return nil, provider.Permanent(v1alpha1.ReasonInvalidRequest, "superset guest token request cannot be encoded")
	}
	return out, nil
}

func bodyReader(body []byte) io.Reader {
	if body == nil {
		return http.NoBody
	}
	return bytes.NewReader(body)
}

// login is a cached login: the access token and when to stop using it.
type login struct {
	accessToken string
	// until is the access token's expiry less loginMargin; zero when the
	// token states no expiry, which is then used for one call only.
	until time.Time
}

// loginMargin is how long before its exp an access token stops being
// reused: a call started just before expiry must finish before it, even
// with the clocks of the operator and Superset a little apart.
const loginMargin = time.Minute

// parseLogin reads LoginPath's {"access_token": ...}.
func parseLogin(resp *provider.Response, now time.Time) (login, error) {
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := provider.DecodeJSON(resp.Body, &out); err != nil {
		return login{}, stepError("login", err)
	}
	if out.AccessToken == "" {
		return login{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "Superset login answer has no access_token")
	}
	if err := provider.CheckTokenSize("the Superset login's access_token", out.AccessToken); err != nil {
		return login{}, err
	}
	l := login{accessToken: out.AccessToken}
	if exp, ok := expiry(out.AccessToken, now); ok {
		l.until = exp.Add(-loginMargin)
	}
	return l, nil
}

// parseCSRF reads CSRFPath's {"result": ...} and the cookies the answer
// sets (the session the CSRF token belongs to), which the guest token call
// must send back.
func parseCSRF(resp *provider.Response) (string, []*http.Cookie, error) {
	cookies := (&http.Response{Header: resp.Header}).Cookies()
	var out struct {
		Result string `json:"result"`
	}
	if err := provider.DecodeJSON(resp.Body, &out); err != nil {
		return "", cookies, stepError("CSRF token", err)
	}
	if out.Result == "" {
		return "", cookies, provider.Transient(v1alpha1.ReasonInvalidResponse, "Superset CSRF token answer has no result")
	}
	return out.Result, cookies, nil
}

// parseGuest reads GuestTokenPath's {"token": ...}: a JWT whose exp is the
// guest token's expiry, read without verifying the signature (it only
// schedules renewal).
func parseGuest(resp *provider.Response, now time.Time) (provider.Token, error) {
	var out struct {
		Token string `json:"token"`
	}
	if err := provider.DecodeJSON(resp.Body, &out); err != nil {
		return provider.Token{}, stepError("guest token", err)
	}
	if out.Token == "" {
		return provider.Token{}, provider.Transient(v1alpha1.ReasonInvalidResponse, "Superset guest token answer has no token")
	}
	exp, ok := provider.JWTExpiry(out.Token)
	if !ok {
		return provider.Token{Value: out.Token}, provider.Transient(v1alpha1.ReasonInvalidResponse,
			"Superset guest token is not a JWT with an exp claim, so its expiry is unknown")
	}
	return provider.Token{Value: out.Token, IssuedAt: now, ExpiresAt: exp}, nil
}

// maxDetailParts bounds how many field errors of a validation answer are
// quoted.
const maxDetailParts = 4

// MaxUserAttributes bounds spec.superset.user.attributes, as the CRD
// schema does, for requests built in code.
const MaxUserAttributes = 32

// errorDetail reads Superset's error bodies into one short line:
// {"message": "..."} and {"message": {"field": ["..."]}} (its REST API),
// {"message": ["..."]} (a marshmallow ValidationError without a field, as a
// guest token validator hook's refusal gives), {"errors": [{"message":
// "..."}]} (its own exceptions) and {"msg": "..."} (a refused access token).
func errorDetail(body []byte) string {
	var e struct {
		Message json.RawMessage `json:"message"`
		Errors  []struct {
			Message string `json:"message"`
		} `json:"errors"`
		Msg string `json:"msg"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	var msg string
	if json.Unmarshal(e.Message, &msg) == nil && strings.TrimSpace(msg) != "" {
		return provider.Detail(msg)
	}
	var list []any
	if json.Unmarshal(e.Message, &list) == nil && len(list) > 0 {
		var parts []string
		flatten("", list, &parts)
		return provider.Detail(strings.Join(parts[:min(len(parts), maxDetailParts)], "; "))
	}
	var fields map[string]any
	if json.Unmarshal(e.Message, &fields) == nil && len(fields) > 0 {
		var parts []string
		flatten("", fields, &parts)
		return provider.Detail(strings.Join(parts[:min(len(parts), maxDetailParts)], "; "))
	}
	for _, item := range e.Errors {
		if strings.TrimSpace(item.Message) != "" {
			return provider.Detail(item.Message)
		}
	}
	return provider.Detail(e.Msg)
}

// flatten turns a validation answer such as {"resources": {"0": {"type":
// ["Must be one of: dashboard."]}}} into "resources.0.type: Must be one of:
// dashboard.", in key order.
func flatten(path string, v any, parts *[]string) {
	if len(*parts) >= maxDetailParts {
		return
	}
	switch x := v.(type) {
	case string:
		*parts = append(*parts, strings.TrimPrefix(path+": "+x, ": "))
	case []any:
		for _, item := range x {
			flatten(path, item, parts)
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			flatten(strings.TrimPrefix(path+"."+k, "."), x[k], parts)
		}
	}
}
