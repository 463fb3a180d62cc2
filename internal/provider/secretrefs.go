package provider

import (
	"reflect"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

var secretKeySelectorType = reflect.TypeFor[v1alpha1.SecretKeySelector]()

// SecretRefsIn lists every SecretKeySelector inside block (a vendor's
// provider block, such as config.Qrvey), in field order, following pointers,
// structs and slices. Vendors build their SecretRefs with it, so a Secret
// reference added to a vendor's API type is covered without further code. A
// nil block has none.
func SecretRefsIn(block any) []v1alpha1.SecretKeySelector {
	var refs []v1alpha1.SecretKeySelector
	collectSecretRefs(reflect.ValueOf(block), &refs)
	return refs
}

func collectSecretRefs(v reflect.Value, refs *[]v1alpha1.SecretKeySelector) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			collectSecretRefs(v.Elem(), refs)
		}
	case reflect.Struct:
		if v.Type() == secretKeySelectorType {
			*refs = append(*refs, v.Interface().(v1alpha1.SecretKeySelector))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				collectSecretRefs(v.Field(i), refs)
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return // raw bytes, such as a JSON value
		}
		for i := range v.Len() {
			collectSecretRefs(v.Index(i), refs)
		}
	default:
		// Strings, numbers, maps and JSON values hold no typed references.
	}
}
