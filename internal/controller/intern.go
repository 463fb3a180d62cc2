package controller

import (
	"unique"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// internStrings is a cache transform that makes the strings thousands of
// cached objects repeat share one copy: namespaces, label keys and values,
// annotation keys, owner and type kinds, condition types, statuses and
// reasons. Each decoded object otherwise carries its own copy of every one
// of them, which at 10,000 requests and their Secrets is megabytes of the
// cache. Values that differ per object (names, UIDs, timestamps, messages)
// are left alone. The shared copies live in the runtime's unique map, which
// keeps no string nobody uses.
func internStrings(in any) (any, error) {
	obj, err := meta.Accessor(in)
	if err != nil {
		return in, nil // a tombstone: nothing to share
	}
	if t, err := meta.TypeAccessor(in); err == nil {
		t.SetAPIVersion(intern(t.GetAPIVersion()))
		t.SetKind(intern(t.GetKind()))
	}
	obj.SetNamespace(intern(obj.GetNamespace()))
	obj.SetLabels(internMap(obj.GetLabels(), true))
	obj.SetAnnotations(internMap(obj.GetAnnotations(), false))
	if refs := obj.GetOwnerReferences(); len(refs) > 0 {
		for i := range refs {
			refs[i].APIVersion, refs[i].Kind = intern(refs[i].APIVersion), intern(refs[i].Kind)
		}
	}
	if etr, ok := in.(*v1alpha1.EmbedTokenRequest); ok {
		internConditions(etr.Status.Conditions)
		ref := &etr.Spec.ProviderRef
		ref.Kind, ref.Name = intern(ref.Kind), intern(ref.Name)
	}
	return in, nil
}

// stripAndIntern is the manager's cache transform: managedFields dropped,
// repeated strings shared.
func stripAndIntern(strip toolscache.TransformFunc) toolscache.TransformFunc {
	return func(in any) (any, error) {
		out, err := strip(in)
		if err != nil {
			return out, err
		}
		return internStrings(out)
	}
}

func intern(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}

// internMap returns m with its keys (and, with values, its values) shared.
func internMap(m map[string]string, values bool) map[string]string {
	if len(m) == 0 {
		return m
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if values {
			v = intern(v)
		}
		out[intern(k)] = v
	}
	return out
}

func internConditions(conds []metav1.Condition) {
	for i := range conds {
		c := &conds[i]
		c.Type, c.Status, c.Reason = intern(c.Type), metav1.ConditionStatus(intern(string(c.Status))), intern(c.Reason)
	}
}
