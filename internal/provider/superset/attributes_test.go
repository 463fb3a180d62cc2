package superset_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider/superset"
	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
	pt "github.com/embedtokens/embed-token-operator/test/harness/providertest"
)

// TestGuestBodyWithAttributes checks the guest token body byte for byte
// against Superset's guest token schema: user.attributes is a mapping of
// names to values (UserSchema.attributes), sent with sorted names.
func TestGuestBodyWithAttributes(t *testing.T) {
	p := params()
	p.User.Attributes = map[string]string{"tenant": "acme", "region": "eu-west"}
	got, err := superset.GuestBody(p)
	want := `{"user":{"username":"guest-alice","first_name":"Alice","last_name":"Liddell",` +
		`"attributes":{"region":"eu-west","tenant":"acme"}},` +
		`"resources":[{"type":"dashboard","id":"7b3e-dash"}],"rls":[{"clause":"tenant_id = 'acme'"}]}`
	if err != nil || string(got) != want {
		t.Errorf("guest body\n%s (%v)\nwant\n%s", got, err, want)
	}
	p.User.Attributes = nil
	if got, _ := superset.GuestBody(p); strings.Contains(string(got), "attributes") {
		t.Errorf("a guest without attributes sends %s", got)
	}
	p.User.Attributes = map[string]string{}
	for i := range superset.MaxUserAttributes + 1 {
		p.User.Attributes[string(rune('a'+i%26))+strings.Repeat("x", i)] = "v"
	}
	_, err = superset.GuestBody(p)
	pt.CheckError(t, err, pt.Want{Reason: v1alpha1.ReasonInvalidRequest, Permanent: true, Message: "more than 32"})
}

// TestGuestTokenValidatorHook runs a Superset whose guest token validator
// hook sees the attributes and refuses one guest: the refusal, a
// {"message": [...]} body, reaches the error message instead of only
// "HTTP 400", and a credential it echoes is redacted.
func TestGuestTokenValidatorHook(t *testing.T) {
	var seen map[string]any
	w := newWire(t, vendorsim.Options{Superset: vendorsim.SupersetOptions{
		GuestTokenValidator: func(body map[string]any) error {
			user, _ := body["user"].(map[string]any)
			seen, _ = user["attributes"].(map[string]any)
			if seen["tenant"] != "acme" {
				return errors.New("tenant " + seen["tenant"].(string) + " may not embed; password " + password)
			}
			return nil
		}}})
	for _, tc := range []struct {
		name, tenant string
		want         pt.Want
	}{
		{"the hook admits", "acme", pt.Want{}},
		{"the hook's refusal reaches the message", "globex", pt.Want{Reason: v1alpha1.ReasonVendorRejected, Permanent: true,
			Message: "Superset guest token: vendor answered HTTP 400: tenant globex may not embed; password"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := params()
			p.User.Attributes = map[string]string{"tenant": tc.tenant}
			tok, err := superset.New().Issue(context.Background(), request(t, w.url, p))
			pt.CheckError(t, err, tc.want, password)
			if want := map[string]any{"tenant": tc.tenant}; !reflect.DeepEqual(seen, want) {
				t.Errorf("the hook saw attributes %v, want %v", seen, want)
			}
			if err == nil && w.sim.Validate(tok.Value) != vendorsim.ValidityValid {
				t.Errorf("token %v is not valid at the simulator", tok)
			}
		})
	}
}
