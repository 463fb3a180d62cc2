// Package egress decides which addresses the operator may connect to on a
// vendor's behalf. A provider's URL is written by whoever may create the
// provider, so without a guard an EmbedProvider could point the operator at
// the node's cloud metadata service, at loopback or at in-cluster services,
// and have their answers written into a Secret. The decision is made on the
// resolved address of every connection (see Guard), never on the URL's text.
package egress

import (
	"fmt"
	"net/netip"
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
// ranges are allowed.
var alwaysRefused = concat(
	rules("cloud metadata", "100.100.100.200/32", "168.63.129.16/32", "fd00:ec2::254/128"),
	rules("unspecified", "0.0.0.0/8", "::/128"),
	rules("loopback", "127.0.0.0/8", "::1/128"),
	rules("link-local", "169.254.0.0/16", "fe80::/10"),
	rules("multicast", "224.0.0.0/4", "ff00::/8"),
	rules("broadcast", "255.255.255.255/32"),
)

// privateRanges are refused for namespaced providers only.
var privateRanges = concat(
	rules("private", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"),
	rules("shared (carrier-grade NAT)", "100.64.0.0/10"),
)

func concat(lists ...[]rangeRule) []rangeRule {
	var out []rangeRule
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// Policy is the operator-wide part of the decision: the ranges an
// administrator allowed with --allow-vendor-cidrs. The zero Policy allows
// nothing beyond the built-in rules.
type Policy struct {
	allow []netip.Prefix
}

// NewPolicy returns a Policy that lets every provider reach allow, whatever
// the built-in rules say (a simulator on loopback, an in-cluster vendor for
// namespaced providers).
func NewPolicy(allow ...netip.Prefix) Policy {
	return Policy{allow: append([]netip.Prefix(nil), allow...)}
}

// Check decides whether a provider of scope may connect to addr, which host
// resolved to. It returns nil or a *RefusedError naming host and the rule.
func (p Policy) Check(host string, addr netip.Addr, scope Scope) error {
	addr = addr.WithZone("").Unmap()
	if !addr.IsValid() {
		return &RefusedError{Host: host, Class: "invalid", Always: true}
	}
	for _, a := range p.allow {
		if a.Contains(addr) {
			return nil
		}
	}
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
}

func (e *RefusedError) Error() string {
	subject := fmt.Sprintf("vendor host %s resolves to %s %s address (%s)", e.Host, article(e.Class), e.Class, e.Addr)
	if a, err := netip.ParseAddr(e.Host); err == nil && a.WithZone("").Unmap() == e.Addr {
		subject = fmt.Sprintf("vendor address %s is %s %s address", e.Host, article(e.Class), e.Class)
	}
	if !e.Addr.IsValid() {
		subject = fmt.Sprintf("vendor host %s resolves to an address the operator cannot check", e.Host)
	}
	if e.Always {
		return subject + ", which the operator never connects to; if it really is the vendor, allow it with --allow-vendor-cidrs"
	}
	return subject + ", refused for a namespaced EmbedProvider; use a ClusterEmbedProvider or --allow-vendor-cidrs"
}

func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}

// ParseCIDRs parses the value of --allow-vendor-cidrs: comma-separated
// CIDRs, blanks ignored. It refuses a bare address and a CIDR with host bits
// set, since both usually mean something other than what they allow.
// IPv4-mapped IPv6 prefixes are turned into IPv4 ones, as addresses are
// checked in their IPv4 form.
func ParseCIDRs(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			if a, aerr := netip.ParseAddr(s); aerr == nil {
				return nil, fmt.Errorf("%q is an address, not a CIDR; write %s/%d", s, s, a.BitLen())
			}
			return nil, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8: %w", s, err)
		}
		if p != p.Masked() {
			return nil, fmt.Errorf("%q has bits set beyond its prefix length; did you mean %s?", s, p.Masked())
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p)
	}
	return out, nil
}
