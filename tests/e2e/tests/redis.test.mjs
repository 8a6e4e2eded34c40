// Robustness of the application nodes when Redis dies and comes back. This file runs its own
// redis-server (E2E_REDIS_OUTAGE_PORT, default 26380) so that killing it disturbs no other test.
//
// Expected while Redis is down: every node stays up and says so clearly (a log line, /health
// answers 200 with status "degraded"), requests that need Redis fail fast (503, not a hang),
// connected Socket.IO clients stay connected and node-local events still work. When Redis is
// back (empty: it keeps nothing on disk): health says "ok" again, logins work, and cross-node
// broadcast works again for the clients connected before the outage (the adapter's
// subscriptions were renewed).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { appendFileSync, readFileSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { closeAll, connect, login, placement, raw, whoami } from "../lib/clients.mjs";
import { ARTIFACTS, BASE, HTTP_NODES, SOCKET_NODES, sleep, startTopology, until } from "../lib/harness.mjs";

const REDIS_PORT = Number(process.env.E2E_REDIS_OUTAGE_PORT || 26380);
const REDIS_URL = `redis://127.0.0.1:${REDIS_PORT}`;

let redis;
let topo;
let browser;
process.on("exit", () => { try { redis?.kill("SIGKILL"); } catch {} });

function redisPing() {
  return new Promise((res) => {
    const s = createConnection({ host: "127.0.0.1", port: REDIS_PORT });
    s.once("connect", () => s.write("PING\r\n"));
    s.once("data", (d) => { s.destroy(); res(d.toString().startsWith("+PONG")); });
    s.once("error", () => res(false));
  });
}

async function startRedis() {
  redis = spawn("redis-server", ["--port", String(REDIS_PORT), "--bind", "127.0.0.1", "--save", "",
    "--appendonly", "no", "--logfile", join(ARTIFACTS, "e2e-redis-outage.log")], { stdio: "ignore" });
  if (process.env.E2E_PIDFILE) appendFileSync(process.env.E2E_PIDFILE, `${redis.pid}\n`);
  await until(`redis-server on ${REDIS_PORT}`, redisPing, 5000);
}

async function killRedis() {
  const exited = new Promise((r) => redis.once("exit", r));
  redis.kill("SIGKILL");
  await exited;
  redis = undefined;
}

/** Each node's own /health: { name: { status, body } } (asked directly, not through the balancer). */
async function health() {
  const out = {};
  for (const n of HTTP_NODES) {
    const r = await fetch(`http://127.0.0.1:${n.port}/health`);
    const body = await r.text();
    out[n.name] = { code: r.status, status: body.split(/[\s:]/)[0], body };
  }
  for (const n of SOCKET_NODES) {
    const r = await fetch(`http://127.0.0.1:${n.port}/health`);
    const body = await r.json();
    out[n.name] = { code: r.status, status: body.status, body };
  }
  return out;
}
const allStatus = (h, status) => Object.values(h).every((v) => v.code === 200 && v.status === status);

/** Sockets on "/", at least one on each socket node: { [node]: socket }. */
async function onePerNode() {
  const socks = [];
  for (let i = 0; i < 6; i++) {
    socks.push(await connect({ transports: ["websocket"] }));
    const { nodes } = await placement(socks);
    if (new Set(nodes).size === SOCKET_NODES.length) {
      const byNode = {};
      socks.forEach((s, j) => { byNode[nodes[j]] ??= s; });
      closeAll(socks.filter((s) => !Object.values(byNode).includes(s)));
      return byNode;
    }
  }
  closeAll(socks);
  throw new Error("leastconn never used both socket nodes");
}

/** `from` shouts until `to` hears a token (the first few may be lost while subscriptions renew). */
async function shoutHeard(from, to, ms) {
  const heard = [];
  const onHeard = (m) => heard.push(m.data);
  to.on("heard", onHeard);
  try {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const token = `t-${Date.now()}-${Math.random()}`;
      await from.timeout(5000).emitWithAck("shout", token).catch(() => {});
      await sleep(300);
      if (heard.includes(token)) {
        await sleep(300);
        return heard.filter((h) => h === token).length;
      }
    }
    return 0;
  } finally {
    to.off("heard", onHeard);
  }
}

before(async () => {
  await startRedis();
  topo = await startTopology({ label: "redis-outage", redisUrl: REDIS_URL, pingIntervalMs: 2000, pingTimeoutMs: 2000 });
});
after(async () => {
  await browser?.close();
  await topo?.stop();
  if (redis) await killRedis();
});

test("nodes survive a killed Redis: degraded health, fast 503s, clients kept; all back when Redis returns", async (t) => {
  assert.ok(allStatus(await health(), "ok"), JSON.stringify(await health()));
  const byNode = await onePerNode();
  const [a, b] = SOCKET_NODES.map((n) => byNode[n.name]);
  const disconnects = [];
  for (const s of [a, b]) s.on("disconnect", (r) => disconnects.push(r));
  assert.equal(await shoutHeard(a, b, 3000), 1, "cross-node broadcast works before the outage");

  browser = await chromium.launch({
    executablePath: process.env.E2E_CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  const loggedInPage = await (await browser.newContext()).newPage();
  await loggedInPage.goto(`${BASE}/`);
  await loggedInPage.fill("#user", "before");
  await Promise.all([loggedInPage.waitForNavigation(), loggedInPage.click("#login-form button")]);
  await loggedInPage.waitForSelector("#chat", { state: "visible" });

  await killRedis();
  const down = Date.now();
  const degraded = await until("every node to report degraded", async () => {
    const h = await health();
    return allStatus(h, "degraded") && h;
  }, 6000);
  const noticed = Date.now() - down;
  for (const n of SOCKET_NODES) assert.equal(degraded[n.name].body.redis, "down", JSON.stringify(degraded));
  for (const n of HTTP_NODES) assert.match(degraded[n.name].body, /Redis/, degraded[n.name].body);

  // Through the balancer: the nodes are still in service, and a login fails fast and says why.
  assert.equal((await raw("/health")).status, 200);
  const started = Date.now();
  const refused = await raw("/api/login", { method: "POST", headers: { "content-type": "application/json" }, body: '{"user":"during"}' });
  const loginMs = Date.now() - started;
  assert.equal(refused.status, 503, refused.body);
  assert.match(refused.body, /session store unavailable/);
  assert.ok(loginMs < 4000, `login refused in ${loginMs} ms`);
  // The page says what is wrong: to a user logged in before the outage, and at a login.
  try {
    await loggedInPage.reload();
    await loggedInPage.waitForSelector("#fatal", { state: "visible", timeout: 5000 });
    assert.match(await loggedInPage.textContent("#fatal"), /cannot read sessions right now \(session store unavailable\)/);
    await loggedInPage.screenshot({ path: join(ARTIFACTS, "e2e-browser-redis-down.png") });
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${BASE}/`);
    await page.fill("#user", "during");
    await Promise.all([page.waitForNavigation(), page.click("#login-form button")]);
    await page.waitForSelector("#login-error", { state: "visible", timeout: 5000 });
    assert.equal(await page.textContent("#login-error"), "cannot log in: session store unavailable");
  } finally {
    await browser.close();
  }
  // Connected clients stay connected, and what needs no Redis still works.
  assert.equal((await whoami(a)).node, SOCKET_NODES[0].name);
  assert.equal((await whoami(b)).node, SOCKET_NODES[1].name);
  const shoutStarted = Date.now();
  const ack = await a.timeout(6000).emitWithAck("shout", "during the outage");
  assert.equal(ack.ok, false, "the broadcast reports its failure");
  const shoutMs = Date.now() - shoutStarted;
  for (const p of [...topo.procs.values()]) assert.equal(p.exitStatus, undefined, `${p.name} is still running`);
  const logs = [...topo.procs.values()].map((p) => readFileSync(p.logFile, "utf8"));
  for (const log of logs) assert.match(log, /Redis at redis:\/\/127\.0\.0\.1:\d+ is unreachable/, log.slice(-600));

  await startRedis();
  const up = Date.now();
  await until("every node to report ok again", async () => allStatus(await health(), "ok"), 10000);
  const recovered = Date.now() - up;
  for (const p of topo.procs.values()) {
    assert.match(readFileSync(p.logFile, "utf8"), /Redis at redis:\/\/127\.0\.0\.1:\d+ is reachable again/);
  }
  assert.equal(await shoutHeard(a, b, 5000), 1, "cross-node broadcast works again for the clients from before (exactly once)");
  assert.deepEqual(disconnects, [], "no client was disconnected by the outage");

  const cookie = await login("after");
  const chat = await connect({ ns: "/chat", cookie });
  try {
    assert.equal((await whoami(a)).node, SOCKET_NODES[0].name);
    assert.ok(chat.connected, "a login after the outage is known to the socket tier");
  } finally {
    chat.close();
    closeAll([a, b]);
  }
  t.diagnostic(`degraded noticed in ${noticed} ms, login refused in ${loginMs} ms, shout acked in ${shoutMs} ms, ok again ${recovered} ms after Redis returned`);
});
