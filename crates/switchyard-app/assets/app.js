// The chat page: logs in through the HTTP tier (a plain form), then connects to the socket
// tier's /chat namespace through the same origin. The socket tier reads the session cookie at
// the Engine.IO handshake, so no token is passed by hand.
"use strict";

const $ = (id) => document.getElementById(id);

function line(text, meta, cls) {
  const li = document.createElement("li");
  if (cls) li.className = cls;
  li.textContent = text;
  if (meta) {
    const span = document.createElement("span");
    span.className = "meta";
    span.textContent = " " + meta;
    li.appendChild(span);
  }
  $("messages").appendChild(li);
  $("messages").scrollTop = $("messages").scrollHeight;
}

function setTransport(name) {
  $("transport").textContent = name;
  document.body.dataset.transport = name;
}

function connect(user) {
  const socket = io("/chat", { path: "/engine.io" });
  socket.io.on("open", () => {
    setTransport(socket.io.engine.transport.name);
    socket.io.engine.on("upgrade", (t) => setTransport(t.name));
  });
  socket.on("connect", () => { $("status").textContent = ""; });
  socket.on("welcome", (w) => {
    $("socket-node").textContent = w.node;
    document.body.dataset.socketNode = w.node;
    $("counter-value").textContent = w.counter;
    line(`connected to ${w.node} as ${w.user}, room ${w.room}`, null, "system");
  });
  socket.on("message", (m) => {
    line(`${m.user}: ${m.text}`, `(${m.room}, via ${m.node})`);
    document.body.dataset.received = String(Number(document.body.dataset.received || 0) + 1);
  });
  socket.on("counter", (c) => { $("counter-value").textContent = c.value; });
  socket.on("connect_error", (e) => {
    if (e.message === "unauthorized") {
      // The socket node does not know this session: it was logged out, or the nodes keep
      // sessions in memory (no Redis), so each knows only its own. Retrying cannot help.
      socket.disconnect();
      $("status").textContent = "the socket server does not know your session " +
        "(logged out, or the servers run without Redis and keep sessions per node)";
      return;
    }
    if (e.message === "session store unavailable") {
      // The socket server cannot read sessions right now (its Redis is away): the refusal is
      // final for this attempt, so try again a little later.
      $("status").textContent = "the session store is unavailable; retrying in 3 s";
      setTimeout(() => socket.connect(), 3000);
      return;
    }
    $("status").textContent = `cannot connect: ${e.message}`;
  });
  socket.on("disconnect", (reason) => {
    $("socket-node").textContent = "reconnecting";
    line(`disconnected (${reason})`, null, "system");
  });
  $("message-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("message").value.trim();
    if (!text) return;
    socket.emit("message", { text }, () => { $("message").value = ""; });
  });
  $("room-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    socket.emit("room", $("room").value, (r) => {
      line(r.ok ? `now in room ${r.room}` : r.error, null, "system");
    });
  });
  $("counter-add").addEventListener("click", () => socket.emit("counter:add"));
  $("me").textContent = user;
}

// The socket.io client did not load (its script answered an error): show the server's
// explanation (it says which command installs it) instead of failing silently.
async function clientMissing() {
  let text = "the socket.io client script /vendor/socket.io.min.js did not load";
  try {
    const r = await fetch("/vendor/socket.io.min.js", { cache: "no-store" });
    if (!r.ok) text = await r.text();
  } catch (err) {
    text += ` (${err})`;
  }
  $("fatal").textContent = text;
  $("fatal").hidden = false;
  document.body.dataset.error = text;
}

async function main() {
  if (typeof io === "undefined") {
    await clientMissing();
    return;
  }
  const reply = await fetch("/api/me", { credentials: "same-origin" });
  const me = await reply.json();
  if (!reply.ok) {
    // 503 while the session store (Redis) is away: say so rather than offer a login that fails.
    $("fatal").textContent = `the server cannot read sessions right now (${me.error || reply.status}); reload in a moment`;
    $("fatal").hidden = false;
    $("http-node").textContent = reply.headers.get("x-node") || "?";
    return;
  }
  $("http-node").textContent = me.node;
  if (!me.user) {
    $("login").hidden = false;
    // A failed form login comes back as /?error=<why>.
    const error = new URLSearchParams(location.search).get("error");
    if (error) {
      $("login-error").textContent = `cannot log in: ${error}`;
      $("login-error").hidden = false;
    }
    return;
  }
  $("chat").hidden = false;
  connect(me.user);
}

main().catch((err) => { document.body.dataset.error = String(err); });
