// Scenario 20 of the sticky-session notes: another real client, python-socketio's sync Client
// (pinned in ../requirements.txt, run from the virtualenv run.sh prepares), through the balancer.
// The Python side (../py/socketio_interop.py) only reports what it saw; the judging is here.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { BASE, SOCKET_NODES, startTopology } from "../lib/harness.mjs";

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "../py/socketio_interop.py");
const PYTHON = process.env.E2E_PYTHON;

let topo;
before(async () => {
  // A 2 s ping interval so that held long-polls turn over quickly (the swap case waits for one).
  topo = await startTopology({ label: "python", pingIntervalMs: 2000, pingTimeoutMs: 2000 });
});
after(async () => { await topo?.stop(); });

function py(mode, user) {
  assert.ok(PYTHON, "E2E_PYTHON is not set (run through tests/e2e/run.sh, which prepares the virtualenv)");
  const args = [SCRIPT, BASE, mode, ...(user ? [user] : [])];
  return new Promise((resolve, reject) => {
    execFile(PYTHON, args, { timeout: 40000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${mode}: ${err.message}\n${stderr}`));
      try { resolve(JSON.parse(stdout)); } catch { reject(new Error(`${mode}: not JSON: ${stdout}\n${stderr}`)); }
    });
  });
}

const nodeOfCookie = (value) => SOCKET_NODES.find((n) => n.cookie === value)?.name;

/** Three whoami acks, all from the node the client's SRVNAME names, over `transport`. */
function assertSticky(r, transport) {
  assert.deepEqual(r.errors, [], JSON.stringify(r));
  assert.equal(r.transport, transport, JSON.stringify(r));
  const node = nodeOfCookie(r.cookies.SRVNAME);
  assert.ok(node, `the jar holds a SRVNAME for a socket node: ${JSON.stringify(r.cookies)}`);
  assert.equal(r.whoami.length, 3);
  for (const w of r.whoami) {
    assert.equal(w.node, node, JSON.stringify(r.whoami));
    assert.equal(w.transport, transport, JSON.stringify(r.whoami));
    assert.equal(w.id, r.sid, "one Socket.IO session throughout");
  }
  return node;
}

test("python-socketio, polling only: three whoami on the cookie's node", async () => {
  const r = await py("polling");
  assertSticky(r, "polling");
  assert.deepEqual(r.disconnects_before_close, [], "no disconnect before the client closed");
});

test("python-socketio, default transports: upgraded with SRVNAME on the WebSocket request", async () => {
  // The WebSocket request carries the sid of the polling session: answered by the node that
  // holds it (whoami over websocket, same Socket.IO id) only if the jar's SRVNAME went with it.
  const r = await py("default");
  assertSticky(r, "websocket");
  assert.deepEqual(r.disconnects_before_close, [], "no disconnect before the client closed");
});

test("python-socketio logged in through the HTTP tier: /chat welcomes the user on either node", async () => {
  for (const user of ["py-ana", "py-ben"]) {
    const r = await py("default", user);
    assert.equal(r.login_status, 200);
    const node = assertSticky(r, "websocket");
    assert.equal(r.whoami[0].user, user, "the socket tier read the session cookie from the jar");
    assert.equal(r.welcome.user, user, JSON.stringify(r.welcome));
    assert.equal(r.welcome.node, node);
  }
});

test("negative control: the same client with the other node's SRVNAME loses its session", async () => {
  const r = await py("swap");
  assert.deepEqual(r.errors, [], JSON.stringify(r));
  assert.equal(r.connected_before_swap, true, "held long-polls across a ping interval kept the session");
  assert.equal(r.whoami.length, 4);
  assert.equal(r.connected_after_swap, false,
    `a poll routed to the other node must fail (Session ID unknown): ${JSON.stringify(r)}`);
  assert.equal(r.disconnects_before_close.length, 1, JSON.stringify(r));
});
