#!/usr/bin/env python3
"""Recording origin: a strict HTTP/1.1 server that logs every byte it receives.

It is the oracle behind the smuggling corpus (hardening/run_corpus.py) and the
fault rows of the scorecard (hardening/scorecard.py). Python 3.11 stdlib only.

What it does, per accepted connection:
- appends every received byte to ``<logdir>/conn-<id>.bin`` (when a log dir is given);
- parses requests with a *strict* RFC 9112 parser (CRLF only, no obs-fold, token names,
  no CTLs in values, one Host, exactly one framing header: a proxy must never forward
  ambiguous framing), and records one event per request;
- answers ``200`` with body ``ok <method> <target>\\n`` (or the special paths below);
- on a parse error records an ``origin-parse-error`` event, answers 400 and closes.
  A proxy that makes this origin fail has forwarded something a strict server
  cannot frame: that is the signature of a desync.
- when a connection closes with unparsed bytes, records a ``leftover`` event.

Special paths: ``/slow?ms=N`` sleeps N ms before answering; ``/status?code=N`` answers N;
``/big?bytes=N`` answers an N-byte body; ``/ws101`` with ``Upgrade: websocket`` accepts the
upgrade and then discards whatever the client sends.

Run alone: ``python3 hardening/origin.py --port 9000 [--logdir DIR]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import re
import threading
import time

TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
VERSION = re.compile(rb"^HTTP/1\.[01]$")
MAX_HEAD = 64 * 1024


class ParseError(Exception):
    pass


def _valid_value(v: bytes) -> bool:
    for b in v:
        if b == 0x09:
            continue
        if b < 0x20 or b == 0x7F:
            return False
    return True


def _read_line(buf: bytes, pos: int) -> tuple[bytes, int] | None:
    """Return (line, next_pos) for a CRLF-terminated line, None if incomplete."""
    i = buf.find(b"\n", pos)
    if i < 0:
        if len(buf) - pos > MAX_HEAD:
            raise ParseError("line too long")
        return None
    if i == pos or buf[i - 1] != 0x0D:
        raise ParseError("bare LF")
    line = buf[pos : i - 1]
    if b"\r" in line:
        raise ParseError("bare CR")
    return line, i + 1


def _parse_fields(buf: bytes, pos: int) -> tuple[list[tuple[str, bytes]], int] | None:
    fields: list[tuple[str, bytes]] = []
    while True:
        r = _read_line(buf, pos)
        if r is None:
            return None
        line, pos = r
        if line == b"":
            return fields, pos
        if line[:1] in (b" ", b"\t"):
            raise ParseError("obs-fold")
        if b":" not in line:
            raise ParseError("field line without colon")
        name, value = line.split(b":", 1)
        if not TOKEN.match(name):
            raise ParseError("invalid field name %r" % name[:40])
        value = value.strip(b" \t")
        if not _valid_value(value):
            raise ParseError("CTL in field value")
        fields.append((name.decode("latin-1").lower(), value))
        if len(fields) > 1000:
            raise ParseError("too many fields")


def parse_request(buf: bytes) -> tuple[dict, int] | None:
    """Strictly parse one request at the start of ``buf``.

    Returns (request, consumed) or None when more bytes are needed; raises ParseError.
    """
    r = _read_line(buf, 0)
    if r is None:
        return None
    line, pos = r
    parts = line.split(b" ")
    if len(parts) != 3:
        raise ParseError("request line is not 'method SP target SP version'")
    method, target, version = parts
    if not TOKEN.match(method):
        raise ParseError("invalid method")
    if not VERSION.match(version):
        raise ParseError("invalid version")
    if not target or any(b <= 0x20 or b == 0x7F or b >= 0x80 for b in target) or b"#" in target:
        raise ParseError("invalid request-target")
    r = _parse_fields(buf, pos)
    if r is None:
        return None
    fields, pos = r
    hosts = [v for n, v in fields if n == "host"]
    if len(hosts) > 1:
        raise ParseError("more than one Host")
    if version == b"HTTP/1.1" and not hosts:
        raise ParseError("HTTP/1.1 without Host")
    te = [v for n, v in fields if n == "transfer-encoding"]
    cl = [v for n, v in fields if n == "content-length"]
    if te and cl:
        raise ParseError("both Content-Length and Transfer-Encoding forwarded")
    if len(te) > 1 or len(cl) > 1:
        raise ParseError("framing header repeated")
    body = b""
    trailers: list[tuple[str, bytes]] = []
    framing = "none"
    if te:
        if version != b"HTTP/1.1":
            raise ParseError("Transfer-Encoding in HTTP/1.0")
        codings = [c.strip().lower() for c in te[0].split(b",")]
        if codings[-1] != b"chunked" or codings.count(b"chunked") != 1:
            raise ParseError("Transfer-Encoding does not end in one chunked")
        framing = "chunked"
        chunks = []
        while True:
            r = _read_line(buf, pos)
            if r is None:
                return None
            line, pos = r
            size_s = line.split(b";", 1)[0]
            if b";" in line:  # BWS is allowed before a chunk extension
                size_s = size_s.rstrip(b" \t")
            if not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", size_s):
                raise ParseError("invalid chunk size %r" % size_s[:20])
            size = int(size_s, 16)
            if size == 0:
                r = _parse_fields(buf, pos)
                if r is None:
                    return None
                trailers, pos = r
                break
            if len(buf) < pos + size + 2:
                return None
            chunks.append(buf[pos : pos + size])
            if buf[pos + size : pos + size + 2] != b"\r\n":
                raise ParseError("chunk data not followed by CRLF")
            pos += size + 2
        body = b"".join(chunks)
    elif cl:
        if not re.fullmatch(rb"[0-9]{1,18}", cl[0]):
            raise ParseError("invalid Content-Length %r" % cl[0][:20])
        n = int(cl[0])
        framing = "content-length"
        if len(buf) < pos + n:
            return None
        body = buf[pos : pos + n]
        pos += n
    req = {
        "method": method.decode("latin-1"),
        "target": target.decode("latin-1"),
        "version": version.decode(),
        "headers": [[n, v.decode("latin-1")] for n, v in fields],
        "trailers": [[n, v.decode("latin-1")] for n, v in trailers],
        "framing": framing,
        "body": body.decode("latin-1"),
        "raw_len": pos,
    }
    return req, pos


class Origin:
    """The recording origin. Thread-safe event list with global sequence numbers."""

    def __init__(self, logdir: str | None = None):
        self.logdir = logdir
        self.events: list[dict] = []
        self.lock = threading.Lock()
        self.next_conn = 0
        self.servers: dict[int, asyncio.base_events.Server] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.open_conns: set[asyncio.StreamWriter] = set()
        self.peak_conns = 0
        if logdir:
            os.makedirs(logdir, exist_ok=True)

    # ---- events
    def record(self, ev: dict) -> None:
        with self.lock:
            ev["seq"] = len(self.events)
            ev["t"] = time.time()
            self.events.append(ev)
            if self.logdir:
                with open(os.path.join(self.logdir, "events.jsonl"), "a") as f:
                    f.write(json.dumps(ev) + "\n")

    def mark(self) -> int:
        with self.lock:
            return len(self.events)

    def since(self, seq: int) -> list[dict]:
        with self.lock:
            return [dict(e) for e in self.events[seq:]]

    # ---- serving
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self.lock:
            cid = self.next_conn
            self.next_conn += 1
        port = writer.get_extra_info("sockname")[1]
        self.open_conns.add(writer)
        self.peak_conns = max(self.peak_conns, len(self.open_conns))
        raw_path = os.path.join(self.logdir, "conn-%d.bin" % cid) if self.logdir else None
        self.record({"ev": "open", "conn": cid, "port": port})
        buf = b""
        nreq = 0
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if raw_path:
                    with open(raw_path, "ab") as f:
                        f.write(data)
                self.record({"ev": "bytes", "conn": cid, "n": len(data)})
                buf += data
                while buf:
                    try:
                        r = parse_request(buf)
                    except ParseError as e:
                        self.record(
                            {"ev": "origin-parse-error", "conn": cid, "reason": str(e), "data": buf[:300].decode("latin-1")}
                        )
                        writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        await writer.drain()
                        buf = b""
                        return
                    if r is None:
                        break
                    req, used = r
                    buf = buf[used:]
                    req.update({"ev": "request", "conn": cid, "n": nreq, "port": port})
                    nreq += 1
                    self.record(req)
                    if self.is_ws101(req):
                        await self.tunnel(req, reader, writer)
                        buf = b""
                        return
                    close = await self.respond(req, writer)
                    if close:
                        return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if buf:
                self.record({"ev": "leftover", "conn": cid, "data": buf[:300].decode("latin-1"), "n": len(buf)})
            self.record({"ev": "close", "conn": cid})
            self.open_conns.discard(writer)
            try:
                writer.close()
            except Exception:
                pass

    @staticmethod
    def is_ws101(req: dict) -> bool:
        up = ",".join(v.lower() for n, v in req["headers"] if n == "upgrade")
        return req["target"].startswith("/ws101") and "websocket" in up

    async def tunnel(self, req: dict, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Accepts a WebSocket upgrade on `/ws101` (RFC 6455 §4.2.2) and then discards
        everything the client sends, without parsing frames, until it closes."""
        key = next((v for n, v in req["headers"] if n == "sec-websocket-key"), "")
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        writer.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
                f"sec-websocket-accept: {accept}\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        while await reader.read(65536):
            pass

    async def respond(self, req: dict, writer: asyncio.StreamWriter) -> bool:
        target = req["target"]
        status, reason = 200, "OK"
        body = ("ok %s %s\n" % (req["method"], target)).encode("latin-1")
        q = {}
        if "?" in target:
            for kv in target.split("?", 1)[1].split("&"):
                k, _, v = kv.partition("=")
                q[k] = v
        path = target.split("?", 1)[0]
        if path.endswith("/slow") and q.get("ms", "").isdigit():
            await asyncio.sleep(int(q["ms"]) / 1000)
        if path.endswith("/status") and q.get("code", "").isdigit():
            status, reason = int(q["code"]), "Status"
        if path.endswith("/big") and q.get("bytes", "").isdigit():
            body = b"x" * int(q["bytes"])
        conn_vals = ",".join(v.lower() for n, v in req["headers"] if n == "connection")
        close = req["version"] == "HTTP/1.0" and "keep-alive" not in conn_vals
        close = close or "close" in conn_vals
        head = "HTTP/1.1 %d %s\r\ncontent-length: %d\r\nx-origin-conn: %d\r\nx-origin-req: %d\r\n" % (
            status,
            reason,
            len(body),
            req["conn"],
            req["n"],
        )
        if close:
            head += "connection: close\r\n"
        writer.write(head.encode() + b"\r\n" + (b"" if req["method"] == "HEAD" else body))
        await writer.drain()
        return close

    async def listen(self, port: int, host: str = "127.0.0.1") -> int:
        srv = await asyncio.start_server(self.handle, host, port, reuse_address=True, backlog=1024)
        real = srv.sockets[0].getsockname()[1]
        self.servers[real] = srv
        return real

    async def unlisten(self, port: int, drop_conns: bool = True) -> None:
        srv = self.servers.pop(port, None)
        if srv:
            srv.close()
        if drop_conns:
            for w in list(self.open_conns):
                if w.get_extra_info("sockname")[1] == port:
                    w.transport.abort()

    # ---- running in a background thread (used by the runners)
    def start_thread(self, ports: list[int]) -> list[int]:
        ready = threading.Event()
        out: list[int] = []

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)

            def quiet_cancel(loop: asyncio.AbstractEventLoop, ctx: dict) -> None:
                if not isinstance(ctx.get("exception"), asyncio.CancelledError):
                    loop.default_exception_handler(ctx)

            self.loop.set_exception_handler(quiet_cancel)
            for p in ports:
                out.append(self.loop.run_until_complete(self.listen(p)))
            ready.set()
            self.loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)
        return out

    def stop(self) -> None:
        """Closes the listeners and every open connection, then stops the loop."""
        if self.loop is None:
            return

        async def shutdown() -> None:
            for port in list(self.servers):
                await self.unlisten(port)
            me = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not me]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.call(shutdown)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)

    def call(self, coro_fn, *args):
        """Run a coroutine on the origin's loop from another thread and wait for it."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro_fn(*args), self.loop).result(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, action="append", required=True)
    ap.add_argument("--logdir")
    a = ap.parse_args()
    o = Origin(a.logdir)

    async def run() -> None:
        for p in a.port:
            print("listening on", await o.listen(p), flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    main()
