package main

import (
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestHelpListsVendorFlags(t *testing.T) {
	var help strings.Builder
	err := run(context.Background(), []string{"-h"}, func(string) string { return "env-secret" }, &help)
	if !errors.Is(err, flag.ErrHelp) || strings.Contains(help.String(), "env-secret") {
		t.Fatalf("-h: %v\n%s", err, help.String())
	}
	for _, f := range []string{"-boldbi-embed-secret", "-boldbi-omit-expires-in", "-thoughtspot-secret-key", "-domo-client-id", "-domo-client-secret"} {
		if !strings.Contains(help.String(), f) {
			t.Errorf("help does not list %s", f)
		}
	}
}

func TestEnvDefault(t *testing.T) {
	getenv := func(k string) string { return map[string]string{"K": "from-env"}[k] }
	for _, tc := range []struct{ flag, want string }{{"", "from-env"}, {"from-flag", "from-flag"}} {
		v := tc.flag
		envDefault(getenv, "K", &v)
		if v != tc.want {
			t.Errorf("envDefault(%q) = %q, want %q", tc.flag, v, tc.want)
		}
	}
}
