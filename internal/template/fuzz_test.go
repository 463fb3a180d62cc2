package template

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// FuzzFill fills arbitrary paths of every kind of vendor block with
// arbitrary values: nothing panics, and a fill changes the block at its
// path and nowhere else, as an independent setter over the block's JSON
// form says it should.
func FuzzFill(f *testing.F) {
	names := []string{"qlik", "qlikNone", "boldBI", "powerBI", "superset", "jwt", "jwtNo", "http", "httpNo", "qrvey"}
	for _, seed := range []struct {
		block       uint8
		path, value string
	}{
		{0, "qlikCloud.userLookup.value", "alice"},
		{1, "qlikCloud.userLookup.value", "alice"},
		{2, "boldBI.customAttributes[0].value", "acme"},
		{3, "powerBI.identities[0].roles[0]", "Viewer"},
		{3, "powerBI.identities[0].datasets[0]", datasetID},
		{4, "superset.rls[0].clause", "1=1) OR (1=1"},
		{5, "jwt.claims.nested.c", "d"},
		{5, "jwt.claims.list[0]", "q"},
		{6, "jwt.claims.a.b.c", "d"},
		{7, "http.variables.x", "\"}"},
		{8, "http.variables.x", "y"},
		{9, "qrvey.permissions[0].value", "v"},
		{5, "jwt.claims[", "x"},
		{3, "powerBI.identities[0][0]", "x"},
	} {
		f.Add(seed.block, seed.path, seed.value)
	}
	f.Fuzz(func(t *testing.T, which uint8, path, value string) {
		name := names[int(which)%len(names)]
		s := spec(name, path)
		before := asJSON(t, s)
		c, err := Compile(s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Compile returned %T, not *Error: %v", err, err)
			}
			return
		}
		filled, err := c.Fill(map[string]string{"pa": value}, Caller{}, nil)
		if after := asJSON(t, s); after != before {
			t.Fatalf("the template changed")
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Fill returned %T, not *Error: %v", err, err)
			}
			return
		}
		want := generic(t, s.VendorParams)
		if !setGeneric(&want, path, value) {
			t.Fatalf("Fill wrote %s, which the independent setter cannot reach", path)
		}
		if got := generic(t, *filled); !reflect.DeepEqual(got, want) {
			t.Fatalf("fill of %s:\n got %v\nwant %v", path, got, want)
		}
	})
}

// generic is p's JSON form, numbers kept as written.
func generic(t *testing.T, p v1alpha1.VendorParams) any {
	t.Helper()
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// setGeneric sets value at path in doc, creating missing objects, as the
// path's grammar reads: dot-separated keys, each with [i] indexes.
func setGeneric(doc *any, path, value string) bool {
	cur := doc
	for _, part := range strings.Split(path, ".") {
		name, rest, _ := strings.Cut(part, "[")
		obj, ok := (*cur).(map[string]any)
		if *cur == nil {
			obj, ok = map[string]any{}, true
			*cur = obj
		}
		if !ok {
			return false
		}
		v := obj[name]
		cur = &v
		defer func(obj map[string]any, name string, v *any) { obj[name] = *v }(obj, name, cur)
		for _, idx := range strings.Split(rest, "[") {
			if idx == "" {
				continue
			}
			i, err := strconv.Atoi(strings.TrimSuffix(idx, "]"))
			list, ok := (*cur).([]any)
			if err != nil || !ok || i >= len(list) {
				return false
			}
			cur = &list[i]
		}
	}
	*cur = value
	return true
}
