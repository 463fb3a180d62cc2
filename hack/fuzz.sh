#!/usr/bin/env bash
# Runs every Go fuzz target for FUZZTIME each. Go 1.26's fuzz coordinator can
# fail a target with a bare "context deadline exceeded" when -fuzztime ends
# while a worker is mid-call on a loaded machine (go.dev/issue/75804, fixed in
# Go 1.27); no failing input is written then. A target that fails without
# writing a new input under testdata/fuzz/<target> is run once more; one that
# writes an input, or fails twice, fails the run.
set -uo pipefail

FUZZTIME="${FUZZTIME:-10s}"

inputs() { find "$1/testdata/fuzz/$2" -type f 2>/dev/null | sort; }

dirs="$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u)"
for dir in $dirs; do
  for target in $(go test -list '^Fuzz' "$dir" | grep '^Fuzz'); do
    for attempt in 1 2; do
      echo "==> $dir $target ($FUZZTIME)"
      before="$(inputs "$dir" "$target")"
      if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$dir"; then
        break
      fi
      if [[ "$(inputs "$dir" "$target")" != "$before" || $attempt == 2 ]]; then
        echo "fuzz: $target failed; any failing input is under $dir/testdata/fuzz/$target" >&2
        exit 1
      fi
      echo "fuzz: $target failed without a failing input (Go's fuzztime shutdown race); running it again" >&2
    done
  done
done
