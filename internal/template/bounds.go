package template

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"unicode/utf8"
)

// The admission bounds of the vendor blocks' string fields, read from their
// kubebuilder markers, so a filled block still satisfies what the CRD
// would have checked on a request.
//go:generate go run ../../hack/templatepaths -api ../../api/v1alpha1 -bounds zz_generated.bounds.go

// Bounds are the admission constraints of one string field, or of the items
// of one string list, of a vendor block: what admission checks on an
// EmbedTokenRequest and the endpoint must check on a filled value.
type Bounds struct {
	// MinLength and MaxLength count characters, as the API server does;
	// zero is unbounded.
	MinLength, MaxLength int
	// Pattern, when set, must match.
	Pattern *regexp.Regexp
	// Enum, when set, lists the values allowed.
	Enum []string
}

// fieldKey names a string field, or the items of a string list (item), of
// a vendor block's Go type by the type's name and the field's JSON name.
type fieldKey struct {
	typeName string
	field    string
	item     bool
}

// lookupBounds is the bounds of holder's field named by its JSON name, or
// of its items; nil when it has none.
func lookupBounds(holder reflect.Type, field string, item bool) *Bounds {
	return fieldBounds[fieldKey{typeName: holder.Name(), field: field, item: item}]
}

// check refuses a value out of b; a nil b admits every value.
func (b *Bounds) check(value string) error {
	if b == nil {
		return nil
	}
	n := utf8.RuneCountInString(value)
	switch {
	case b.MinLength > 0 && n < b.MinLength:
		return fmt.Errorf("is shorter than its field admits, %d characters", b.MinLength)
	case b.MaxLength > 0 && n > b.MaxLength:
		return fmt.Errorf("is longer than its field admits, %d characters", b.MaxLength)
	case b.Pattern != nil && !b.Pattern.MatchString(value):
		return fmt.Errorf("does not match its field's pattern %s", b.Pattern)
	case len(b.Enum) > 0 && !slices.Contains(b.Enum, value):
		return fmt.Errorf("is not one of the values its field admits: %v", b.Enum)
	}
	return nil
}
