#!/usr/bin/env bash
# The whole topology in one command: builds the balancer and the reference application, then
# starts the balancer with the seed configuration (shared/seed/haproxy.cfg), two HTTP nodes and
# two socket nodes on the ports it names, and prints the URL to open. Ctrl-C stops everything.
#
#   scripts/demo.sh                                  # sessions per node (in memory)
#   scripts/demo.sh --redis redis://127.0.0.1:6379   # sessions and broadcasts shared via Redis
#   scripts/demo.sh --config other.cfg               # another topology
#
# Arguments are passed to `switchyard-app demo` (see `switchyard-app demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p switchyard -p switchyard-app
# The page's socket.io client comes from npm (crates/switchyard-app/web/package.json), not
# from a copy in the repository; the HTTP nodes serve it from node_modules.
web=crates/switchyard-app/web
if [ ! -f "$web/node_modules/socket.io-client/dist/socket.io.min.js" ]; then
  if command -v npm >/dev/null; then
    npm ci --prefix "$web" --no-audit --no-fund --loglevel=error
  else
    echo "demo.sh: npm is not installed, so the chat page cannot load socket.io-client;" \
      "install node and npm, then run: npm ci --prefix $web" >&2
  fi
fi
exec "${CARGO_TARGET_DIR:-target}/release/switchyard-app" demo "$@"
