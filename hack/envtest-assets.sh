#!/usr/bin/env bash
# Builds the envtest assets (kube-apiserver, etcd) from source through the Go
# module proxy and prints the directory that holds them. setup-envtest cannot
# download release binaries on machines without internet access, so the
# project builds them once and caches them outside the repository, keyed by
# version. Safe to run concurrently: the result is published atomically.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.1}"
ETCD_VERSION="${ETCD_VERSION:-3.7.0}"
CACHE_ROOT="${EMBEDTOKEN_ASSETS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/embed-token-operator}"
DEST="${CACHE_ROOT}/envtest/k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}"

if [[ -x "${DEST}/kube-apiserver" && -x "${DEST}/etcd" ]]; then
  echo "${DEST}"
  exit 0
fi

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/lib/build-k8s.sh
source "${HACK_DIR}/lib/build-k8s.sh"

# build_assets OUTDIR
build_assets() {
  build_k8s_binaries "${K8S_VERSION}" "$1" kube-apiserver
  build_etcd "${ETCD_VERSION}" "$1"
}

publish_build "${DEST}" build_assets
echo "${DEST}"
