#!/usr/bin/env bash
# The project's one test command (named in README.md): unit, integration,
# differential and end-to-end suites. Needs haproxy, redis-server, node and
# chromium on PATH for the suites that compare with or drive them (.ci/run
# installs them on a fresh machine).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo build (workspace)"
cargo build --workspace --all-targets --locked

echo "== cargo tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  cargo test --workspace --doc --locked
else
  cargo test --workspace --locked --no-fail-fast
fi

echo "== benchmark harness self-tests (no timings asserted)"
python3 -m unittest discover -s bench/tests

if [ -x tests/e2e/run.sh ]; then
  echo "== end-to-end (node, socket.io-client, chromium)"
  tests/e2e/run.sh
fi
echo "== all suites passed"
