#!/usr/bin/env bash
# End-to-end suite: real socket.io clients (node --test) and headless Chromium against the
# reference topology (balancer + 2 HTTP nodes + 2 socket nodes + Redis), all on 127.0.0.1.
#
#   tests/e2e/run.sh                      # through switchyard (binaries in target/debug)
#   E2E_LB=haproxy tests/e2e/run.sh       # the same suite through HAProxy (differential oracle)
#   tests/e2e/run.sh tests/sticky.test.mjs   # some files only
#
# Prepares what the tests need and is missing: npm packages (tests/e2e and the app's browser
# client in crates/switchyard-app/web) and python-socketio in tests/e2e/.venv (requirements.txt).
#
# Environment: SWITCHYARD_BIN_DIR (default <repo>/target/debug), E2E_REDIS_PORT (26379),
# E2E_REDIS_OUTAGE_PORT (26380), E2E_CONFIG (default <repo>/../shared/seed/haproxy.cfg),
# E2E_ACCESS_LOG (1: the balancer runs E2E_CONFIG plus an access log, in balancer.log; 0: as is).
# Artefacts (node and balancer logs, stalls.log, screenshots) go to <repo>/artifacts/. A rare
# failure: tests/e2e/repeat.sh runs files again and again and keeps the failed runs' artefacts.
# Each test file starts and stops its own topology on the seed ports 3000, 4000, 4001, 5000,
# 5001, which must be free.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
cd "$HERE"

die() { echo "e2e: $*" >&2; exit 1; }

command -v node >/dev/null || die "node is not installed (Debian: apt-get install nodejs npm)"
command -v npm >/dev/null || die "npm is not installed (Debian: apt-get install npm)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 18 ] || die "node >= 18 is needed (found $(node --version))"
command -v redis-server >/dev/null || die "redis-server is not installed (Debian: apt-get install redis-server)"
export E2E_CHROMIUM="${E2E_CHROMIUM:-/usr/bin/chromium}"
[ -x "$E2E_CHROMIUM" ] || die "$E2E_CHROMIUM not found (Debian: apt-get install chromium)"

export SWITCHYARD_BIN_DIR="${SWITCHYARD_BIN_DIR:-$REPO/target/debug}"
export E2E_LB="${E2E_LB:-switchyard}"
export E2E_CONFIG="${E2E_CONFIG:-$REPO/../shared/seed/haproxy.cfg}"
export E2E_ARTIFACTS="${E2E_ARTIFACTS:-$REPO/artifacts}"
[ -x "$SWITCHYARD_BIN_DIR/switchyard-app" ] || die "$SWITCHYARD_BIN_DIR/switchyard-app not found (cargo build -p switchyard-app)"
if [ "$E2E_LB" = switchyard ]; then
  [ -x "$SWITCHYARD_BIN_DIR/switchyard" ] || die "$SWITCHYARD_BIN_DIR/switchyard not found (cargo build -p switchyard)"
elif [ "$E2E_LB" = haproxy ]; then
  [ -x /usr/sbin/haproxy ] || die "/usr/sbin/haproxy not found"
else
  die "E2E_LB must be switchyard or haproxy"
fi
[ -f "$E2E_CONFIG" ] || die "balancer configuration $E2E_CONFIG not found"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  echo "e2e: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# The chat page's socket.io client is a declared npm dependency of the application
# (crates/switchyard-app/web), served by the HTTP nodes from its node_modules.
WEB="$REPO/crates/switchyard-app/web"
if [ ! -f "$WEB/node_modules/socket.io-client/dist/socket.io.min.js" ] || [ "$WEB/package-lock.json" -nt "$WEB/node_modules" ]; then
  echo "e2e: npm ci --prefix crates/switchyard-app/web"
  npm ci --prefix "$WEB" --no-audit --no-fund --loglevel=error
fi

# python-socketio (tests/python.test.mjs) runs from a virtualenv of the suite's own, with the
# versions pinned in requirements.txt, so that no system Python is changed (Debian's refuses
# pip installs anyway). Created and filled here when missing: .ci/run relies on this and on
# python3 with its venv module (Debian: python3-venv) and PyPI being reachable.
command -v python3 >/dev/null || die "python3 is not installed (Debian: apt-get install python3 python3-venv)"
VENV="$HERE/.venv"
if ! "$VENV/bin/python" -c 'import socketio, requests, websocket' 2>/dev/null \
   || [ requirements.txt -nt "$VENV/installed" ]; then
  echo "e2e: pip install -r tests/e2e/requirements.txt (into tests/e2e/.venv)"
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" || die "cannot create $VENV (Debian: apt-get install python3-venv)"
  fi
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt \
    || die "pip install -r tests/e2e/requirements.txt failed"
  touch "$VENV/installed"
fi
export E2E_PYTHON="$VENV/bin/python"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
REDIS_PORT="${E2E_REDIS_PORT:-26379}"
# redis.test.mjs runs (and kills) a Redis of its own on this port.
export E2E_REDIS_OUTAGE_PORT="${E2E_REDIS_OUTAGE_PORT:-26380}"
for p in 3000 4000 4001 5000 5001 "$REDIS_PORT" "$E2E_REDIS_OUTAGE_PORT"; do
  port_busy "$p" && die "port $p is already in use; the suite needs 3000 4000 4001 5000 5001, $REDIS_PORT and $E2E_REDIS_OUTAGE_PORT free"
done

mkdir -p "$E2E_ARTIFACTS"
rm -rf "$E2E_ARTIFACTS/e2e-logs"
REDIS_PID=""
export E2E_PIDFILE="$E2E_ARTIFACTS/e2e-pids"
: > "$E2E_PIDFILE"
cleanup() {
  # Processes a test file started and could not stop (it was killed itself): only those pids,
  # and only if they still run one of the topology's programs.
  while read -r pid; do
    if [ -n "$pid" ] && ps -o args= -p "$pid" 2>/dev/null | grep -qE 'switchyard|haproxy|redis-server'; then
      kill -9 "$pid" 2>/dev/null || true
    fi
  done < "$E2E_PIDFILE"
  if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT INT TERM

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --logfile "$E2E_ARTIFACTS/e2e-redis.log" &
REDIS_PID=$!
for _ in $(seq 1 50); do
  if redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then break; fi
  kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server failed to start (see $E2E_ARTIFACTS/e2e-redis.log)"
  sleep 0.1
done
redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG || die "redis-server did not answer PING"
export E2E_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"

echo "e2e: balancer $E2E_LB, binaries in $SWITCHYARD_BIN_DIR, Redis on $REDIS_PORT"
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(tests/*.test.mjs)
# One file at a time: every file starts its own topology on the seed ports.
timeout 600 node --test --test-concurrency=1 --test-timeout=120000 "${files[@]}"
