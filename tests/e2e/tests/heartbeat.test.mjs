// Heartbeats through the balancer (scenario 7): with a short ping interval P, idle polling and
// WebSocket clients stay connected for several intervals, see pings, and stay on their node.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { sleep, startTopology } from "../lib/harness.mjs";
import { closeAll, connect, whoami } from "../lib/clients.mjs";

const P = 1000;
let topo;
before(async () => { topo = await startTopology({ label: "heartbeat", pingIntervalMs: P, pingTimeoutMs: 3000 }); });
after(async () => { await topo?.stop(); });

test("idle polling and WebSocket clients survive 4 ping intervals", async () => {
  const socks = [
    await connect({ transports: ["polling"] }),
    await connect({ transports: ["polling"] }),
    await connect({ upgraded: true }),
    await connect({ transports: ["websocket"], withCredentials: false }),
  ];
  try {
    const before = await Promise.all(socks.map((s) => whoami(s)));
    const pings = socks.map(() => 0);
    socks.forEach((s, i) => s.io.engine.on("ping", () => { pings[i] += 1; }));
    await sleep(4 * P + 500);
    const after = await Promise.all(socks.map((s) => whoami(s)));
    socks.forEach((s, i) => {
      assert.deepEqual(s.events.disconnect, [], `client ${i}`);
      assert.ok(pings[i] >= 3, `client ${i} saw ${pings[i]} pings`);
      assert.equal(after[i].node, before[i].node);
      assert.equal(after[i].id, before[i].id, "same Socket.IO session");
    });
  } finally {
    closeAll(socks);
  }
});
