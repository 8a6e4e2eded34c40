// A short soak (scenario 22, scaled to CI): 60 clients, half polling and half WebSocket, with
// 1 s pings and random emits for E2E_SOAK_SECONDS (15 by default). No client may be
// disconnected or moved, and once they close every socket node is back to zero clients,
// which shows the balancer passes each client's departure through to its node.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { SOCKET_NODES, sleep, startTopology, until } from "../lib/harness.mjs";
import { closeAll, connect, placement } from "../lib/clients.mjs";

const SECONDS = Number(process.env.E2E_SOAK_SECONDS || 15);
let topo;
before(async () => { topo = await startTopology({ label: "soak", pingIntervalMs: 1000, pingTimeoutMs: 3000 }); });
after(async () => { await topo?.stop(); });

async function connectedOn(port) {
  const r = await fetch(`http://127.0.0.1:${port}/health`);
  return (await r.json()).connected;
}

test(`60 mixed clients stay put for ${SECONDS} s of pings and emits, then nodes drain to zero`, { timeout: (SECONDS + 60) * 1000 }, async () => {
  const socks = [];
  try {
    for (let i = 0; i < 60; i += 10) {
      socks.push(...(await Promise.all(Array.from({ length: 10 }, (_, j) =>
        connect((i + j) % 2 ? { upgraded: true } : { transports: ["polling"] })))));
    }
    const { nodes } = await placement(socks);
    let acks = 0;
    const end = Date.now() + SECONDS * 1000;
    await Promise.all(socks.map(async (s, i) => {
      while (Date.now() < end) {
        await sleep(200 + Math.random() * 400);
        const payload = { i, n: acks, pad: "x".repeat(Math.floor(Math.random() * 2000)) };
        assert.deepEqual(await s.timeout(10000).emitWithAck("echo", payload), payload);
        if (Math.random() < 0.2) assert.equal((await s.timeout(10000).emitWithAck("whoami")).node, nodes[i]);
        acks += 1;
      }
    }));
    for (const s of socks) {
      assert.deepEqual(s.events.disconnect, []);
      assert.deepEqual(s.events.connectError, []);
      assert.equal(s.events.connect, 1);
    }
    assert.ok(acks > socks.length * SECONDS, `only ${acks} acks`);
    const total = (await Promise.all(SOCKET_NODES.map((n) => connectedOn(n.port)))).reduce((a, b) => a + b);
    assert.equal(total, socks.length, "nodes count exactly the live clients");
  } finally {
    closeAll(socks);
  }
  // Faster than the heartbeat could notice a client left behind (1 s interval + 3 s timeout):
  // the nodes drain because the balancer closed each client's upstream side.
  await until("every socket node to drain", async () =>
    (await Promise.all(SOCKET_NODES.map((n) => connectedOn(n.port)))).every((c) => c === 0), 2500);
});
