package controller

import (
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
)

// decoded builds a fresh copy of s, as a decoder allocates one per object.
func decoded(s string) string { return string([]byte(s)) }

func secretLike(name string) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	m.Name, m.Namespace = decoded(name), decoded("team-a")
	m.Labels = map[string]string{decoded(v1alpha1.ManagedByLabel): decoded(v1alpha1.ManagedByValue)}
	m.Annotations = map[string]string{decoded(v1alpha1.ExpiresAtAnnotation): decoded("2026-12-03T10:00:00Z"), decoded("note"): decoded(name)}
	m.OwnerReferences = []metav1.OwnerReference{{APIVersion: decoded("embedtokens.io/v1alpha1"), Kind: decoded("EmbedTokenRequest"), Name: decoded(name)}}
	m.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "x"}}
	return m
}

func requestLike(name string) *v1alpha1.EmbedTokenRequest {
	etr := &v1alpha1.EmbedTokenRequest{ObjectMeta: metav1.ObjectMeta{Name: decoded(name), Namespace: decoded("team-a")}}
	etr.Spec.ProviderRef = v1alpha1.ProviderRef{Kind: decoded("EmbedProvider"), Name: decoded("qrvey")}
	etr.Status.Conditions = []metav1.Condition{{Type: decoded("Ready"), Status: metav1.ConditionStatus(decoded("True")), Reason: decoded("TokenIssued"), Message: decoded("issued " + name)}}
	return etr
}

// sameData reports whether a and b share their bytes, which is what interning means.
func sameData(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) } //nolint:gosec // G103: comparing the data pointers is the check

func oneKey(m map[string]string, want string) string {
	for k := range m {
		if k == want {
			return k
		}
	}
	return ""
}

// TestInternStrings proves the cache transform makes two objects share their
// repeated strings, leaves every value equal, keeps per-object values
// unshared, and still drops managedFields.
func TestInternStrings(t *testing.T) {
	transform := stripAndIntern(cache.TransformStripManagedFields())
	a, _ := transform(secretLike("a"))
	b, _ := transform(secretLike("b"))
	sa, sb := a.(*metav1.PartialObjectMetadata), b.(*metav1.PartialObjectMetadata)
	for _, tc := range []struct {
		name   string
		x, y   string
		shared bool
	}{
		{"namespace", sa.Namespace, sb.Namespace, true},
		{"kind", sa.Kind, sb.Kind, true},
		{"label key", oneKey(sa.Labels, v1alpha1.ManagedByLabel), oneKey(sb.Labels, v1alpha1.ManagedByLabel), true},
		{"label value", sa.Labels[v1alpha1.ManagedByLabel], sb.Labels[v1alpha1.ManagedByLabel], true},
		{"annotation key", oneKey(sa.Annotations, v1alpha1.ExpiresAtAnnotation), oneKey(sb.Annotations, v1alpha1.ExpiresAtAnnotation), true},
		{"owner kind", sa.OwnerReferences[0].Kind, sb.OwnerReferences[0].Kind, true},
		{"owner API version", sa.OwnerReferences[0].APIVersion, sb.OwnerReferences[0].APIVersion, true},
		{"annotation value", sa.Annotations[v1alpha1.ExpiresAtAnnotation], sb.Annotations[v1alpha1.ExpiresAtAnnotation], false},
	} {
		if tc.x == "" || tc.y == "" {
			t.Fatalf("%s: lost (%q, %q)", tc.name, tc.x, tc.y)
		}
		if got := sameData(tc.x, tc.y); got != tc.shared {
			t.Errorf("%s: shared = %v, want %v", tc.name, got, tc.shared)
		}
	}
	if sa.Annotations["note"] != "a" || sb.Annotations["note"] != "b" || sa.OwnerReferences[0].Name != "a" {
		t.Errorf("values changed: %v %v", sa.Annotations, sa.OwnerReferences)
	}
	if sa.ManagedFields != nil {
		t.Error("managedFields kept")
	}

	ra, _ := transform(requestLike("a"))
	rb, _ := transform(requestLike("b"))
	ca, cb := ra.(*v1alpha1.EmbedTokenRequest).Status.Conditions[0], rb.(*v1alpha1.EmbedTokenRequest).Status.Conditions[0]
	if !sameData(ca.Reason, cb.Reason) || !sameData(ca.Type, cb.Type) || !sameData(string(ca.Status), string(cb.Status)) {
		t.Error("condition type, status and reason are not shared")
	}
	if sameData(ca.Message, cb.Message) || ca.Message != "issued a" {
		t.Errorf("condition message shared or changed: %q", ca.Message)
	}
	if pa, pb := ra.(*v1alpha1.EmbedTokenRequest).Spec.ProviderRef, rb.(*v1alpha1.EmbedTokenRequest).Spec.ProviderRef; !sameData(pa.Name, pb.Name) || pa.Name != "qrvey" {
		t.Error("provider reference not shared")
	}
	if out, err := transform(toolscache.DeletedFinalStateUnknown{Key: "team-a/a"}); err != nil || out == nil {
		t.Errorf("a tombstone: %v, %v", out, err)
	}
}
