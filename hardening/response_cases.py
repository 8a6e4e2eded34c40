#!/usr/bin/env python3
"""Response-side cases (../shared/docs/proxy-security.md §1.6): a scripted origin sends
malformed or malicious responses; whatever the proxy answers, the leftover bytes must never
reach another client (the probes that follow must each get their own answer), and the
client must get one of the allowed statuses.

    python3 hardening/response_cases.py --proxy switchyard --proxy haproxy --proxy nginx

The same cases run in CI against switchyard in crates/switchyard/tests/smuggling.rs.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import socketserver
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from proxies import KINDS, Proxy, free_port  # noqa: E402
from run_corpus import WINDOW, exchange  # noqa: E402

POISON = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nok POISON"
# (path, method, raw response, allowed statuses)
CASES: list[tuple[str, str, bytes, list[int]]] = [
    ("/r-clte", "GET", b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + POISON, [200, 502]),
    ("/r-2cl", "GET", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", [502]),
    ("/r-head-body", "HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" + POISON, [200, 502]),
    ("/r-204-body", "GET", b"HTTP/1.1 204 No Content\r\n\r\n" + POISON, [204, 502]),
    ("/r-close-extra", "GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok" + POISON, [200]),
    ("/r-bare-lf", "GET", b"HTTP/1.1 200 OK\nContent-Length: 2\nX-A: b\n\nok", [502]),
    ("/r-nul", "GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: a\x00b\r\n\r\nok", [502]),
    ("/r-101", "GET", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" + POISON, [502]),
    ("/r-unsolicited", "GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + POISON, [200]),
]


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        s: socket.socket = self.request
        s.settimeout(10)
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                try:
                    chunk = s.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path = (lines[0].split(" ") + ["", ""])[:2]
            cl = next((int(v) for n, _, v in (l.partition(":") for l in lines[1:]) if n.lower() == "content-length" and v.strip().isdigit()), 0)
            while len(buf) < cl:
                chunk = s.recv(65536)
                if not chunk:
                    return
                buf += chunk
            buf = buf[cl:]
            case = next((c for c in CASES if c[0] == path), None)
            if case:
                s.sendall(case[2])
                if path == "/r-close-extra":
                    s.shutdown(socket.SHUT_WR)
            else:
                body = f"ok {method} {path}\n".encode()
                s.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + (b"" if method == "HEAD" else body))


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def run_case(port: int, case: tuple) -> str | None:
    path, method, _, allowed = case
    c = exchange(port, f"{method} {path} HTTP/1.1\r\nHost: example.com\r\n\r\n".encode(), None, WINDOW, stop_after=1)
    finals = [s for s in c["statuses"] if s >= 200]
    if not finals or finals[0] not in allowed:
        return f"client got {c['statuses']}, want one of {allowed}"
    if any("POISON" in b for b in c["bodies"]):
        return "the extra response reached the client"
    for i in range(4):
        probe = f"/probe{path}-{i}"
        p = exchange(port, f"GET {probe} HTTP/1.1\r\nHost: example.com\r\n\r\n".encode(), None, WINDOW, stop_after=1)
        if not p["bodies"] or p["bodies"][0] != f"ok GET {probe}\n":
            return f"probe {i} got {p['statuses']} {p['bodies'][:1]}: pool poisoned"
    return None


def run_proxy(kind: str, workroot: str | None = None) -> dict:
    srv = _Server(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = free_port()
    results = {}
    try:
        with Proxy(kind, port, [srv.server_address[1]], tempfile.mkdtemp(prefix=f"resp-{kind}-", dir=workroot)):
            for case in CASES:
                results[case[0]] = run_case(port, case)
    finally:
        srv.shutdown()
        srv.server_close()
    failed = {k: v for k, v in results.items() if v}
    return {"proxy": kind, "passed": len(CASES) - len(failed), "total": len(CASES), "failed": failed}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proxy", action="append", choices=KINDS)
    a = ap.parse_args()
    for kind in a.proxy or ["haproxy"]:
        print(json.dumps(run_proxy(kind)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
