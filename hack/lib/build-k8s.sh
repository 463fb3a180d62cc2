# shellcheck shell=bash
# Helpers to build Kubernetes components and etcd from source via the Go
# module proxy. Sourced by hack/envtest-assets.sh and the local-cluster
# scripts so both use one recipe.

# build_k8s_binaries VERSION OUTDIR CMD...
# Builds k8s.io/kubernetes/cmd/<CMD> at VERSION into OUTDIR. k8s.io/kubernetes
# requires its staging modules at v0.0.0, so a throwaway module pins each of
# them to the matching v0.X.Y release with replace directives.
build_k8s_binaries() {
  local version="$1" out="$2"; shift 2
  local mod; mod="$(mktemp -d)"
  mkdir -p "${out}"
  out="$(cd "${out}" && pwd)"
  local staging="0.${version#1.}"
  (
    cd "${mod}"
    go mod init k8sbuild >/dev/null 2>&1
    go mod edit -require="k8s.io/kubernetes@v${version}"
    # Discover the staging modules that k8s.io/kubernetes requires at v0.0.0.
    local gomod
    gomod="$(GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v${version}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    local m
    for m in $(awk '/^require \(/{r=1;next} r&&/^\)/{r=0} r&&$2=="v0.0.0"{print $1}' "${gomod}"); do
      go mod edit -replace="${m}=${m}@v${staging}"
    done
    printf 'package main\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n\nfunc main() {}\n' > tools.go
    GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true
    local cmd
    for cmd in "$@"; do
      echo "Building ${cmd} v${version} from source (first time takes minutes)" >&2
      GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v${version}" \
        -o "${out}/${cmd}" "k8s.io/kubernetes/cmd/${cmd}"
    done
  )
  rm -rf "${mod}"
}

# build_etcd VERSION OUTDIR
# Builds an etcd server binary whose main is etcdmain.Main, the same entry
# point the release binary uses.
build_etcd() {
  local version="$1" out="$2"
  local mod; mod="$(mktemp -d)"
  mkdir -p "${out}"
  out="$(cd "${out}" && pwd)"
  (
    cd "${mod}"
    go mod init etcdbuild >/dev/null 2>&1
    cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    go mod edit -require="go.etcd.io/etcd/server/v3@v${version}"
    echo "Building etcd v${version} from source" >&2
    GOFLAGS=-mod=mod go mod tidy >/dev/null
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${out}/etcd" .
  )
  rm -rf "${mod}"
}

# publish_build DEST CMD [ARGS...]
# Runs CMD ARGS... OUTDIR with a scratch OUTDIR beside DEST, then moves it to
# DEST in one rename, so concurrent runs never see a half-built cache entry.
# For scripts under `set -e`: a failed build exits the script, and the EXIT
# trap this sets removes the scratch dir.
publish_build() {
  local dest="$1"; shift
  local parent
  parent="$(dirname "${dest}")"
  mkdir -p "${parent}"
  PUBLISH_BUILD_WORK="$(mktemp -d "${parent}/build.XXXXXX")"
  trap 'rm -rf "${PUBLISH_BUILD_WORK}"' EXIT
  local work="${PUBLISH_BUILD_WORK}"
  "$@" "${work}/out" >&2
  rm -rf "${dest}.tmp"
  mv "${work}/out" "${dest}.tmp"
  rm -rf "${dest}"
  mv "${dest}.tmp" "${dest}"
  rm -rf "${work}"
}
