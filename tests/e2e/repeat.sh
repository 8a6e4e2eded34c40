#!/usr/bin/env bash
# Runs end-to-end files again and again, to catch a rare failure and keep its evidence.
#
#   tests/e2e/repeat.sh 20 tests/balance.test.mjs            # 20 runs of one file
#   E2E_STRESS_PROCS=2 tests/e2e/repeat.sh 20 tests/abandon.test.mjs tests/balance.test.mjs
#
# Each run is a whole tests/e2e/run.sh (its own Redis, the files in order, as a full run has
# them) with its artefacts in $E2E_REPEAT_DIR/run<i> (default <repo>/artifacts/repeat), kept only
# when the run fails. E2E_STRESS_PROCS busy loops (default 0) compete for the CPUs meanwhile.
# At the end: passes and failures, and for each failed run its failing tests, the balancer's
# answers other than 200/101 (access log, see E2E_ACCESS_LOG in lib/harness.mjs) and the
# stalls the test processes noticed. Other variables go to run.sh unchanged (E2E_LB, ...).
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

die() { echo "repeat: $*" >&2; exit 2; }
[ $# -ge 1 ] || die "usage: repeat.sh RUNS [test files...]"
RUNS="$1"; shift
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number"
STRESS="${E2E_STRESS_PROCS:-0}"
[[ "$STRESS" =~ ^[0-9]+$ ]] || die "E2E_STRESS_PROCS must be a number"
OUT="${E2E_REPEAT_DIR:-$REPO/artifacts/repeat}"
rm -rf "$OUT"
mkdir -p "$OUT"

HOGS=()
stop_hogs() {
  for p in "${HOGS[@]}"; do kill "$p" 2>/dev/null; done
  HOGS=()
}
trap stop_hogs EXIT INT TERM
for _ in $(seq 1 "$STRESS"); do
  ( while :; do :; done ) &
  HOGS+=($!)
done

pass=0
failed=()
for i in $(seq 1 "$RUNS"); do
  dir="$OUT/run$i"
  mkdir -p "$dir"
  if E2E_ARTIFACTS="$dir" "$HERE/run.sh" "$@" > "$dir/output.txt" 2>&1; then
    pass=$((pass + 1))
    rm -rf "$dir"
    echo "run $i/$RUNS: pass"
  else
    failed+=("$i")
    echo "run $i/$RUNS: FAIL (kept in $dir)"
  fi
done
stop_hogs

echo "== $pass passed, ${#failed[@]} failed of $RUNS (E2E_STRESS_PROCS=$STRESS)"
for i in "${failed[@]}"; do
  dir="$OUT/run$i"
  echo "-- run $i"
  grep -E "^not ok|^\s+error:" "$dir/output.txt" | head -10
  for log in "$dir"/e2e-logs/*/balancer.log; do
    [ -f "$log" ] || continue
    # httplog: the status is the 6th field, the termination state and cookie flags the 10th.
    awk -v f="${log#"$dir"/}" '$6 ~ /^[0-9]+$/ && $6 != 200 && $6 != 101 {n[$6 " " $10]++}
      END {for (k in n) printf "   %s: %d x %s\n", f, n[k], k}' "$log"
  done
  cat "$dir"/e2e-logs/*/stalls.log 2>/dev/null | sed 's/^/   /'
done
[ ${#failed[@]} -eq 0 ]
