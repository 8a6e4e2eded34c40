// Scenario 19 of the sticky-session notes: a page on another origin reaching the socket nodes
// through the balancer with credentials. The socket nodes run with --cors-origin for two page
// origins; the balancer must route the preflight (OPTIONS, which carries no SRVNAME) to a
// socket node and pass the CORS headers through untouched.
//
// Raw: a preflight from an allowed origin gets a 2xx with that exact origin echoed and
// credentials allowed (Node's cors answers 204, tower-http 200: both are "ok" to the fetch
// spec); the polling handshake carries the same headers and its SRVNAME cookie; an unlisted
// origin, or `Origin: *`, gets no Access-Control-Allow-Origin at all (never a wildcard).
// Browser: a page on http://127.0.0.1:4000 (an HTTP node, another origin than the balancer's
// :3000) polls the balancer with withCredentials: the SRVNAME cookie is stored and sent, and
// 20 whoami acks come from one node. The same page on http://localhost:4000 (not listed) cannot
// connect: the negative control.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { rawTcp } from "../lib/clients.mjs";
import { BASE, SOCKET_NODES, startTopology } from "../lib/harness.mjs";

const PAGE = "http://127.0.0.1:4000";
const FRONT = "http://front.test";
const HANDSHAKE = "/engine.io/?EIO=4&transport=polling";
const CHROMIUM = process.env.E2E_CHROMIUM || "/usr/bin/chromium";

let topo;
let browser;
before(async () => {
  topo = await startTopology({ label: "cors", socketArgs: ["--cors-origin", FRONT, "--cors-origin", PAGE] });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
});
after(async () => {
  await browser?.close();
  await topo?.stop();
});

const socketNodes = SOCKET_NODES.map((n) => n.name);

test("preflight and polling handshake through the balancer echo the allowed origin with credentials", async () => {
  const pre = await rawTcp("OPTIONS", HANDSHAKE, [
    ["origin", FRONT], ["access-control-request-method", "POST"], ["access-control-request-headers", "content-type"],
  ]);
  assert.ok(pre.status >= 200 && pre.status < 300, `preflight ${pre.status}: ${pre.body}`);
  assert.ok(socketNodes.includes(pre.header("x-node")), `answered by a socket node: ${pre.header("x-node")}`);
  assert.equal(pre.header("access-control-allow-origin"), FRONT);
  assert.equal(pre.header("access-control-allow-credentials"), "true");
  assert.match(pre.header("access-control-allow-methods") || "", /POST/);
  assert.match(pre.header("access-control-allow-headers") || "", /content-type/i);
  assert.match(pre.headers.filter(([k]) => k === "vary").map(([, v]) => v).join(","), /origin/i);

  const get = await rawTcp("GET", HANDSHAKE, [["origin", FRONT]]);
  assert.equal(get.status, 200);
  assert.ok(get.body.startsWith("0{"), get.body);
  assert.equal(get.header("access-control-allow-origin"), FRONT);
  assert.equal(get.header("access-control-allow-credentials"), "true");
  assert.match(get.header("set-cookie") || "", /^SRVNAME=S\d/);
});

test("an unlisted origin, or Origin: *, gets no Access-Control-Allow-Origin", async () => {
  for (const origin of ["http://evil.test", "*", "null"]) {
    for (const [method, extra] of [["OPTIONS", [["access-control-request-method", "GET"]]], ["GET", []]]) {
      const r = await rawTcp(method, HANDSHAKE, [["origin", origin], ...extra]);
      assert.equal(r.header("access-control-allow-origin"), undefined, `${method} from ${origin}: ${JSON.stringify(r.headers)}`);
      // tower-http still sends Access-Control-Allow-Credentials: true here; without an
      // Allow-Origin the browser refuses the response all the same.
    }
  }
});

/** In a page on `origin`, connects socket.io-client (polling, credentials) to the balancer. */
async function crossOrigin(origin) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${origin}/`); // the chat page: it loads socket.io-client from its own origin
  await page.waitForFunction(() => typeof io === "function");
  const result = await page.evaluate(async (base) => {
    const socket = io(base, { path: "/engine.io", transports: ["polling"], withCredentials: true, reconnection: false, timeout: 5000 });
    const connected = await new Promise((res) => {
      socket.once("connect", () => res(true));
      socket.once("connect_error", () => res(false));
    });
    const acks = [];
    if (connected) {
      for (let i = 0; i < 20; i++) acks.push(await socket.timeout(5000).emitWithAck("whoami"));
    }
    socket.close();
    return { connected, acks };
  }, BASE);
  const cookies = await context.cookies(BASE);
  await context.close();
  return { ...result, cookies };
}

test("a browser page on another origin polls the balancer with credentials and stays sticky", async () => {
  const r = await crossOrigin(PAGE);
  assert.ok(r.connected, "connected cross-origin");
  const nodes = new Set(r.acks.map((a) => a.node));
  assert.equal(r.acks.length, 20);
  assert.equal(nodes.size, 1, `every ack from one node: ${[...nodes]}`);
  assert.ok(r.acks.every((a) => a.transport === "polling"));
  const srv = r.cookies.find((c) => c.name === "SRVNAME");
  assert.ok(srv, `the browser stored the balancer's cookie: ${JSON.stringify(r.cookies)}`);
  assert.equal(SOCKET_NODES.find((n) => n.cookie === srv.value)?.name, [...nodes][0], "and it names the node that answered");
});

test("negative control: the same page on an unlisted origin cannot connect", async () => {
  const r = await crossOrigin("http://localhost:4000");
  assert.equal(r.connected, false);
  assert.deepEqual(r.acks, []);
});
