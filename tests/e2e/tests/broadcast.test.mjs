// Cross-node broadcast through Redis (scenario 16): every other client receives exactly once,
// on both nodes; room broadcasts reach only the room's members.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { SOCKET_NODES, sleep, startTopology } from "../lib/harness.mjs";
import { closeAll, connect, connectMany, login, placement } from "../lib/clients.mjs";

let topo;
before(async () => { topo = await startTopology({ label: "broadcast" }); });
after(async () => { await topo?.stop(); });

function record(socks, event) {
  return socks.map((s) => {
    const got = [];
    s.on(event, (m) => got.push(m));
    return got;
  });
}

test("a shout from one node reaches every other client exactly once, on both nodes", async () => {
  const socks = await connectMany(10, { upgraded: true });
  try {
    const { nodes, counts } = await placement(socks);
    assert.equal(Object.keys(counts).length, SOCKET_NODES.length, `clients on ${JSON.stringify(counts)}`);
    const heard = record(socks, "heard");
    const token = `t-${Date.now()}`;
    const ack = await socks[0].timeout(5000).emitWithAck("shout", token);
    assert.equal(ack.ok, true);
    await sleep(700);
    assert.equal(heard[0].length, 0, "the sender does not hear itself");
    for (let i = 1; i < socks.length; i++) {
      const mine = heard[i].filter((m) => m.data === token);
      assert.equal(mine.length, 1, `client ${i} on ${nodes[i]} got ${mine.length}`);
      assert.equal(mine[0].node, nodes[0]);
    }
  } finally {
    closeAll(socks);
  }
});

test("a room broadcast reaches only the room's members, across nodes", async () => {
  const socks = await connectMany(8, { upgraded: true });
  try {
    const { nodes } = await placement(socks);
    // Members: two clients of each node.
    const members = SOCKET_NODES.flatMap((n) => socks.filter((_, i) => nodes[i] === n.name).slice(0, 2));
    assert.equal(members.length, 4);
    for (const s of members) await s.timeout(5000).emitWithAck("join", "room1");
    const heard = record(socks, "heard_room");
    await members[0].timeout(5000).emitWithAck("room_shout", { room: "room1", data: "hi" });
    await sleep(700);
    socks.forEach((s, i) => {
      const expected = members.includes(s) && s !== members[0] ? 1 : 0;
      assert.equal(heard[i].length, expected, `client ${i} (${nodes[i]})`);
    });
  } finally {
    closeAll(socks);
  }
});

test("the chat's shared counter is one Redis counter for clients of both nodes", async () => {
  const sessions = [await login("fay"), await login("gus")];
  const chats = [];
  try {
    for (const [i, node] of SOCKET_NODES.entries()) {
      chats.push(await connect({ ns: "/chat", transports: ["websocket"], cookie: `${sessions[i]}; SRVNAME=${node.cookie}` }));
    }
    const seen = record(chats, "counter");
    const values = [];
    for (let i = 0; i < 10; i++) {
      const ack = await chats[i % 2].timeout(5000).emitWithAck("counter:add");
      assert.equal(ack.ok, true);
      values.push(ack.value);
    }
    // Increments alternate between the nodes and still count up by one.
    for (let i = 1; i < values.length; i++) assert.equal(values[i], values[i - 1] + 1, `${values}`);
    await sleep(500);
    for (const got of seen) {
      assert.deepEqual(got.map((c) => c.value), values, "every client, on either node, saw every value once");
    }
  } finally {
    closeAll(chats);
  }
});
