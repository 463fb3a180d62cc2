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
