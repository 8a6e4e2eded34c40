// A socket node dies (scenario 8): its clients reconnect to the other node with a new cookie;
// the other node's clients are not disturbed; stale cookies for the dead node are redispatched.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { SOCKET_NODES, startTopology, until } from "../lib/harness.mjs";
import { closeAll, connectMany, placement, raw, srvCookie, whoami } from "../lib/clients.mjs";

let topo;
before(async () => { topo = await startTopology({ label: "failover" }); });
after(async () => { await topo?.stop(); });

test("killing a socket node moves its clients to the other, re-cookied; others undisturbed", async () => {
  const [dead, alive] = SOCKET_NODES;
  const socks = await connectMany(20, { upgraded: true, reconnection: true });
  try {
    const { nodes, counts } = await placement(socks);
    assert.ok(counts[dead.name] > 0 && counts[alive.name] > 0, JSON.stringify(counts));
    const victims = socks.filter((_, i) => nodes[i] === dead.name);
    const bystanders = socks.filter((_, i) => nodes[i] === alive.name);

    await topo.kill(dead.name);
    await until("every client of the dead node to reconnect", () =>
      victims.every((s) => s.connected && s.events.connect >= 2), 30000);

    for (const s of victims) {
      assert.ok(s.events.disconnect.length >= 1);
      const me = await whoami(s);
      assert.equal(me.node, alive.name);
      assert.equal(srvCookie(s), alive.cookie, "the new session got the live node's cookie");
    }
    for (const s of bystanders) {
      assert.deepEqual(s.events.disconnect, [], "a client of the live node was disturbed");
      assert.equal(s.events.connect, 1);
      assert.equal((await whoami(s)).node, alive.name);
    }

    // A stale cookie for the dead node: redispatched to the live node and re-cookied.
    const r = await raw("/engine.io/?EIO=4&transport=polling", { cookie: `SRVNAME=${dead.cookie}` });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers.get("x-node"), alive.name);
    assert.ok(r.setCookies.some((c) => c.startsWith(`SRVNAME=${alive.cookie}`)), `${r.setCookies}`);
  } finally {
    closeAll(socks);
  }
});
