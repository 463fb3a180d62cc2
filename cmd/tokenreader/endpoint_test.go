package main

import (
	"maps"
	"strings"
	"testing"
)

func TestParamsFor(t *testing.T) {
	cases := []struct {
		name string
		vary string
		n    int
		want map[string]string
	}{
		{name: "without -vary-param every reading asks for the same parameters", n: 7,
			want: map[string]string{"user": "alice", "team": "sales"}},
		{name: "the varied parameter gets the reading's number and the others stay", vary: "user", n: 7,
			want: map[string]string{"user": "alice-7", "team": "sales"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := reader{params: map[string]string{"user": "alice", "team": "sales"}, vary: tc.vary}
			if got := r.paramsFor(tc.n); !maps.Equal(got, tc.want) {
				t.Fatalf("paramsFor(%d) = %v, want %v", tc.n, got, tc.want)
			}
			if r.params["user"] != "alice" {
				t.Fatalf("paramsFor changed the flags' parameters to %v", r.params)
			}
		})
	}
}

func TestVaryParamMustNameAParam(t *testing.T) {
	var r reader
	err := r.useEndpoint(endpointFlags{url: "https://127.0.0.1:8443", template: "ns/t",
		params: paramFlag{"user": "alice"}, vary: "team"})
	if err == nil || !strings.Contains(err.Error(), "names no -param") {
		t.Fatalf("useEndpoint() = %v, want a refusal of -vary-param team", err)
	}
}
