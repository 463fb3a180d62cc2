package main

import (
	"net/netip"
	"strings"

	"github.com/embedtokens/embed-token-operator/internal/provider/egress"
)

// cidrList is the value of --allow-vendor-cidrs, validated at start-up so a
// typo fails fast instead of leaving a simulator or in-cluster vendor
// refused, or allowing more than intended.
type cidrList []netip.Prefix

// String implements flag.Value.
func (c *cidrList) String() string {
	s := make([]string, len(*c))
	for i, p := range *c {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// Set implements flag.Value.
func (c *cidrList) Set(value string) error {
	prefixes, err := egress.ParseCIDRs(value)
	if err != nil {
		return err
	}
	*c = prefixes
	return nil
}
