// Cookie stickiness of the socket tier through the balancer (scenarios 1-6 and 9 of
// shared/docs/engineio-sticky-sessions.md).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { SOCKET_NODES, cookieOf, sleep, startTopology } from "../lib/harness.mjs";
import { closeAll, connect, connectMany, login, raw, rawTcp, srvCookie, whoami } from "../lib/clients.mjs";

let topo;
before(async () => { topo = await startTopology({ label: "sticky" }); });
after(async () => { await topo?.stop(); });

const HANDSHAKE = "/engine.io/?EIO=4&transport=polling";
const nodeNames = SOCKET_NODES.map((n) => n.name);
const srvnameOf = (setCookies) => setCookies
  .filter((c) => c.startsWith("SRVNAME="))
  .map((c) => c.split(";")[0].slice("SRVNAME=".length));

/**
 * Polls (GET) until a packet starting with `prefix` arrives, skipping engineioxide's pings;
 * returns every packet seen. A raw client must wait for the CONNECT answer (`40{...}`) before
 * emitting: socketioxide closes a session that sends events to a namespace still connecting.
 */
async function pollUntil(path, cookie, prefix, step = async () => (await raw(path, { cookie })).body) {
  const seen = [];
  for (let i = 0; i < 6 && !seen.some((p) => p.startsWith(prefix)); i++) {
    seen.push(...(await step("GET")).split("\x1e").filter((p) => p && p !== "2"));
  }
  assert.ok(seen.some((p) => p.startsWith(prefix)), `no ${prefix} in ${JSON.stringify(seen)}`);
  return seen;
}

test("handshake shape and exactly one SRVNAME cookie; a valid cookie gets none", async () => {
  const r = await raw(HANDSHAKE);
  assert.equal(r.status, 200);
  assert.ok(r.body.startsWith("0{"), r.body);
  const open = JSON.parse(r.body.slice(1));
  assert.deepEqual(Object.keys(open).sort(), ["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"]);
  assert.deepEqual(open.upgrades, ["websocket"]);
  const cookies = srvnameOf(r.setCookies);
  assert.equal(cookies.length, 1, `Set-Cookie: ${r.setCookies}`);
  assert.equal(cookieOf(r.headers.get("x-node")), cookies[0], "the cookie names the node that answered");

  const again = await raw(HANDSHAKE, { cookie: `SRVNAME=${cookies[0]}` });
  assert.equal(again.status, 200);
  assert.equal(again.headers.get("x-node"), r.headers.get("x-node"));
  assert.deepEqual(srvnameOf(again.setCookies), [], "no new SRVNAME for a client that has a valid one");
});

test("an unknown SRVNAME is redispatched to a live node and re-cookied, never a 5xx", async () => {
  const r = await raw(HANDSHAKE, { cookie: "SRVNAME=nonexistent" });
  assert.equal(r.status, 200, r.body);
  assert.ok(nodeNames.includes(r.headers.get("x-node")));
  assert.deepEqual(srvnameOf(r.setCookies), [cookieOf(r.headers.get("x-node"))]);
});

test("polling-only clients with credentials keep all 50 acks on one node", async () => {
  const socks = await connectMany(4, { transports: ["polling"] });
  try {
    for (const sock of socks) {
      const first = await whoami(sock);
      for (let i = 0; i < 50; i++) {
        const me = await whoami(sock);
        assert.equal(me.node, first.node, `round trip ${i} changed node`);
        assert.equal(me.transport, "polling");
        assert.equal(me.id, sock.id);
      }
      assert.equal(srvCookie(sock), cookieOf(first.node));
      assert.deepEqual(sock.events.connectError, []);
      assert.deepEqual(sock.events.disconnect, []);
    }
  } finally {
    closeAll(socks);
  }
});

test("default clients upgrade to WebSocket on the node that answered the handshake", async () => {
  const socks = await connectMany(6, { upgraded: true });
  try {
    for (const sock of socks) {
      assert.equal(sock.events.upgrade, "websocket");
      const me = await whoami(sock);
      assert.equal(me.transport, "websocket");
      assert.equal(srvCookie(sock), cookieOf(me.node), "upgrade served by the cookie's node");
      assert.deepEqual(sock.events.connectError, []);
      assert.equal(sock.events.connect, 1);
    }
  } finally {
    closeAll(socks);
  }
});

test("WebSocket-only clients need no cookie", async () => {
  const socks = await connectMany(20, { transports: ["websocket"], withCredentials: false });
  try {
    for (const sock of socks) {
      const me = await whoami(sock);
      assert.equal(me.transport, "websocket");
      assert.deepEqual(sock.events.connectError, []);
    }
  } finally {
    closeAll(socks);
  }
});

test("negative control: a request with another node's cookie gets Session ID unknown", async () => {
  const open = await raw(HANDSHAKE);
  const sid = JSON.parse(open.body.slice(1)).sid;
  const own = srvnameOf(open.setCookies)[0];
  const other = SOCKET_NODES.find((n) => n.cookie !== own).cookie;
  for (const method of ["GET", "POST"]) {
    const r = await raw(`${HANDSHAKE}&sid=${sid}`, {
      method,
      cookie: `SRVNAME=${other}`,
      body: method === "POST" ? "40" : undefined,
    });
    assert.equal(r.status, 400, `${method}: ${r.body}`);
    const err = JSON.parse(r.body);
    assert.equal(String(err.code), "1");
    assert.equal(err.message, "Session ID unknown");
  }
  // The same request with the right cookie works: the failure above is the routing's.
  const ok = await raw(`${HANDSHAKE}&sid=${sid}`, { method: "POST", cookie: `SRVNAME=${own}`, body: "40" });
  assert.equal(ok.status, 200, ok.body);
  assert.equal(ok.body, "ok");
});

test("batched polling packets pass through untouched", async () => {
  const open = await raw(HANDSHAKE);
  const sid = JSON.parse(open.body.slice(1)).sid;
  const cookie = `SRVNAME=${srvnameOf(open.setCookies)[0]}`;
  const path = `${HANDSHAKE}&sid=${sid}`;
  assert.equal((await raw(path, { method: "POST", cookie, body: "40" })).body, "ok");
  assert.deepEqual((await pollUntil(path, cookie, "40{")).length, 1);
  const batch = ["421[\"echo\",\"a\\u00e9\"]", "422[\"echo\",{\"n\":[1,2]}]"].join("\x1e");
  assert.equal((await raw(path, { method: "POST", cookie, body: batch })).body, "ok");
  const acks = await pollUntil(path, cookie, "43");
  if (acks.length < 2) acks.push(...(await pollUntil(path, cookie, "43")));
  // socketioxide runs each event's handler as its own task, so the acks' order is the server's.
  assert.deepEqual(acks.sort(), ["431[\"aé\"]", "432[{\"n\":[1,2]}]"]);
});

test("cookie header shapes real clients send all route by SRVNAME, and the app still sees its cookie", async () => {
  const session = await login("erin");
  const poll = "/engine.io/?EIO=4&transport=polling";
  for (const target of SOCKET_NODES) {
    const shapes = [
      [["cookie", `${session}; SRVNAME=${target.cookie}`]],
      [["cookie", `SRVNAME=${target.cookie};${session}`]],
      [["cookie", `  ${session} ;   SRVNAME=${target.cookie}  `]],
      [["cookie", session], ["cookie", `SRVNAME=${target.cookie}`]],
      // socket.io-client's NodeWebSocket quirk: an array-mangled header (section 4.3 of the notes).
      [["cookie", `${session},SRVNAME=${target.cookie}; SRVNAME=${target.cookie}`]],
    ];
    for (const headers of shapes) {
      const open = await rawTcp("GET", poll, headers);
      assert.equal(open.status, 200, JSON.stringify(headers));
      assert.equal(open.header("x-node"), target.name, JSON.stringify(headers));
      const sid = JSON.parse(open.body.slice(open.body.indexOf("{"), open.body.lastIndexOf("}") + 1)).sid;
      // The node saw the session cookie in the handshake: whoami names the user.
      const path = `${poll}&sid=${sid}`;
      const cookie = `SRVNAME=${target.cookie}`;
      const trace = [];
      const step = async (method, body) => {
        const r = await raw(path, { method, cookie, body });
        trace.push(`${method} ${r.status} ${r.headers.get("x-node")} ${JSON.stringify(r.body.slice(0, 80))}`);
        return r.body;
      };
      assert.equal(await step("POST", "40"), "ok");
      await pollUntil(path, cookie, "40{", step);
      assert.equal(await step("POST", "421[\"whoami\"]"), "ok", trace.join("\n"));
      const ack = (await pollUntil(path, cookie, "431", step)).find((p) => p.startsWith("431"));
      const user = JSON.parse(ack.slice(3))[0].user;
      assert.equal(user, "erin", JSON.stringify(headers));
    }
  }
});

test("a long-poll held for a whole default ping interval (25 s) is not cut by the balancer", { timeout: 90000 }, async () => {
  // The seed's defaults say `timeout server 10000`; the socket backend raises it to 120 s.
  // A balancer applying the 10 s default to /engine.io would cut the held poll (and an idle
  // WebSocket) and force a reconnect.
  const seconds = Number(process.env.E2E_LONGPOLL_SECONDS || 27);
  const socks = [await connect({ transports: ["polling"] }), await connect({ upgraded: true })];
  try {
    const before = await Promise.all(socks.map((s) => whoami(s)));
    const pings = [0, 0];
    socks.forEach((s, i) => s.io.engine.on("ping", () => { pings[i] += 1; }));
    await sleep(seconds * 1000);
    const after = await Promise.all(socks.map((s) => whoami(s)));
    socks.forEach((s, i) => {
      assert.deepEqual(s.events.disconnect, [], `client ${i}`);
      assert.equal(after[i].id, before[i].id);
      assert.equal(after[i].node, before[i].node);
    });
    assert.ok(pings.every((p) => p >= 1), `pings seen: ${pings}`);
  } finally {
    closeAll(socks);
  }
});
