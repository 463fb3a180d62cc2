package main

import (
	"slices"
	"testing"
)

func TestNamespaceListSet(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "", want: nil},
		{in: "team-a", want: []string{"team-a"}},
		{in: " team-a , team-b,team-a,, ", want: []string{"team-a", "team-b"}},
		{in: "Team_A", wantErr: true},
		{in: "ok,bad/ns", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var n namespaceList
			err := n.Set(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Set(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if !tt.wantErr && !slices.Equal(n, tt.want) {
				t.Errorf("Set(%q) = %v, want %v", tt.in, n, tt.want)
			}
		})
	}
}

func TestCIDRListSet(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "", want: ""},
		{in: "127.0.0.1/32", want: "127.0.0.1/32"},
		{in: "10.0.0.0/8, fd00::/8", want: "10.0.0.0/8,fd00::/8"},
		{in: "127.0.0.1:8089, 10.96.0.0/12:443, [fd00::1]:443", want: "127.0.0.1:8089,10.96.0.0/12:443,[fd00::1]:443"},
		{in: "127.0.0.1", wantErr: true},
		{in: "10.0.0.1/8", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var c cidrList
			err := c.Set(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Set(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if !tt.wantErr && c.String() != tt.want {
				t.Errorf("Set(%q) = %s, want %s", tt.in, c.String(), tt.want)
			}
		})
	}
}

func TestOwnPorts(t *testing.T) {
	got := ownPorts(":8443", "0", "", "127.0.0.1:6060", "[::1]:8081", ":0", "localhost")
	if want := []uint16{8443, 6060, 8081}; !slices.Equal(got, want) {
		t.Errorf("ownPorts = %v, want %v", got, want)
	}
}
