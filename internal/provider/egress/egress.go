// Package egress decides which addresses the operator may connect to on a
// vendor's behalf. A provider's URL is written by whoever may create the
// provider, so without a guard an EmbedProvider could point the operator at
// the node's cloud metadata service, at loopback or at in-cluster services,
// and have their answers written into a Secret. The decision is made on the
// resolved address of every connection (see Guard), never on the URL's text.
package egress

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Scope is the kind of provider a connection is made for. A
// ClusterEmbedProvider is created by a cluster administrator and may reach
// private addresses (an in-cluster or on-premises vendor); an EmbedProvider
// may be created by anyone who can edit a namespace, so it may not.
type Scope uint8

const (
	// Namespaced is an EmbedProvider; the zero Scope, so the strictest.
	Namespaced Scope = iota
	// Cluster is a ClusterEmbedProvider.
	Cluster
)

// String names the scope as the provider kind, for cache keys and messages.
func (s Scope) String() string {
	if s == Cluster {
		return "ClusterEmbedProvider"
	}
	return "EmbedProvider"
}

// rangeRule is one refused range and the name of its class in messages.
type rangeRule struct {
	prefix netip.Prefix
	class  string
}

func rules(class string, cidrs ...string) []rangeRule {
	out := make([]rangeRule, len(cidrs))
	for i, c := range cidrs {
		out[i] = rangeRule{prefix: netip.MustParsePrefix(c), class: class}
	}
	return out
}

// alwaysRefused holds ranges no provider may reach. The cloud metadata
// addresses outside link-local (Alibaba Cloud, Azure WireServer, the IPv6
// EC2 metadata service) come first, so they are refused even where private
// ranges are allowed. IPv4-compatible addresses (::a.b.c.d) are deprecated
// (RFC 4291) and reach an IPv4 address through a tunnel where a kernel still
// routes them, so none is reached.
var alwaysRefused = concat(
	rules("cloud metadata", "100.100.100.200/32", "168.63.129.16/32", "fd00:ec2::254/128"),
	rules("unspecified", "0.0.0.0/8", "::/128"),
	rules("loopback", "127.0.0.0/8", "::1/128"),
	rules("IPv4-compatible", "::/96"),
	rules("link-local", "169.254.0.0/16", "fe80::/10"),
	rules("multicast", "224.0.0.0/4", "ff00::/8"),
	rules("broadcast", "255.255.255.255/32"),
)

// privateRanges are refused for namespaced providers only. The local-use
// NAT64 prefix (RFC 8215) translates to IPv4 addresses at an offset its
// network chooses, so it is judged as the private network it leads into.
var privateRanges = concat(
	rules("private", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"),
	rules("shared (carrier-grade NAT)", "100.64.0.0/10"),
	rules("local-use NAT64", "64:ff9b:1::/48"),
)

// embedding is an IPv6 range whose addresses carry an IPv4 address that a
// gateway, relay or tunnel delivers to: such an address is judged as the
// IPv4 address it embeds too.
type embedding struct {
	prefix netip.Prefix
	name   string
	// ipv4 returns the IPv4 addresses a connection may reach, from the
	// address's 16 bytes.
	ipv4 func(b [16]byte) []netip.Addr
}

// embeddings are the IPv6 forms of IPv4 addresses beside IPv4-mapped ones
// (which Check unmaps) and IPv4-compatible ones (refused outright).
var embeddings = []embedding{
	// NAT64 with the well-known prefix (RFC 6052): the IPv4 address is the last 32 bits.
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64", func(b [16]byte) []netip.Addr {
		return []netip.Addr{netip.AddrFrom4([4]byte(b[12:16]))}
	}},
	// IPv4-translated (RFC 2765, SIIT): ::ffff:0:a.b.c.d.
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "IPv4-translated", func(b [16]byte) []netip.Addr {
		return []netip.Addr{netip.AddrFrom4([4]byte(b[12:16]))}
	}},
	// 6to4 (RFC 3056): 2002:a.b.c.d::/48 reaches the 6to4 router at a.b.c.d.
	{netip.MustParsePrefix("2002::/16"), "6to4", func(b [16]byte) []netip.Addr {
		return []netip.Addr{netip.AddrFrom4([4]byte(b[2:6]))}
	}},
	// Teredo (RFC 4380): the server's address in bits 32-63, the client's,
	// which a relay sends to, inverted in the last 32 bits.
	{netip.MustParsePrefix("2001::/32"), "Teredo", func(b [16]byte) []netip.Addr {
		client := [4]byte{^b[12], ^b[13], ^b[14], ^b[15]}
		return []netip.Addr{netip.AddrFrom4([4]byte(b[4:8])), netip.AddrFrom4(client)}
	}},
}

func concat(lists ...[]rangeRule) []rangeRule {
	var out []rangeRule
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// Allowed is one entry of --allow-vendor-cidrs: a range, and the one port
// it opens there, or every port when Port is 0.
type Allowed struct {
	Prefix netip.Prefix
	Port   uint16
}

// allows reports whether the entry opens addr (unmapped) and port.
func (a Allowed) allows(addr netip.Addr, port uint16) bool {
	return a.Prefix.Contains(addr) && (a.Port == 0 || a.Port == port)
}

// String writes the entry as ParseAllowed reads it.
func (a Allowed) String() string {
	switch {
	case a.Port == 0:
		return a.Prefix.String()
	case a.Prefix.IsSingleIP():
		return netip.AddrPortFrom(a.Prefix.Addr(), a.Port).String()
	case a.Prefix.Addr().Is6():
		return fmt.Sprintf("[%s]:%d", a.Prefix, a.Port)
	}
	return fmt.Sprintf("%s:%d", a.Prefix, a.Port)
}

// Policy is the operator-wide part of the decision: the ranges and ports
// an administrator allowed with --allow-vendor-cidrs, and the operator's
// own ports. The zero Policy allows nothing beyond the built-in rules.
type Policy struct {
	allow []Allowed
	// ownPorts are the ports the manager listens on (metrics, health
	// probes), refused on loopback, unspecified and ownAddrs whatever allow
	// says: a provider must not query the operator itself.
	ownPorts []uint16
	ownAddrs []netip.Addr
}

// NewPolicy returns a Policy that lets every provider reach allow, whatever
// the built-in rules say (a simulator on loopback, an in-cluster vendor for
// namespaced providers).
func NewPolicy(allow ...Allowed) Policy {
	return Policy{allow: slices.Clone(allow)}
}

// WithOwnPorts returns p refusing ports, the ones the operator itself
// listens on, at loopback and unspecified addresses and at addrs (the
// addresses of the operator's own network interfaces, see LocalAddrs), even
// where an allowed range holds the address: a range allowed for a
// simulator on loopback or for in-cluster vendors must not let a provider
// read the operator's metrics or probes. Port 0 is ignored.
func (p Policy) WithOwnPorts(addrs []netip.Addr, ports ...uint16) Policy {
	p.ownPorts = slices.DeleteFunc(slices.Clone(ports), func(port uint16) bool { return port == 0 })
	p.ownAddrs = nil
	for _, a := range addrs {
		p.ownAddrs = append(p.ownAddrs, a.WithZone("").Unmap())
	}
	return p
}

// LocalAddrs returns the addresses of this machine's (in a pod: the pod's)
// network interfaces, for WithOwnPorts; none when they cannot be listed.
func LocalAddrs() []netip.Addr {
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, ifa := range ifaddrs {
		if n, ok := ifa.(*net.IPNet); ok {
			if a, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, a.Unmap())
			}
		}
	}
	return out
}

// Check decides whether a provider of scope may connect to addr (address
// and port), which host resolved to. It returns nil or a *RefusedError
// naming host and the rule.
func (p Policy) Check(host string, addr netip.AddrPort, scope Scope) error {
	a, port := addr.Addr().WithZone("").Unmap(), addr.Port()
	if !a.IsValid() {
		return &RefusedError{Host: host, Class: "invalid", Always: true}
	}
	if slices.Contains(p.ownPorts, port) && (a.IsLoopback() || a.IsUnspecified() || slices.Contains(p.ownAddrs, a)) {
		return &RefusedError{Host: host, Addr: a, Port: port, Class: "operator's own port", Always: true}
	}
	for _, al := range p.allow {
		if al.allows(a, port) {
			return nil
		}
	}
	if err := refusedByRules(host, a, scope); err != nil {
		return err
	}
	return nil
}

// refusedByRules applies the built-in rules to addr, and to the IPv4
// addresses it embeds.
func refusedByRules(host string, addr netip.Addr, scope Scope) *RefusedError {
	for _, r := range alwaysRefused {
		if r.prefix.Contains(addr) {
			return &RefusedError{Host: host, Addr: addr, Class: r.class, Always: true}
		}
	}
	if scope == Namespaced {
		for _, r := range privateRanges {
			if r.prefix.Contains(addr) {
				return &RefusedError{Host: host, Addr: addr, Class: r.class}
			}
		}
	}
	for _, e := range embeddings {
		if !e.prefix.Contains(addr) {
			continue
		}
		for _, v4 := range e.ipv4(addr.As16()) {
			if err := refusedByRules(host, v4, scope); err != nil {
				err.Addr, err.Class = addr, e.name+" "+err.Class
				return err
			}
		}
	}
	return nil
}

// RefusedError is a connection the guard refused before anything was sent.
// Its text names only the host, the address and the rule, so it is safe to
// show in a condition.
type RefusedError struct {
	// Host is the host name (or literal address) of the URL.
	Host string
	// Addr is the refused address Host resolved to.
	Addr netip.Addr
	// Class names the rule: "loopback", "link-local", "private", ...
	Class string
	// Always is true for ranges refused for every provider, false for
	// private ranges, which a ClusterEmbedProvider may reach.
	Always bool
	// Port is the refused port, set for the operator's own ports only.
	Port uint16
}

func (e *RefusedError) Error() string {
	subject := fmt.Sprintf("vendor host %s resolves to %s %s address (%s)", e.Host, article(e.Class), e.Class, e.Addr)
	if a, err := netip.ParseAddr(e.Host); err == nil && a.WithZone("").Unmap() == e.Addr {
		subject = fmt.Sprintf("vendor address %s is %s %s address", e.Host, article(e.Class), e.Class)
	}
	if !e.Addr.IsValid() {
		subject = fmt.Sprintf("vendor host %s resolves to an address the operator cannot check", e.Host)
	}
	if e.Port != 0 {
		return fmt.Sprintf("vendor host %s resolves to %s, port %d of the operator itself, which no provider may reach",
			e.Host, e.Addr, e.Port)
	}
	if e.Always {
		return subject + ", which the operator never connects to; if it really is the vendor, allow it with --allow-vendor-cidrs"
	}
	return subject + ", refused for a namespaced EmbedProvider; use a ClusterEmbedProvider or --allow-vendor-cidrs"
}

func article(word string) string {
	if word != "" && strings.ContainsRune("aeiouAEIOU", rune(word[0])) {
		return "an"
	}
	return "a"
}

// ParseAllowed parses the value of --allow-vendor-cidrs: comma-separated
// entries, blanks ignored, each a CIDR that opens every port (10.0.0.0/8,
// fd00::/8) or a CIDR or address with the one port it opens
// (10.96.0.0/12:443, 127.0.0.1:8080, [fd00::/8]:443, [fd00::1]:443). It
// refuses a bare address and a CIDR with host bits set, since both usually
// mean something other than what they allow. IPv4-mapped IPv6 prefixes are
// turned into IPv4 ones, as addresses are checked in their IPv4 form.
func ParseAllowed(list string) ([]Allowed, error) {
	var out []Allowed
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		a, err := parseAllowed(s)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func parseAllowed(s string) (Allowed, error) {
	target, port, hasPort := s, "", false
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 || !strings.HasPrefix(s[end+1:], ":") {
			return Allowed{}, fmt.Errorf("%q is neither a CIDR nor [address]:port or [CIDR]:port", s)
		}
		target, port, hasPort = s[1:end], s[end+2:], true
	case strings.Count(s, ":") == 1: // IPv4 with a port; IPv6 needs brackets
		target, port, _ = strings.Cut(s, ":")
		hasPort = true
	}
	var a Allowed
	if hasPort {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return Allowed{}, fmt.Errorf("%q has no port between 1 and 65535 after the colon", s)
		}
		a.Port = uint16(n)
	}
	p, err := netip.ParsePrefix(target)
	if err != nil {
		addr, aerr := netip.ParseAddr(target)
		switch {
		case aerr == nil && hasPort:
			p = netip.PrefixFrom(addr, addr.BitLen())
		case aerr == nil:
			return Allowed{}, fmt.Errorf("%q is an address, not a CIDR; write %s/%d, or %s to open one port only",
				s, s, addr.BitLen(), Allowed{Prefix: netip.PrefixFrom(addr, addr.BitLen()), Port: 443})
		case strings.Contains(target, ":") && strings.Contains(target, "/") && !hasPort:
			return Allowed{}, fmt.Errorf("%q is not a CIDR; an IPv6 CIDR with a port is written [fd00::/8]:443: %w", s, err)
		default:
			return Allowed{}, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8 or 10.0.0.0/8:443: %w", s, err)
		}
	}
	if p != p.Masked() {
		return Allowed{}, fmt.Errorf("%q has bits set beyond its prefix length; did you mean %s?", s, Allowed{Prefix: p.Masked(), Port: a.Port})
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	a.Prefix = p
	return a, nil
}
