package main

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"

	"github.com/embedtokens/embed-token-operator/pkg/tokenclient"
)

// endpointFlags are the flags of endpoint mode.
type endpointFlags struct {
	url, template     string
	params            paramFlag
	tokenFile, caFile string
	// vary names a parameter whose value gets the reading's number
	// appended, so every reading is a call no cache can answer.
	vary string
}

// paramFlag collects repeated -param NAME=VALUE flags.
type paramFlag map[string]string

func (p *paramFlag) String() string { return fmt.Sprint(map[string]string(*p)) }

func (p *paramFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", v)
	}
	if *p == nil {
		*p = paramFlag{}
	}
	(*p)[name] = value
	return nil
}

// useEndpoint switches r to endpoint mode.
func (r *reader) useEndpoint(f endpointFlags) error {
	ns, name, ok := strings.Cut(f.template, "/")
	if !ok || ns == "" || name == "" {
		return fmt.Errorf("-template must be NAMESPACE/NAME, got %q", f.template)
	}
	if _, ok := f.params[f.vary]; f.vary != "" && !ok {
		return fmt.Errorf("-vary-param %q names no -param", f.vary)
	}
	c, err := tokenclient.New(tokenclient.Options{Endpoint: f.url, TokenFile: f.tokenFile, CAFile: f.caFile})
	if err != nil {
		return fmt.Errorf("token endpoint client: %w", err)
	}
	r.endpoint, r.namespace, r.tmpl, r.params, r.vary = c, ns, name, f.params, f.vary
	return nil
}

// paramsFor returns the parameters of reading n: r.params, with the
// parameter r.vary names suffixed "-n".
func (r reader) paramsFor(n int) map[string]string {
	if r.vary == "" {
		return r.params
	}
	params := maps.Clone(r.params)
	params[r.vary] += "-" + strconv.Itoa(n)
	return params
}

// readEndpoint asks the endpoint for the token of reading n, as a backend
// does at each page view: the client serves its own copy until it nears
// expiry.
func (r reader) readEndpoint(ctx context.Context, n int) reading {
	tok, err := r.endpoint.Token(ctx, r.namespace, r.tmpl, r.paramsFor(n))
	if err != nil {
		return reading{err: err}
	}
	rd := r.reading(ctx, tok.Value, tok.ExpiresAt)
	rd.cached = &tok.Cached
	return rd
}
