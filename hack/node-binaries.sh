#!/usr/bin/env bash
# Builds the binaries of a single-node cluster (kube-controller-manager,
# kube-scheduler, kubelet, kubectl) from source through the Go module proxy
# and prints the directory that holds them. kube-apiserver and etcd come from
# the envtest assets (hack/envtest-assets.sh), so one build serves both. The
# result is cached outside the repository, keyed by version, and published
# atomically so concurrent runs are safe.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.1}"
CACHE_ROOT="${EMBEDTOKEN_ASSETS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/embed-token-operator}"
DEST="${CACHE_ROOT}/node/k8s-${K8S_VERSION}"
CMDS=(kube-controller-manager kube-scheduler kubelet kubectl)

complete() {
  local c
  for c in "${CMDS[@]}"; do
    [[ -x "${DEST}/${c}" ]] || return 1
  done
}

if complete; then
  echo "${DEST}"
  exit 0
fi

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/lib/build-k8s.sh
source "${HACK_DIR}/lib/build-k8s.sh"

# build_node OUTDIR
build_node() { build_k8s_binaries "${K8S_VERSION}" "$1" "${CMDS[@]}"; }

publish_build "${DEST}" build_node
echo "${DEST}"
