package vendorsim_test

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/embedtokens/embed-token-operator/internal/vendorsim"
)

// TestCredentialFlags parses the Qrvey key, a credential flag, as
// cmd/vendorsim does: the flag wins over the environment, which fills an
// empty flag after parsing.
func TestCredentialFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"a credential flag wins over its environment variable", []string{"--qrvey-api-key", "from-flag"}, "from-env", "from-flag"},
		{"an unset credential flag takes its environment variable", nil, "from-env", "from-env"},
		{"with neither the credential is empty, so the simulator uses its demo value", nil, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("vendorsim", flag.ContinueOnError)
			f := vendorsim.NewFlags(fs, func(k string) string {
				if k == "VENDORSIM_QRVEY_API_KEY" {
					return tc.env
				}
				return ""
			})
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			opts, err := f.Options()
			if err != nil || opts.QrveyAPIKey != tc.want {
				t.Errorf("Options() = %q, %v; want the key %q", opts.QrveyAPIKey, err, tc.want)
			}
		})
	}
}

// TestHelpNamesTheEnvironmentNotItsValue checks that the help of a
// credential flag names its variable and demo value, and that the
// environment is not read before parsing, so --help cannot print it.
func TestHelpNamesTheEnvironmentNotItsValue(t *testing.T) {
	fs := flag.NewFlagSet("vendorsim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	vendorsim.NewFlags(fs, func(string) string {
		t.Error("the environment was read while declaring the flags")
		return "env-secret"
	})
	usage := fs.Lookup("qrvey-api-key").Usage
	if want := `(default $VENDORSIM_QRVEY_API_KEY, else "` + vendorsim.DefaultQrveyAPIKey + `")`; !strings.HasSuffix(usage, want) {
		t.Errorf("usage %q does not end with %q", usage, want)
	}
}

// TestEveryVendorHasABanner expects the startup lines to say where the
// vendors are served and name no credential.
func TestEveryVendorHasABanner(t *testing.T) {
	s := vendorsim.New(vendorsim.Options{QrveyAPIKey: "secret-key"})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	banner := s.Banner()
	if len(banner) == 0 {
		t.Fatal("no banner")
	}
	for _, line := range banner {
		if !strings.Contains(line, s.URL()) || strings.Contains(line, "secret-key") {
			t.Errorf("banner line %q: want the server's URL and no credential", line)
		}
	}
}
