package controller

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
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

// TestCredentialReaderStaysInItsNamespaces proves, at the level of API
// reads, that no reference can make the operator read a Secret outside the
// namespaces the provider may read: an EmbedProvider its own, a
// ClusterEmbedProvider only the namespaces its references name.
func TestCredentialReaderStaysInItsNamespaces(t *testing.T) {
	tests := []struct {
		name       string
		reader     credentialReader
		ref        v1alpha1.SecretKeySelector
		wantRead   string // namespace read, "" for none
		wantReason string
	}{
		{name: "an EmbedProvider reads its own namespace by default",
			reader: credentialReader{namespace: "team-a"}, ref: v1alpha1.SecretKeySelector{Name: "creds", Key: "key"}, wantRead: "team-a"},
		{name: "an EmbedProvider may name its own namespace",
			reader: credentialReader{namespace: "team-a"}, ref: v1alpha1.SecretKeySelector{Name: "creds", Key: "key", Namespace: "team-a"}, wantRead: "team-a"},
		{name: "an EmbedProvider naming another namespace reads nothing",
			reader: credentialReader{namespace: "team-a"}, ref: v1alpha1.SecretKeySelector{Name: "creds", Key: "key", Namespace: "kube-system"},
			wantReason: v1alpha1.ReasonProviderInvalid},
		{name: "a ClusterEmbedProvider reads the namespace its reference names",
			reader: credentialReader{clusterScoped: true}, ref: v1alpha1.SecretKeySelector{Name: "creds", Key: "key", Namespace: "platform"}, wantRead: "platform"},
		{name: "a ClusterEmbedProvider reference without namespace reads nothing",
			reader: credentialReader{clusterScoped: true}, ref: v1alpha1.SecretKeySelector{Name: "creds", Key: "key"},
			wantReason: v1alpha1.ReasonProviderInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recordingReader{}
			tc.reader.reader = rec
			_, err := tc.reader.Read(context.Background(), tc.ref)
			_, verr := tc.reader.version(context.Background(), []v1alpha1.SecretKeySelector{tc.ref})
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
