// Command ociimage writes a single-layer OCI image archive (oci-layout,
// index.json, blobs) from files on disk, for `ctr images import`. The local
// cluster has no Docker engine and no registry, so its images (pause, the
// operator, the workload) are assembled here from static binaries.
//
//	ociimage -o out.tar -name docker.io/local/app:dev -entrypoint /app -file ./bin/app=/app
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"
)

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// options is what one image needs.
type options struct {
	out        string
	name       string
	entrypoint listFlag
	files      listFlag
	user       string
	env        listFlag
}

func main() {
	var o options
	flag.StringVar(&o.out, "o", "", "output archive (required)")
	flag.StringVar(&o.name, "name", "", "image reference, e.g. docker.io/local/app:dev (required)")
	flag.Var(&o.entrypoint, "entrypoint", "entrypoint element (repeatable)")
	flag.Var(&o.files, "file", "SRC=DEST: copy SRC into the image at DEST, mode kept (repeatable)")
	flag.StringVar(&o.user, "user", "", "user the container runs as, numeric UID:GID")
	flag.Var(&o.env, "env", "KEY=VALUE environment entry (repeatable)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.out == "" || o.name == "" || len(o.files) == 0 {
		return errors.New("-o, -name and at least one -file are required")
	}
	layer, diffID, err := buildLayer(o.files)
	if err != nil {
		return err
	}
	config, err := json.Marshal(imageConfig(o, diffID))
	if err != nil {
		return fmt.Errorf("encoding config: %w", err)
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        descriptor("application/vnd.oci.image.config.v1+json", config, nil),
		"layers":        []any{descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer, nil)},
	})
	if err != nil {
		return fmt.Errorf("encoding manifest: %w", err)
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []any{withPlatform(descriptor("application/vnd.oci.image.manifest.v1+json", manifest,
			map[string]string{"org.opencontainers.image.ref.name": o.name, "io.containerd.image.name": o.name}))},
	})
	if err != nil {
		return fmt.Errorf("encoding index: %w", err)
	}
	return writeArchive(o.out, map[string][]byte{
		"oci-layout":       []byte(`{"imageLayoutVersion":"1.0.0"}`),
		"index.json":       index,
		blobPath(config):   config,
		blobPath(manifest): manifest,
		blobPath(layer):    layer,
	})
}

func imageConfig(o options, diffID string) map[string]any {
	env := append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, o.env...)
	return map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      time.Unix(0, 0).UTC().Format(time.RFC3339),
		"config":       map[string]any{"Entrypoint": []string(o.entrypoint), "User": o.user, "Env": env},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	}
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func blobPath(b []byte) string {
	return "blobs/sha256/" + strings.TrimPrefix(digest(b), "sha256:")
}

func descriptor(mediaType string, b []byte, annotations map[string]string) map[string]any {
	d := map[string]any{"mediaType": mediaType, "digest": digest(b), "size": len(b)}
	if annotations != nil {
		d["annotations"] = annotations
	}
	return d
}

// withPlatform marks a manifest descriptor as linux on this machine's architecture, the only platform
// the local cluster runs on, so platform-filtered imports keep it.
func withPlatform(d map[string]any) map[string]any {
	d["platform"] = map[string]string{"architecture": runtime.GOARCH, "os": "linux"}
	return d
}

// buildLayer returns the gzipped layer and the digest of its uncompressed tar
// (the diff ID). Parent directories are added so the runtime can unpack it.
func buildLayer(files []string) (gz []byte, diffID string, err error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	dirs := map[string]bool{}
	sort.Strings(files)
	for _, f := range files {
		src, dest, ok := strings.Cut(f, "=")
		if !ok || !strings.HasPrefix(dest, "/") {
			return nil, "", fmt.Errorf("-file %q: want SRC=/DEST", f)
		}
		if err := addDirs(tw, dirs, path.Dir(dest)); err != nil {
			return nil, "", err
		}
		if err := addFile(tw, src, strings.TrimPrefix(dest, "/")); err != nil {
			return nil, "", err
		}
	}
	// /tmp and /etc are where programs commonly expect to find something.
	for _, d := range []string{"/tmp", "/etc"} {
		if err := addDirs(tw, dirs, d); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", fmt.Errorf("closing layer: %w", err)
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, "", fmt.Errorf("compressing layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, "", fmt.Errorf("compressing layer: %w", err)
	}
	return out.Bytes(), digest(raw.Bytes()), nil
}

func addDirs(tw *tar.Writer, seen map[string]bool, dir string) error {
	if dir == "/" || dir == "." || seen[dir] {
		return nil
	}
	if err := addDirs(tw, seen, path.Dir(dir)); err != nil {
		return err
	}
	seen[dir] = true
	mode := int64(0o755)
	if dir == "/tmp" {
		mode = 0o1777
	}
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(dir, "/") + "/", Mode: mode})
}

func addFile(tw *tar.Writer, src, name string) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("opening %s: %w", src, err)
	}
	defer func() { _ = f.Close() }() // read-only
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", src, err)
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: int64(st.Mode().Perm()), Size: st.Size()}); err != nil {
		return fmt.Errorf("adding %s: %w", name, err)
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("adding %s: %w", name, err)
	}
	return nil
}

// writeArchive writes the entries as a tar archive, in a stable order.
func writeArchive(out string, entries map[string][]byte) error {
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := addDirs(tw, map[string]bool{}, "/blobs/sha256"); err != nil {
		return err
	}
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(entries[n]))}); err != nil {
			return fmt.Errorf("writing %s: %w", n, err)
		}
		if _, err := tw.Write(entries[n]); err != nil {
			return fmt.Errorf("writing %s: %w", n, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("closing archive: %w", err)
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}
