/*
Copyright 2026 The embed-token-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package tokenendpoint

import (
	"strings"
	"testing"
)

func TestAuditLog(t *testing.T) {
	cases := []struct {
		name       string
		logValues  bool
		wantValues bool
	}{
		{name: "a token issued is logged with a digest of the parameters only"},
		{name: "the parameters' values are logged when asked for", logValues: true, wantValues: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Options{LogParameterValues: tc.logValues})
			first := f.mustToken(user("ann@example.com"))
			second := f.mustToken(user("ann@example.com"))
			lines := strings.Split(strings.TrimSpace(f.logs.String()), "\n")
			if len(lines) != 2 {
				t.Fatalf("%d log lines, want one per token handed out:\n%s", len(lines), f.logs.String())
			}
			for i, want := range []string{`"cached"=false`, `"cached"=true`} {
				line := lines[i]
				for _, part := range []string{`"msg"="Token issued"`, `"user"="system:serviceaccount:default:alice"`, `"pod"="web-1"`,
					`"embedTokenTemplate"={"name"="dash" "namespace"="default"}`,
					`"parametersDigest"="` + parametersDigest(map[string]string{"user": "ann@example.com"}) + `"`,
					`"tokenDigest"="` + first.TokenDigest + `"`, want} {
					if !strings.Contains(line, part) {
						t.Errorf("line %d lacks %s: %s", i, part, line)
					}
				}
				if strings.Contains(line, first.Token) || strings.Contains(line, second.Token) || strings.Contains(line, aliceToken) {
					t.Errorf("line %d holds a token: %s", i, line)
				}
				if got := strings.Contains(line, "ann@example.com"); got != tc.wantValues {
					t.Errorf("line %d shows the values: %v, want %v: %s", i, got, tc.wantValues, line)
				}
			}
		})
	}
}
