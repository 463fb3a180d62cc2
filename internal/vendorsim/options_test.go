package vendorsim

import "testing"

// acmeOptions stands for the options type a vendor declares in its own file.
type acmeOptions struct{ APIKey string }

// TestOptionsOfFindsAVendorsOwnOptions proves a vendor reads its options
// from Options.Vendors by their type, the last one when several are given,
// and its defaults (the zero value) when none is.
func TestOptionsOfFindsAVendorsOwnOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		vendors []any
		want    string
	}{
		{"no options of the vendor's type leave its defaults", []any{"other"}, ""},
		{"the vendor's options are found among others", []any{"other", acmeOptions{APIKey: "k1"}}, "k1"},
		{"the last of several wins, as a flag given twice does", []any{acmeOptions{APIKey: "k1"}, acmeOptions{APIKey: "k2"}}, "k2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := optionsOf[acmeOptions](Options{Vendors: tc.vendors}).APIKey; got != tc.want {
				t.Errorf("APIKey = %q, want %q", got, tc.want)
			}
		})
	}
}
