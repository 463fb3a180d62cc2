package main

import "testing"

func TestLabelSelectorSet(t *testing.T) {
	tests := []struct {
		in      string
		want    string // the parsed selector; "" for every request
		wantErr bool
	}{
		{in: "", want: ""},
		{in: "!embedtokens.io/shard", want: "!embedtokens.io/shard"},
		{in: "embedtokens.io/shard=b", want: "embedtokens.io/shard=b"},
		{in: "embedtokens.io/shard in (b, c)", want: "embedtokens.io/shard in (b,c)"},
		{in: "embedtokens.io/shard=b/c", wantErr: true},
		{in: "embedtokens.io/shard=b c", wantErr: true},
		{in: "!", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var l labelSelector
			err := l.Set(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Set(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			got := ""
			if sel := l.selector(); sel != nil {
				got = sel.String()
			}
			if got != tt.want {
				t.Errorf("Set(%q) selects %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
