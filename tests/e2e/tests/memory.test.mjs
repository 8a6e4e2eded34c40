// Negative control (scenario 15): without Redis each node keeps its own sessions, and the suite
// can see it. Also checks the nodes say so in their logs.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { HTTP_NODES, SOCKET_NODES, startTopology } from "../lib/harness.mjs";
import { connect, login, raw } from "../lib/clients.mjs";

let topo;
before(async () => { topo = await startTopology({ redis: false, label: "memory" }); });
after(async () => { await topo?.stop(); });

test("in-memory sessions are per node: the other HTTP node and the socket nodes do not know them", async () => {
  const session = await login("dave");
  const seen = {};
  for (let i = 0; i < 6; i++) {
    const r = await raw("/api/me", { cookie: session });
    seen[r.headers.get("x-node")] = JSON.parse(r.body).user;
  }
  const users = HTTP_NODES.map((n) => seen[n.name]).sort();
  assert.deepEqual(users, ["dave", null].sort(), JSON.stringify(seen));
  for (const node of SOCKET_NODES) {
    await assert.rejects(
      connect({ ns: "/chat", transports: ["websocket"], cookie: `${session}; SRVNAME=${node.cookie}` }),
      (err) => err.message === "unauthorized",
    );
  }
});

test("every node warns that its sessions are per node", () => {
  for (const p of topo.procs.values()) {
    assert.match(readFileSync(p.logFile, "utf8"), /per node/, p.name);
  }
});
