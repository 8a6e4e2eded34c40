// A real browser through the balancer: headless Chromium (Debian `chromium`, driven by
// playwright-core) opens the page, logs in through the form, connects to /chat (polling, then
// WebSocket), and a second browser context, placed on the other socket node by leastconn,
// sends a message the first one receives exactly once (through Redis). Screenshots go to
// artifacts/.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { ARTIFACTS, BASE, BIN_DIR, REPO, SOCKET_NODES, startTopology, until } from "../lib/harness.mjs";

const CHROMIUM = process.env.E2E_CHROMIUM || "/usr/bin/chromium";
const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

let topo;
let browser;
before(async () => {
  topo = await startTopology({ label: "browser" });
  // playwright-core gives every launch a fresh temporary profile (--user-data-dir) and removes it.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
});
after(async () => {
  await browser?.close();
  await topo?.stop();
});

/** Opens the page in a fresh context, logs in as `user`, waits for the WebSocket upgrade. */
async function loggedIn(user) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const engineRequests = [];
  // HTTP requests (polling) and WebSocket openings are separate events in playwright.
  page.on("request", (r) => {
    if (r.url().includes("/engine.io/")) engineRequests.push(new URL(r.url()).searchParams.get("transport"));
  });
  page.on("websocket", (ws) => {
    if (ws.url().includes("/engine.io/")) engineRequests.push(new URL(ws.url()).searchParams.get("transport"));
  });
  await page.goto(`${BASE}/`);
  await page.waitForSelector("#login-form", { state: "visible" });
  await page.fill("#user", user);
  await Promise.all([page.waitForNavigation(), page.click("#login-form button")]);
  await page.waitForSelector("#chat", { state: "visible" });
  await page.waitForFunction(() => document.body.dataset.transport === "websocket" && document.body.dataset.socketNode);
  const node = await page.evaluate(() => document.body.dataset.socketNode);
  return { context, page, node, engineRequests };
}

test("two browsers on two socket nodes chat through the balancer", async () => {
  const a = await loggedIn("ada");
  const b = await loggedIn("bea");
  try {
    assert.equal(a.engineRequests[0], "polling", "the first Engine.IO request is a polling handshake");
    assert.ok(a.engineRequests.includes("websocket"), "then a WebSocket upgrade");
    assert.equal(await a.page.textContent("#me"), "ada");
    const nodes = SOCKET_NODES.map((n) => n.name);
    assert.ok(nodes.includes(a.node) && nodes.includes(b.node));
    assert.notEqual(a.node, b.node, "leastconn put the second browser on the other node");

    const text = `hello from bea ${Date.now()}`;
    await b.page.fill("#message", text);
    await b.page.click("#message-form button");
    const line = a.page.locator("#messages li", { hasText: text });
    await line.waitFor({ timeout: 5000 });
    await a.page.waitForTimeout(500);
    assert.equal(await line.count(), 1, "received exactly once");
    assert.match(await line.textContent(), new RegExp(`bea: ${text}.*via ${b.node}`));

    await a.page.click("#counter-add");
    await b.page.waitForFunction(() => Number(document.querySelector("#counter-value").textContent) >= 1);

    await a.page.screenshot({ path: join(ARTIFACTS, "e2e-browser-ada.png"), fullPage: true });
    await b.page.screenshot({ path: join(ARTIFACTS, "e2e-browser-bea.png"), fullPage: true });
  } finally {
    await a.context.close();
    await b.context.close();
  }
});

test("a browser whose socket node dies reconnects to the other one, despite its stale cookie", async () => {
  const a = await loggedIn("cyd");
  try {
    const dead = a.node;
    const alive = SOCKET_NODES.find((n) => n.name !== dead).name;
    // The browser keeps SRVNAME for the dead node: the balancer must stop honouring it.
    const jar = await a.context.cookies();
    assert.ok(jar.some((c) => c.name === "SRVNAME"), JSON.stringify(jar.map((c) => c.name)));
    await topo.kill(dead);
    await a.page.waitForFunction((n) => document.body.dataset.socketNode === n, alive, { timeout: 30000 });
    await a.page.waitForFunction(() => document.body.dataset.transport === "websocket");
    const srv = (await a.context.cookies()).find((c) => c.name === "SRVNAME").value;
    assert.equal(srv, SOCKET_NODES.find((n) => n.name === alive).cookie, "re-cookied for the live node");
    assert.equal(await a.page.textContent("#me"), "cyd", "still logged in: the session is in Redis");
    await a.page.screenshot({ path: join(ARTIFACTS, "e2e-browser-failover.png"), fullPage: true });
  } finally {
    await a.context.close();
  }
});

test("the page loads npm's socket.io-client through the balancer, and explains how to install it when missing", async () => {
  // Served: byte for byte the file npm ci installed (run.sh installs it), not a copy in the repo.
  const installed = readFileSync(join(REPO, "crates/switchyard-app/web/node_modules/socket.io-client/dist/socket.io.min.js"), "utf8");
  const r = await fetch(`${BASE}/vendor/socket.io.min.js`);
  assert.equal(r.status, 200);
  assert.equal(await r.text(), installed);

  // Missing: an HTTP node started with a --client-js that does not exist warns at start, and
  // the page shows the command that fixes it (the script route answers 503 with it).
  const child = spawn(join(BIN_DIR, "switchyard-app"),
    ["http", "--port", "0", "--node-name", "http-no-client", "--client-js", "/nonexistent/socket.io.min.js"],
    { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr.on("data", (d) => { log += d; });
  const context = await browser.newContext();
  try {
    const url = await until("the lone HTTP node to listen", () => log.match(/listening on (http:\/\/127\.0\.0\.1:\d+\/)/)?.[1]);
    assert.match(log, /not installed.*npm ci --prefix crates\/switchyard-app\/web/s, "warned at start");
    const page = await context.newPage();
    await page.goto(url);
    await page.waitForSelector("#fatal", { state: "visible" });
    const text = await page.textContent("#fatal");
    assert.match(text, /npm ci --prefix crates\/switchyard-app\/web/);
    assert.match(text, /\/nonexistent\/socket\.io\.min\.js/);
    await page.screenshot({ path: join(ARTIFACTS, "e2e-browser-no-client.png"), fullPage: true });
  } finally {
    await context.close();
    child.kill("SIGKILL");
  }
});
