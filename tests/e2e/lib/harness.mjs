// Starts and stops the reference topology for one test file: the balancer with the seed
// configuration (switchyard by default, HAProxy with E2E_LB=haproxy as a differential oracle),
// two HTTP nodes and two socket nodes on the ports the configuration names.
//
// Environment (set by run.sh):
//   SWITCHYARD_BIN_DIR  where `switchyard` and `switchyard-app` are (default <repo>/target/debug)
//   E2E_LB              switchyard (default) | haproxy
//   E2E_CONFIG          balancer configuration (default <repo>/../shared/seed/haproxy.cfg)
//   E2E_REDIS_URL       Redis for topologies started with { redis: true }
//   E2E_ARTIFACTS       where logs and screenshots go (default <repo>/artifacts)
//   E2E_ACCESS_LOG      1 (default): the balancer logs every request (HAProxy's httplog format)
//                       to its balancer.log; 0: the configuration as it is
import { spawn } from "node:child_process";
import { createConnection } from "node:net";
import { appendFileSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const BIN_DIR = process.env.SWITCHYARD_BIN_DIR || join(REPO, "target/debug");
export const LB = process.env.E2E_LB || "switchyard";
export const CONFIG = process.env.E2E_CONFIG || join(REPO, "../shared/seed/haproxy.cfg");
export const ARTIFACTS = process.env.E2E_ARTIFACTS || join(REPO, "artifacts");
export const BASE = "http://127.0.0.1:3000";

/** The seed topology: node names map to the SRVNAME cookie values of the socket backend. */
export const HTTP_NODES = [
  { name: "http-node-1", port: 4000 },
  { name: "http-node-2", port: 4001 },
];
export const SOCKET_NODES = [
  { name: "socket-node-1", port: 5000, cookie: "S1" },
  { name: "socket-node-2", port: 5001, cookie: "S2" },
];
export const cookieOf = (node) => SOCKET_NODES.find((n) => n.name === node).cookie;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The balancer's configuration: E2E_CONFIG plus an access log on stdout (`log stdout format raw`,
 * `option httplog`), so that balancer.log says what the balancer answered to every request
 * (status, timers, termination state, persistence cookie flags) when a test fails. The seed
 * configuration logs nothing; without this a failed request left no trace on the balancer side.
 * Written into the test file's log directory; E2E_ACCESS_LOG=0 runs E2E_CONFIG unchanged.
 */
export function withAccessLog(text) {
  const lines = text.split("\n");
  const out = [];
  let hasGlobal = false;
  let hasDefaults = false;
  for (const line of lines) {
    out.push(line);
    if (/^global\b/.test(line)) {
      hasGlobal = true;
      out.push("    log stdout format raw local0");
    } else if (/^defaults\b/.test(line)) {
      hasDefaults = true;
      out.push("    log global", "    option httplog");
    }
  }
  if (!hasDefaults) {
    // Sections inherit nothing: each frontend gets the log lines itself.
    for (let i = out.length - 1; i >= 0; i--) {
      if (/^frontend\b/.test(out[i])) out.splice(i + 1, 0, "    log global", "    option httplog");
    }
  }
  if (!hasGlobal) out.unshift("global", "    log stdout format raw local0", "");
  return out.join("\n");
}

function balancerConfig(logDir) {
  if (process.env.E2E_ACCESS_LOG === "0") return CONFIG;
  const path = join(logDir, "balancer.cfg");
  writeFileSync(path, withAccessLog(readFileSync(CONFIG, "utf8")));
  return path;
}

/**
 * Watches this process's event loop: a timer due every 100 ms that fires a second or more late
 * means the process did not run (a machine overloaded or paused: on the CI VM every process
 * once stopped for 5.5 s). Each stall goes to `stalls.log` in the log directory and to stderr,
 * so that a timeout after one is recognised as the machine's, not the code under test's.
 */
function watchStalls(logDir, label) {
  const log = join(logDir, "stalls.log");
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const late = now - last - 100;
    last = now;
    if (late >= 1000) {
      const line = `${new Date().toISOString()} ${label}: this test process was stalled ${(late / 1000).toFixed(1)} s (machine overloaded or paused)`;
      appendFileSync(log, `${line}\n`);
      process.stderr.write(`e2e: ${line}\n`);
    }
  }, 100);
  timer.unref();
  return () => clearInterval(timer);
}

/** Resolves once 127.0.0.1:port accepts a TCP connection. */
function canConnect(port) {
  return new Promise((res) => {
    const s = createConnection({ host: "127.0.0.1", port });
    s.once("connect", () => { s.destroy(); res(true); });
    s.once("error", () => res(false));
  });
}

/** Polls `check` every 100 ms until it returns truthy or `ms` pass. */
export async function until(what, check, ms = 15000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
}

// Children are killed when this test file's process ends, however it ends; their pids are
// also listed in E2E_PIDFILE so that run.sh can reap them if this process is itself killed.
const live = new Set();
const killAll = () => { for (const p of live) { try { p.kill("SIGKILL"); } catch {} } };
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => { killAll(); process.exit(1); });
}
const recordPid = (pid) => {
  if (process.env.E2E_PIDFILE) appendFileSync(process.env.E2E_PIDFILE, `${pid}\n`);
};

class Proc {
  constructor(name, cmd, args, port, logDir) {
    Object.assign(this, { name, cmd, args, port, logDir });
  }

  async start() {
    const log = join(this.logDir, `${this.name}.log`);
    this.logFile = log;
    this.exitStatus = undefined;
    const fd = openSync(log, "a");
    this.child = spawn(this.cmd, this.args, { stdio: ["ignore", fd, fd] });
    live.add(this.child);
    recordPid(this.child.pid);
    this.exited = new Promise((res) => this.child.once("exit", (code, sig) => {
      live.delete(this.child);
      this.exitStatus = sig || code;
      res(this.exitStatus);
    }));
    await until(`${this.name} to listen on ${this.port}`, async () => {
      if (this.exitStatus !== undefined) {
        throw new Error(`${this.name} exited (${this.exitStatus}): ${this.tail()}`);
      }
      return canConnect(this.port);
    });
  }

  tail() {
    try { return readFileSync(this.logFile, "utf8").slice(-800); } catch { return ""; }
  }

  async stop(signal = "SIGTERM") {
    if (!this.child || this.exitStatus !== undefined) return;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

/**
 * Starts the topology. `redis: true` runs every node against E2E_REDIS_URL (shared sessions,
 * cross-node broadcast), `redisUrl` another Redis (a test that stops its own); otherwise the
 * nodes keep sessions in memory. `socketArgs` are added to every socket node's command line.
 */
export async function startTopology({ redis = true, redisUrl, label = "topology", pingIntervalMs, pingTimeoutMs, socketArgs = [] } = {}) {
  const logDir = join(ARTIFACTS, "e2e-logs", label);
  mkdirSync(logDir, { recursive: true });
  const app = join(BIN_DIR, "switchyard-app");
  const redisArgs = [];
  if (redisUrl) {
    redisArgs.push("--redis", redisUrl);
  } else if (redis) {
    if (!process.env.E2E_REDIS_URL) throw new Error("E2E_REDIS_URL is not set (run through tests/e2e/run.sh)");
    redisArgs.push("--redis", process.env.E2E_REDIS_URL);
  }
  const procs = new Map();
  for (const n of HTTP_NODES) {
    procs.set(n.name, new Proc(n.name, app, ["http", "--port", String(n.port), "--node-name", n.name, ...redisArgs], n.port, logDir));
  }
  const pingArgs = [];
  if (pingIntervalMs) pingArgs.push("--ping-interval-ms", String(pingIntervalMs));
  if (pingTimeoutMs) pingArgs.push("--ping-timeout-ms", String(pingTimeoutMs));
  for (const n of SOCKET_NODES) {
    procs.set(n.name, new Proc(n.name, app, ["socket", "--port", String(n.port), "--node-name", n.name, ...redisArgs, ...pingArgs, ...socketArgs], n.port, logDir));
  }
  const config = balancerConfig(logDir);
  const lb = LB === "haproxy"
    ? new Proc("balancer", "/usr/sbin/haproxy", ["-f", config, "-db"], 3000, logDir)
    : new Proc("balancer", join(BIN_DIR, "switchyard"), ["-f", config], 3000, logDir);
  const unwatch = watchStalls(logDir, label);
  const topo = {
    procs,
    lb,
    async stop() {
      unwatch();
      await Promise.all([lb, ...procs.values()].map((p) => p.stop()));
    },
    /** Kills one node (SIGKILL by default: a crash, not a shutdown). */
    async kill(name, signal = "SIGKILL") { await procs.get(name).stop(signal); },
    async restart(name) { await procs.get(name).start(); },
  };
  try {
    await Promise.all([...procs.values()].map((p) => p.start()));
    await lb.start();
    await waitAllServing();
  } catch (err) {
    await topo.stop();
    throw err;
  }
  return topo;
}

/** Waits until the balancer reaches every node: both HTTP nodes, both socket nodes by cookie. */
async function waitAllServing() {
  await until("the balancer to reach both HTTP nodes", async () => {
    const seen = new Set();
    for (let i = 0; i < 4; i++) {
      const r = await fetch(`${BASE}/health`);
      await r.text();
      if (r.ok) seen.add(r.headers.get("x-node"));
    }
    return seen.size === HTTP_NODES.length;
  });
  for (const n of SOCKET_NODES) {
    await until(`the balancer to reach ${n.name}`, async () => {
      const r = await fetch(`${BASE}/engine.io/?EIO=4&transport=polling`, {
        headers: { cookie: `SRVNAME=${n.cookie}` },
      });
      await r.text();
      return r.ok && r.headers.get("x-node") === n.name;
    });
  }
}
