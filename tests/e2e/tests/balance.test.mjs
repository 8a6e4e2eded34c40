// Balancing: leastconn on the socket tier (scenario 11, small), round-robin and path routing on
// the HTTP tier (scenario 17).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { HTTP_NODES, SOCKET_NODES, sleep, startTopology } from "../lib/harness.mjs";
import { closeAll, connect, connectMany, placement, raw } from "../lib/clients.mjs";

let topo;
before(async () => { topo = await startTopology({ label: "balance" }); });
after(async () => { await topo?.stop(); });

test("leastconn spreads WebSocket clients over both nodes and fills the emptier one", async () => {
  const [n1, n2] = SOCKET_NODES.map((n) => n.name);
  const first = await connectMany(30, { upgraded: true });
  const later = [];
  try {
    const { nodes, counts } = await placement(first);
    assert.ok(counts[n1] >= 12 && counts[n2] >= 12, `30 clients placed ${JSON.stringify(counts)}`);

    // Empty node 1: its clients leave, node 2 keeps its own.
    const onN2 = first.filter((_, i) => nodes[i] === n2);
    closeAll(first.filter((_, i) => nodes[i] === n1));
    await sleep(500);
    later.push(...(await connectMany(12, { upgraded: true })));
    const after = await placement(later);
    assert.ok((after.counts[n1] || 0) >= 10,
      `with ${onN2.length} clients on ${n2} and none on ${n1}, 12 new clients went ${JSON.stringify(after.counts)}`);
  } finally {
    closeAll(first);
    closeAll(later);
  }
});

test("the HTTP tier is round-robin and sets no SRVNAME cookie", async () => {
  const counts = {};
  let previous;
  for (let i = 0; i < 40; i++) {
    const r = await raw("/health");
    assert.equal(r.status, 200);
    assert.deepEqual(r.setCookies, []);
    const node = r.headers.get("x-node");
    assert.notEqual(node, previous, `request ${i} went to ${node} twice in a row`);
    previous = node;
    counts[node] = (counts[node] || 0) + 1;
  }
  assert.deepEqual(Object.keys(counts).sort(), HTTP_NODES.map((n) => n.name));
  assert.equal(counts[HTTP_NODES[0].name], 20);
});

test("only the /engine.io prefix reaches the socket tier", async () => {
  const isSocket = (r) => SOCKET_NODES.some((n) => n.name === r.headers.get("x-node"));
  assert.ok(isSocket(await raw("/engine.io/?EIO=4&transport=polling")));
  for (const [path, status] of [["/", 200], ["/api/me", 200], ["/app.js", 200], ["/engine", 404]]) {
    const r = await raw(path);
    assert.ok(HTTP_NODES.some((n) => n.name === r.headers.get("x-node")), `${path} went to ${r.headers.get("x-node")}`);
    assert.equal(r.status, status, path);
  }
  // path_beg is a plain prefix match: /engine.iox goes to the socket tier too (as in HAProxy),
  // which does not serve it.
  const x = await raw("/engine.iox");
  assert.ok(isSocket(x), `/engine.iox went to ${x.headers.get("x-node")}`);
  assert.equal(x.status, 404);
});

test("300 concurrent clients split evenly, mixed transports all stay sticky", async () => {
  const [n1, n2] = SOCKET_NODES.map((n) => n.name);
  const socks = [];
  try {
    // Batches of 50 concurrent connects; half polling-only, half upgrading to WebSocket.
    for (let b = 0; b < 6; b++) {
      const batch = Array.from({ length: 50 }, (_, i) =>
        connect(i % 2 ? { upgraded: true } : { transports: ["polling"] }));
      socks.push(...(await Promise.all(batch)));
    }
    const { nodes, counts } = await placement(socks);
    // leastconn counts open connections: WebSocket clients hold one, polling clients only
    // while a request is in flight, so the split is even within a tolerance, not exact.
    for (const n of [n1, n2]) {
      assert.ok(counts[n] >= 120 && counts[n] <= 180, `300 clients placed ${JSON.stringify(counts)}`);
    }
    const again = await placement(socks);
    assert.deepEqual(again.nodes, nodes, "every client answered by the same node twice");
    for (const s of socks) {
      assert.deepEqual(s.events.connectError, []);
      assert.deepEqual(s.events.disconnect, [], s.events.disconnectDetails.join("; "));
    }
  } finally {
    closeAll(socks);
  }
});
