#!/usr/bin/env bash
# `make demo`: brings up the local single-node cluster (hack/local-cluster),
# deploys the operator from config/local, applies the Qrvey demo from
# config/local/demo against the vendor simulator, and follows the app pod's
# output: the digest of the token it reads from the mounted Secret and the
# token's remaining lifetime. A new digest appears about every 2 minutes,
# well before the old token expires. Ctrl-C stops following; the cluster keeps
# running until `make cluster-down`. DEMO_DURATION=5m stops following after
# that long.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LC="${REPO}/hack/local-cluster"
DEMO="${REPO}/config/local/demo"

kc() { bash "${LC}" kubectl "$@"; }

follow_app_log() {
  local uid log
  uid="$(kc -n demo get pod dashboard-app -o jsonpath='{.metadata.uid}')"
  log="/var/log/pods/demo_dashboard-app_${uid}/app/0.log"
  # CRI log lines are "<time> <stream> <tag> <text>": show the text.
  if [[ -n "${DEMO_DURATION:-}" ]]; then
    timeout "${DEMO_DURATION}" tail -n +1 -F "${log}" | cut -d' ' -f4- || true
  else
    tail -n +1 -F "${log}" | cut -d' ' -f4-
  fi
}

main() {
  bash "${LC}" up
  bash "${LC}" deploy
  echo "==> Applying the demo (namespace demo): Qrvey provider, 4-minute tokens, an app pod" >&2
  kc apply -f "${DEMO}/namespace.yaml" >/dev/null
  kc apply -n demo -f "${DEMO}/qrvey.yaml"
  kc -n demo wait --for=condition=Ready etr/sales-dashboard --timeout=120s
  kc apply -n demo -f "${DEMO}/app.yaml"
  kc -n demo wait --for=condition=Ready pod/dashboard-app --timeout=180s
  kc -n demo get etr
  cat >&2 <<TXT

The app pod prints the token it reads from the mounted Secret (as a digest),
its remaining lifetime and the vendor simulator's verdict every 5 s. Watch the
digest change about 2 minutes before expiry, with the remaining lifetime never
reaching zero. In another terminal:

  $(bash "${LC}" env | tr '\n' ';')
  kubectl get etr -n demo -w

Stop with Ctrl-C; tear down with: make cluster-down

TXT
  follow_app_log
}

main "$@"
