// Real-client helpers: socket.io-client sockets through the balancer, raw Engine.IO requests
// and the HTTP tier's login.
import { createConnection } from "node:net";
import { io } from "socket.io-client";
import { BASE, until } from "./harness.mjs";

export const ENGINE_PATH = "/engine.io";

/**
 * What an Engine.IO transport error says beyond its message. engine.io-client wraps a failed
 * polling request as `xhr post error` / `xhr poll error` with the XHR status as `description`
 * (0 when the request never got a response: the socket error is then the XHR's `statusText`)
 * and the XHR as `context`; a WebSocket error carries the error event.
 */
export function describeError(err) {
  if (!err || err.type !== "TransportError") return err?.message ?? String(err);
  const parts = [err.message];
  const d = err.description;
  if (typeof d === "number") parts.push(`status ${d}`);
  else if (d) parts.push(String(d.message ?? d.error?.message ?? d));
  const xhr = err.context;
  if (xhr && typeof xhr === "object") {
    const cause = xhr.statusText;
    if (cause && typeof cause === "object") parts.push(`${cause.code ?? ""} ${cause.message ?? ""}`.trim());
    const text = typeof xhr.responseText === "string" && !(cause && typeof cause === "object") ? xhr.responseText : "";
    if (text) parts.push(`body ${JSON.stringify(text.slice(0, 200))}`);
  }
  return parts.join(": ");
}

/**
 * Connects a socket.io-client socket through the balancer and resolves once it is connected
 * (and, with `upgraded: true`, once the transport is WebSocket). Every socket gets its own
 * Manager (forceNew), hence its own Engine.IO session and cookie jar.
 */
export function connect({
  ns = "/",
  transports,
  withCredentials = true,
  cookie,
  reconnection = false,
  upgraded = false,
  timeoutMs = 10000,
} = {}) {
  const opts = {
    path: ENGINE_PATH,
    forceNew: true,
    withCredentials,
    reconnection,
    reconnectionDelay: 300,
    reconnectionDelayMax: 1500,
    timeout: timeoutMs,
  };
  if (transports) opts.transports = transports;
  if (cookie) opts.extraHeaders = { cookie };
  const sock = io(`${BASE}${ns === "/" ? "" : ns}`, opts);
  // `disconnectDetails`: what a transport error said (see describeError), for assertion messages.
  sock.events = { connect: 0, disconnect: [], disconnectDetails: [], connectError: [], upgrade: null };
  // The upgrade may finish before `connect`: listen on the Manager's open.
  sock.io.on("open", () => {
    sock.io.engine.once("upgrade", (t) => { sock.events.upgrade = t.name; });
  });
  sock.on("connect", () => { sock.events.connect += 1; });
  sock.on("disconnect", (reason, details) => {
    sock.events.disconnect.push(reason);
    if (details) sock.events.disconnectDetails.push(describeError(details));
  });
  sock.on("connect_error", (err) => sock.events.connectError.push(err.message));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error(`connect timed out; errors: ${sock.events.connectError.join(", ")}`));
    }, timeoutMs);
    const done = async () => {
      try {
        if (upgraded) await until("the WebSocket upgrade", () => sock.io.engine?.transport?.name === "websocket", timeoutMs);
        clearTimeout(timer);
        resolve(sock);
      } catch (err) {
        clearTimeout(timer);
        sock.close();
        reject(err);
      }
    };
    sock.once("connect", done);
    if (!reconnection) {
      sock.once("connect_error", (err) => {
        clearTimeout(timer);
        // Read before close(): the failed request's XHR is still as it answered.
        if (err?.type === "TransportError") err.message = describeError(err);
        sock.close();
        reject(err);
      });
    }
  });
}

/** Connects `n` sockets one after the other (leastconn sees each previous one settled). */
export async function connectMany(n, opts) {
  const socks = [];
  for (let i = 0; i < n; i++) socks.push(await connect(opts));
  return socks;
}

/**
 * How long an acknowledgement may take. Generous on purpose: the tests check where answers
 * come from, not how fast, and a shared machine stalls now and then (a whole-machine pause of
 * 5.5 s was measured on the CI VM: every process stopped, then the acks arrived), which a 5 s
 * limit turned into "operation has timed out". A lost acknowledgement still fails.
 */
export const ACK_TIMEOUT_MS = 15000;

/** Asks the node that holds `sock` who it is: { node, transport, user, id }. */
export function whoami(sock, ms = ACK_TIMEOUT_MS) {
  return sock.timeout(ms).emitWithAck("whoami");
}

export function closeAll(socks) {
  for (const s of socks) s.close();
}

/** The SRVNAME cookie the balancer gave this socket's current Engine.IO session, if any. */
export function srvCookie(sock) {
  return sock.io.engine?._cookieJar?._cookies?.get("SRVNAME")?.value;
}

/** A raw request through the balancer: { status, headers, body, setCookies }. */
export async function raw(path, { method = "GET", cookie, body, headers = {} } = {}) {
  const h = { ...headers };
  if (cookie) h.cookie = cookie;
  const r = await fetch(`${BASE}${path}`, { method, headers: h, body, redirect: "manual" });
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: text, setCookies: r.headers.getSetCookie() };
}

/** Logs `user` in through the HTTP tier; returns the `session=...` cookie pair. */
export async function login(user) {
  const r = await raw("/api/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user }),
  });
  if (r.status !== 200) throw new Error(`login failed: ${r.status} ${r.body}`);
  const set = r.setCookies.find((c) => c.startsWith("session="));
  if (!set) throw new Error(`login set no session cookie: ${r.setCookies}`);
  return set.split(";")[0];
}

/** Counts sockets per node name from their whoami answers. */
export async function placement(socks) {
  const nodes = await Promise.all(socks.map(async (s) => (await whoami(s)).node));
  const counts = {};
  for (const n of nodes) counts[n] = (counts[n] || 0) + 1;
  return { nodes, counts };
}

/**
 * A request written byte for byte to the balancer (for header shapes fetch cannot send, such
 * as two Cookie headers). `headers` is a list of [name, value] pairs. Reads until the server
 * closes (the request says `connection: close`).
 */
export function rawTcp(method, path, headers = [], body = "") {
  const url = new URL(BASE);
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: url.hostname, port: Number(url.port) });
    const chunks = [];
    sock.setTimeout(10000, () => { sock.destroy(); reject(new Error("raw request timed out")); });
    sock.on("data", (c) => chunks.push(c));
    sock.on("error", reject);
    sock.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const [head, ...rest] = text.split("\r\n\r\n");
      const [statusLine, ...lines] = head.split("\r\n");
      const hdrs = lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]);
      resolve({
        status: Number(statusLine.split(" ")[1]),
        header: (n) => hdrs.find(([k]) => k === n)?.[1],
        headers: hdrs,
        body: rest.join("\r\n\r\n"),
      });
    });
    const lines = [`${method} ${path} HTTP/1.1`, `host: ${url.host}`, "connection: close",
      ...headers.map(([k, v]) => `${k}: ${v}`)];
    if (body) lines.push(`content-length: ${Buffer.byteLength(body)}`);
    sock.write(lines.join("\r\n") + "\r\n\r\n" + body);
  });
}
