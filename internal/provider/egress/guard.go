package egress

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// Guard applies a Policy to one provider's connections. Its zero value is
// the strictest guard: a namespaced provider, nothing allowed beyond the
// built-in rules, the system resolver.
type Guard struct {
	// Policy holds the operator-wide allow list.
	Policy Policy
	// Scope is the kind of provider whose connections this guard checks.
	Scope Scope
	// Resolver resolves vendor host names; net.DefaultResolver when nil.
	// Tests set it to serve names from a fake DNS server.
	Resolver *net.Resolver
}

// DialContext is an http.Transport DialContext that checks every address it
// connects to. The check runs in the dialer's ControlContext, after DNS
// resolution and before connect, so it sees the address actually dialled: a
// name that resolves to an allowed address once and to a refused one later
// (DNS rebinding) is refused on that later connection, and nothing is sent
// to a refused address.
func (g Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		host = address
	}
	d := &net.Dialer{
		Timeout:   30 * time.Second,
		KeepAlive: 30 * time.Second,
		Resolver:  g.Resolver,
		ControlContext: func(_ context.Context, _, resolved string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(resolved)
			if err != nil {
				return &RefusedError{Host: host, Class: "invalid", Always: true}
			}
			return g.Policy.Check(host, ap, g.Scope)
		},
	}
	return d.DialContext(ctx, network, address)
}

// CheckURL resolves u's host and checks every address it resolves to, with
// u's port (the scheme's when it names none), for the places where the
// operator does not dial the host itself: a request handed to a proxy, and
// the message for a refused redirect. A name that does not resolve here
// passes, as there is nothing to check; the proxy resolves it.
func (g Guard) CheckURL(ctx context.Context, u *url.URL) error {
	host := u.Hostname()
	port, err := net.LookupPort("tcp", cmp.Or(u.Port(), u.Scheme))
	if err != nil || port <= 0 || port > 65535 {
		return &RefusedError{Host: host, Class: "invalid", Always: true}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return g.Policy.Check(host, netip.AddrPortFrom(a, uint16(port)), g.Scope)
	}
	r := g.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil //nolint:nilerr // unresolvable here: nothing to check, see above
	}
	for _, a := range addrs {
		if err := g.Policy.Check(host, netip.AddrPortFrom(a, uint16(port)), g.Scope); err != nil {
			return err
		}
	}
	return nil
}

// Proxy wraps an http.Transport Proxy function (http.ProxyFromEnvironment):
// a request that next sends through a proxy is first checked with CheckURL,
// since the connection to the vendor is then the proxy's, not ours. The
// connection to the proxy itself goes through DialContext like any other.
func (g Guard) Proxy(next func(*http.Request) (*url.URL, error)) func(*http.Request) (*url.URL, error) {
	return func(req *http.Request) (*url.URL, error) {
		proxy, err := next(req)
		if err != nil || proxy == nil {
			return proxy, err
		}
		if err := g.CheckURL(req.Context(), req.URL); err != nil {
			return nil, fmt.Errorf("not proxying: %w", err)
		}
		return proxy, nil
	}
}
