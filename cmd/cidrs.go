package main

import (
	"net"
	"strconv"
	"strings"

	"github.com/embedtokens/embed-token-operator/internal/provider/egress"
)

// cidrList is the value of --allow-vendor-cidrs, validated at start-up so a
// typo fails fast instead of leaving a simulator or in-cluster vendor
// refused, or allowing more than intended.
type cidrList []egress.Allowed

// String implements flag.Value.
func (c *cidrList) String() string {
	s := make([]string, len(*c))
	for i, a := range *c {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// Set implements flag.Value.
func (c *cidrList) Set(value string) error {
	allowed, err := egress.ParseAllowed(value)
	if err != nil {
		return err
	}
	*c = allowed
	return nil
}

// ownPorts returns the ports of the manager's listen addresses (metrics,
// health probes, pprof, the token endpoint), skipping the disabled ones ("0", ""), so the egress
// guard can refuse them to every provider.
func ownPorts(addrs ...string) []uint16 {
	var ports []uint16
	for _, a := range addrs {
		_, p, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		if n, err := strconv.ParseUint(p, 10, 16); err == nil && n != 0 {
			ports = append(ports, uint16(n))
		}
	}
	return ports
}
