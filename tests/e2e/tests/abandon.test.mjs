// Scenario 22b of the sticky-session notes: clients that start the WebSocket upgrade through the
// balancer and abandon it. 50 raw Engine.IO clients each open a polling session (CONNECT to
// "/"), then open the upgrade WebSocket with their sid and SRVNAME: half send the `2probe`,
// read `3probe` and drop the connection without the final `5`; the other half never send
// anything on their WebSocket and keep it open. Nobody polls again or answers pings.
//
// Expected: every session is reaped by the node within upgrade_timeout (engineioxide's 10 s) +
// pingTimeout, the half-open WebSocket tunnels are closed by the node and the balancer passes
// the close on to the client, the balancer's open file descriptors come back to where they
// were, and a new client is served normally.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createConnection } from "node:net";
import { randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { connect, rawTcp, whoami } from "../lib/clients.mjs";
import { BASE, SOCKET_NODES, sleep, startTopology } from "../lib/harness.mjs";

const PING_INTERVAL = 3000;
const PING_TIMEOUT = 2000;
const UPGRADE_TIMEOUT = 10000; // engineioxide's default, which the socket tier keeps
const CLIENTS = 50;

let topo;
before(async () => {
  topo = await startTopology({ label: "abandon", pingIntervalMs: PING_INTERVAL, pingTimeoutMs: PING_TIMEOUT });
});
after(async () => { await topo?.stop(); });

/** Socket.IO clients connected on each socket node, from the nodes' own /health. */
async function connectedPerNode() {
  const counts = {};
  for (const n of SOCKET_NODES) {
    const r = await fetch(`http://127.0.0.1:${n.port}/health`);
    counts[n.name] = (await r.json()).connected;
  }
  return counts;
}
const total = (counts) => Object.values(counts).reduce((a, b) => a + b, 0);

/** Open descriptors of the balancer process (Linux /proc). */
const balancerFds = () => readdirSync(`/proc/${topo.lb.child.pid}/fd`).length;

/** A polling session connected to "/": { sid, cookie } (raw requests, `connection: close`). */
async function pollingSession() {
  const open = await rawTcp("GET", "/engine.io/?EIO=4&transport=polling");
  assert.equal(open.status, 200, open.body);
  const sid = JSON.parse(open.body.slice(1)).sid;
  const cookie = open.header("set-cookie").split(";")[0];
  assert.match(cookie, /^SRVNAME=S\d$/);
  const path = `/engine.io/?EIO=4&transport=polling&sid=${sid}`;
  const post = await rawTcp("POST", path, [["cookie", cookie], ["content-type", "text/plain"]], "40");
  assert.equal(post.body, "ok");
  for (let i = 0; i < 5; i++) {
    const poll = await rawTcp("GET", path, [["cookie", cookie]]);
    if (poll.body.split("\x1e").some((p) => p.startsWith("40{"))) return { sid, cookie };
  }
  throw new Error(`no CONNECT answer for ${sid}`);
}

/** A masked client text frame (RFC 6455 §5.2), payload under 126 bytes. */
function textFrame(text) {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

/**
 * Opens the upgrade WebSocket for `sid` through the balancer. Resolves once 101 arrives with
 * { sock, frames(): server text frames so far, closed: Promise of the time the server closed }.
 */
function openUpgrade({ sid, cookie }) {
  const url = new URL(BASE);
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: url.hostname, port: Number(url.port) });
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const frames = [];
    const closed = new Promise((res) => sock.once("close", () => res(Date.now())));
    sock.on("error", () => {});
    sock.setTimeout(10000, () => { if (!upgraded) { sock.destroy(); reject(new Error("no 101")); } });
    sock.on("data", (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (!upgraded) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const status = buf.subarray(0, end).toString().split(" ")[1];
        buf = buf.subarray(end + 4);
        if (status !== "101") { sock.destroy(); reject(new Error(`upgrade answered ${status}`)); return; }
        upgraded = true;
        sock.setTimeout(0);
        resolve({ sock, frames, closed });
      }
      // Server frames are unmasked; Engine.IO's are short text frames.
      while (buf.length >= 2 && (buf[1] & 0x7f) < 126 && buf.length >= 2 + (buf[1] & 0x7f)) {
        const len = buf[1] & 0x7f;
        if ((buf[0] & 0x0f) === 1) frames.push(buf.subarray(2, 2 + len).toString());
        buf = buf.subarray(2 + len);
      }
    });
    sock.write([
      `GET /engine.io/?EIO=4&transport=websocket&sid=${sid} HTTP/1.1`, `host: ${url.host}`,
      "upgrade: websocket", "connection: Upgrade", `sec-websocket-key: ${randomBytes(16).toString("base64")}`,
      "sec-websocket-version: 13", `cookie: ${cookie}`, "", "",
    ].join("\r\n"));
  });
}

test(`${CLIENTS} abandoned WebSocket upgrades are reaped and their tunnels closed`, async (t) => {
  const fdsBefore = balancerFds();
  const sessions = await Promise.all(Array.from({ length: CLIENTS }, pollingSession));
  const before = await connectedPerNode();
  assert.equal(total(before), CLIENTS, `every raw client is connected: ${JSON.stringify(before)}`);
  assert.ok(Object.values(before).every((c) => c > 0), `both nodes hold some: ${JSON.stringify(before)}`);

  const ws = await Promise.all(sessions.map(openUpgrade));
  const probing = ws.slice(0, CLIENTS / 2);
  const silent = ws.slice(CLIENTS / 2);
  for (const w of probing) w.sock.write(textFrame("2probe"));
  const start = Date.now();
  for (const w of probing) {
    for (let i = 0; i < 50 && !w.frames.includes("3probe"); i++) await sleep(20);
    assert.ok(w.frames.includes("3probe"), `probe answered: ${JSON.stringify(w.frames)}`);
    w.sock.destroy(); // abandoned: no "5", no more polls
  }
  const fdsOpen = balancerFds();
  assert.ok(fdsOpen >= fdsBefore + silent.length,
    `the balancer holds the ${silent.length} silent tunnels (fds ${fdsBefore} -> ${fdsOpen}): the fd count sees them`);

  const bound = UPGRADE_TIMEOUT + PING_TIMEOUT + 3000;
  let reaped;
  while (Date.now() - start < bound) {
    if (total(await connectedPerNode()) === 0) { reaped = Date.now() - start; break; }
    await sleep(200);
  }
  assert.ok(reaped !== undefined, `sessions left after ${bound} ms: ${JSON.stringify(await connectedPerNode())}`);
  const closedAt = await Promise.race([
    Promise.all(silent.map((w) => w.closed)),
    sleep(Math.max(0, bound - (Date.now() - start))).then(() => null),
  ]);
  assert.ok(closedAt, `${silent.filter((w) => !w.sock.destroyed).length} silent tunnels still open after ${bound} ms`);
  const tunnelsClosed = Math.max(...closedAt) - start;

  let fdsAfter;
  for (let i = 0; i < 30; i++) {
    fdsAfter = balancerFds();
    if (fdsAfter <= fdsBefore + 4) break;
    await sleep(100);
  }
  assert.ok(fdsAfter <= fdsBefore + 4, `balancer fds back to baseline: ${fdsBefore} before, ${fdsOpen} open, ${fdsAfter} after`);
  t.diagnostic(`sessions reaped in ${reaped} ms, silent tunnels closed in ${tunnelsClosed} ms, balancer fds ${fdsBefore} -> ${fdsOpen} -> ${fdsAfter}`);

  const fresh = await connect({ upgraded: true });
  try {
    assert.equal((await whoami(fresh)).transport, "websocket");
  } finally {
    fresh.close();
  }
});
