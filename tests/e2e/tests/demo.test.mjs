// The one command: `switchyard-app demo --redis URL` on the seed configuration starts the
// balancer and the four nodes, prints the URL, serves a logged-in chat on both socket nodes,
// and stops everything with exit status 0 on Ctrl-C (SIGINT).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createConnection } from "node:net";
import { join } from "node:path";
import { BIN_DIR, CONFIG, LB, SOCKET_NODES, until } from "../lib/harness.mjs";
import { connect, login, whoami } from "../lib/clients.mjs";

const portFree = (port) => new Promise((res) => {
  const s = createConnection({ host: "127.0.0.1", port });
  s.once("connect", () => { s.destroy(); res(false); });
  s.once("error", () => res(true));
});

test("switchyard-app demo --redis serves the chat and stops cleanly on SIGINT", async () => {
  const balancer = LB === "haproxy" ? "/usr/sbin/haproxy" : join(BIN_DIR, "switchyard");
  const demo = spawn(join(BIN_DIR, "switchyard-app"), [
    "demo", "--redis", process.env.E2E_REDIS_URL, "--config", CONFIG, "--switchyard-bin", balancer,
  ], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  demo.stdout.on("data", (d) => { out += d; });
  demo.stderr.on("data", (d) => { err += d; });
  const exited = new Promise((res) => demo.once("exit", (code, sig) => res({ code, sig })));
  try {
    await until("the demo to print its URL", () => {
      if (demo.exitCode !== null) throw new Error(`demo exited: ${err.slice(-600)}`);
      return out.includes("Open http://127.0.0.1:3000/");
    }, 30000);
    const session = await login("hal");
    for (const node of SOCKET_NODES) {
      const chat = await connect({ ns: "/chat", transports: ["websocket"], cookie: `${session}; SRVNAME=${node.cookie}` });
      chat.close();
      const root = await connect({ transports: ["websocket"], cookie: `${session}; SRVNAME=${node.cookie}` });
      try {
        const me = await whoami(root);
        assert.equal(me.node, node.name);
        assert.equal(me.user, "hal");
      } finally {
        root.close();
      }
    }
    demo.kill("SIGINT");
    let timer;
    const { code, sig } = await Promise.race([
      exited,
      new Promise((_, rej) => { timer = setTimeout(() => rej(new Error("demo did not stop within 15 s")), 15000); }),
    ]).finally(() => clearTimeout(timer));
    assert.equal(code, 0, `exit ${code} ${sig}: ${err.slice(-600)}`);
    for (const port of [3000, 4000, 4001, 5000, 5001]) assert.ok(await portFree(port), `port ${port} still served`);
  } finally {
    if (demo.exitCode === null) demo.kill("SIGKILL");
  }
});
