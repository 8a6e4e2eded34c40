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

test("a restarted node is found by the health check and leastconn refills it", async () => {
  const [back, busy] = SOCKET_NODES;
  const load = await connectMany(12, { upgraded: true });
  const fresh = [];
  try {
    // After the previous test node 1 may be down; make sure the load sits on node 2.
    const { counts } = await placement(load);
    assert.equal(counts[busy.name], load.length, JSON.stringify(counts));
    if (topo.procs.get(back.name).exitStatus !== undefined) await topo.restart(back.name);
    await until(`the balancer to send ${back.name}'s cookie to it again`, async () => {
      const r = await raw("/engine.io/?EIO=4&transport=polling", { cookie: `SRVNAME=${back.cookie}` });
      return r.status === 200 && r.headers.get("x-node") === back.name;
    }, 30000);
    fresh.push(...(await connectMany(10, { upgraded: true })));
    const after = await placement(fresh);
    assert.ok((after.counts[back.name] || 0) >= 8, `new clients went ${JSON.stringify(after.counts)}`);
  } finally {
    closeAll(load);
    closeAll(fresh);
  }
});
