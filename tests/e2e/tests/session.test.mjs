// One session for both tiers (scenarios 13 and 14): login through the HTTP tier, the socket
// tier knows the user on either node, logout refuses the next connect, and a session counter
// incremented through alternating HTTP nodes stays consistent (Redis store).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { HTTP_NODES, SOCKET_NODES, startTopology } from "../lib/harness.mjs";
import { connect, login, raw, whoami } from "../lib/clients.mjs";

let topo;
before(async () => { topo = await startTopology({ label: "session" }); });
after(async () => { await topo?.stop(); });

test("a login through the HTTP tier is known to both socket nodes", async () => {
  const session = await login("alice");
  for (const node of SOCKET_NODES) {
    // WebSocket only, so the one request carries both cookies and the node is chosen.
    const sock = await connect({ transports: ["websocket"], cookie: `${session}; SRVNAME=${node.cookie}` });
    try {
      assert.deepEqual(await whoami(sock), { node: node.name, transport: "websocket", user: "alice", id: sock.id });
    } finally {
      sock.close();
    }
  }
  // The default client (polling, then upgrade) reads it too: the handshake carries it.
  const sock = await connect({ cookie: session, upgraded: true });
  try {
    assert.equal((await whoami(sock)).user, "alice");
  } finally {
    sock.close();
  }
  const anon = await connect({ transports: ["websocket"] });
  try {
    assert.equal((await whoami(anon)).user, null);
  } finally {
    anon.close();
  }
});

test("/chat accepts a logged-in user and refuses after logout", async () => {
  const session = await login("bob");
  const chat = await connect({ ns: "/chat", cookie: session });
  chat.close();
  const out = await raw("/api/logout", { method: "POST", cookie: session });
  assert.equal(out.status, 200);
  for (const node of SOCKET_NODES) {
    await assert.rejects(
      connect({ ns: "/chat", transports: ["websocket"], cookie: `${session}; SRVNAME=${node.cookie}` }),
      (err) => err.message === "unauthorized",
    );
  }
  await assert.rejects(connect({ ns: "/chat" }), (err) => err.message === "unauthorized");
});

test("a session counter through alternating HTTP nodes counts 1..10", async () => {
  const session = await login("carol");
  const served = new Set();
  for (let i = 1; i <= 10; i++) {
    const r = await raw("/api/counter", { method: "POST", cookie: session });
    assert.equal(r.status, 200, r.body);
    assert.equal(JSON.parse(r.body).value, i);
    served.add(r.headers.get("x-node"));
  }
  assert.deepEqual([...served].sort(), HTTP_NODES.map((n) => n.name), "both HTTP nodes served");
  const me = JSON.parse((await raw("/api/me", { cookie: session })).body);
  assert.equal(me.counter, 10);
});
