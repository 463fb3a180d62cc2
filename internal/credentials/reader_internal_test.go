package credentials

import (
	"context"
	"errors"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/embedtokens/embed-token-operator/api/v1alpha1"
	"github.com/embedtokens/embed-token-operator/internal/provider"
)

// recordingReader records every key read and holds one Secret per key.
type recordingReader struct {
	reads []client.ObjectKey
}

func (r *recordingReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	r.reads = append(r.reads, key)
	if s, ok := obj.(*corev1.Secret); ok {
		s.Data = map[string][]byte{"key": []byte("value")}
	}
	return nil
}

func (r *recordingReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return errors.New("credential reads never list")
}

// TestReaderStaysInItsNamespaces proves, at the level of API reads, that
// no reference can make the operator read a Secret outside the namespaces
// the provider may read: an EmbedProvider its own, a ClusterEmbedProvider
// only the namespaces its references name. Every case runs with New, which
// takes the rules from its arguments, and with ForProvider, which takes
// them from the provider object's kind.
func TestReaderStaysInItsNamespaces(t *testing.T) {
	constructors := map[string]func(r client.Reader, clusterScoped bool) Reader{
		"New": func(r client.Reader, clusterScoped bool) Reader {
			if clusterScoped {
				return New(r, "", true)
			}
			return New(r, "team-a", false)
		},
		"ForProvider": func(r client.Reader, clusterScoped bool) Reader {
			if clusterScoped {
				return ForProvider(r, &v1alpha1.ClusterEmbedProvider{ObjectMeta: metav1.ObjectMeta{Name: "shared", UID: "c1"}}, "", nil, nil)
			}
			return ForProvider(r, &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "own", UID: "p1"}}, "", nil, nil)
		},
	}
	tests := []struct {
		name          string
		clusterScoped bool
		ref           v1alpha1.SecretKeySelector
		wantRead      string // namespace read, "" for none
		wantReason    string
	}{
		{name: "an EmbedProvider reads its own namespace by default",
			ref: v1alpha1.SecretKeySelector{Name: "creds", Key: "key"}, wantRead: "team-a"},
		{name: "an EmbedProvider may name its own namespace",
			ref: v1alpha1.SecretKeySelector{Name: "creds", Key: "key", Namespace: "team-a"}, wantRead: "team-a"},
		{name: "an EmbedProvider naming another namespace reads nothing",
			ref: v1alpha1.SecretKeySelector{Name: "creds", Key: "key", Namespace: "kube-system"}, wantReason: v1alpha1.ReasonProviderInvalid},
		{name: "a ClusterEmbedProvider reads the namespace its reference names", clusterScoped: true,
			ref: v1alpha1.SecretKeySelector{Name: "creds", Key: "key", Namespace: "platform"}, wantRead: "platform"},
		{name: "a ClusterEmbedProvider reference without namespace reads nothing", clusterScoped: true,
			ref: v1alpha1.SecretKeySelector{Name: "creds", Key: "key"}, wantReason: v1alpha1.ReasonProviderInvalid},
	}
	for _, tc := range tests {
		for constructor, newReader := range constructors {
			t.Run(tc.name+" ("+constructor+")", func(t *testing.T) {
				rec := &recordingReader{}
				r := newReader(rec, tc.clusterScoped)
				_, err := r.Read(context.Background(), tc.ref)
				_, verr := r.Version(context.Background(), []v1alpha1.SecretKeySelector{tc.ref})
				if tc.wantReason != "" {
					if err == nil || provider.Classify(err).Reason != tc.wantReason || verr == nil {
						t.Fatalf("Read = %v, version = %v; want %s from both", err, verr, tc.wantReason)
					}
					if len(rec.reads) != 0 {
						t.Fatalf("read %v although the reference is not allowed", rec.reads)
					}
					return
				}
				if err != nil || verr != nil {
					t.Fatalf("Read = %v, version = %v", err, verr)
				}
				for _, key := range rec.reads {
					if key.Namespace != tc.wantRead || key.Name != "creds" {
						t.Fatalf("read %v, want only %s/creds", key, tc.wantRead)
					}
				}
				if len(rec.reads) != 2 {
					t.Fatalf("reads = %v, want one by Read and one by version", rec.reads)
				}
			})
		}
	}
}

// failingReader fails every read.
type failingReader struct{ recordingReader }

func (r *failingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	_ = r.recordingReader.Get(ctx, key, obj, opts...)
	return errors.New("unavailable")
}

// TestCredentialCache checks when a credential is read again: never while
// the provider's UID, generation and credentialsVersion stay the same; once
// after any of them changes or the provider is forgotten; on every attempt
// while reads fail or before the provider reports a credentialsVersion.
func TestCredentialCache(t *testing.T) {
	ref := v1alpha1.SecretKeySelector{Name: "creds", Key: "key"}
	cache := NewCache()
	rec := &recordingReader{}
	reader := func(uid string, generation int64, version string) Reader {
		obj := &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "own", UID: types.UID(uid), Generation: generation}}
		return ForProvider(rec, obj, version, cache, nil)
	}
	steps := []struct {
		name      string
		reader    Reader
		wantReads int // total so far
	}{
		{"first read", reader("p1", 1, "v1"), 1},
		{"same provider, generation and version", reader("p1", 1, "v1"), 1},
		{"credentials rotated (credentialsVersion changed)", reader("p1", 1, "v2"), 2},
		{"served again at the new version", reader("p1", 1, "v2"), 2},
		{"spec changed (generation)", reader("p1", 2, "v2"), 3},
		{"another provider object", reader("p2", 2, "v2"), 4},
		{"no credentialsVersion yet: never cached", reader("p3", 1, ""), 5},
		{"no credentialsVersion yet, again", reader("p3", 1, ""), 6},
		{"no cache at all", New(rec, "team-a", false), 7},
	}
	for _, s := range steps {
		v, err := s.reader.Read(context.Background(), ref)
		if err != nil || string(v) != "value" {
			t.Fatalf("%s: Read = %q, %v", s.name, v, err)
		}
		if len(rec.reads) != s.wantReads {
			t.Fatalf("%s: %d reads so far, want %d", s.name, len(rec.reads), s.wantReads)
		}
	}

	cache.Forget("p2")
	if _, err := reader("p2", 2, "v2").Read(context.Background(), ref); err != nil || len(rec.reads) != 8 {
		t.Fatalf("after Forget: Read = %v, %d reads so far, want 8", err, len(rec.reads))
	}

	failing := &failingReader{}
	r := ForProvider(failing, &v1alpha1.EmbedProvider{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", UID: "p4", Generation: 1}}, "v1", cache, nil)
	for i := range 2 {
		if _, err := r.Read(context.Background(), ref); err == nil {
			t.Fatal("a failed read returned no error")
		}
		if len(failing.reads) != i+1 {
			t.Fatalf("a failed read was cached: %d reads after %d attempts", len(failing.reads), i+1)
		}
	}
}

// TestCredentialCacheIsBounded checks the cache never holds more than
// maxCachedProviders providers.
func TestCredentialCacheIsBounded(t *testing.T) {
	c := NewCache()
	ref := v1alpha1.SecretKeySelector{Name: "creds", Key: "key"}
	for i := range 2*maxCachedProviders + 1 {
		c.put(types.UID(fmt.Sprint(i)), "1/v", ref, []byte("x"))
		if len(c.entries) > maxCachedProviders {
			t.Fatalf("%d providers cached, the bound is %d", len(c.entries), maxCachedProviders)
		}
	}
}
