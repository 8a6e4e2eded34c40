#!/usr/bin/env python3
"""Response-side cases (../shared/docs/proxy-security.md §1.6): a scripted origin sends
malformed or malicious responses; whatever the proxy answers, the leftover bytes must never
reach another client (the probes that follow must each get their own answer), and the
client must get one of the allowed statuses.

    python3 hardening/response_cases.py --proxy switchyard --proxy haproxy --proxy nginx

The cases are files: corpus/responses.tsv (path, method, file, allowed statuses) and
corpus/responses/*.http (the raw bytes the origin sends, extra bytes included). The same
files run in CI against switchyard in crates/switchyard/tests/smuggling.rs.
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

CORPUS = os.path.join(HERE, "corpus")


def load_cases() -> list[tuple[str, str, bytes, list[int]]]:
    """(path, method, raw response, allowed statuses) from corpus/responses.tsv."""
    out = []
    with open(os.path.join(CORPUS, "responses.tsv")) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            path, method, fname, allowed = line.rstrip("\n").split("\t")
            with open(os.path.join(CORPUS, fname), "rb") as g:
                out.append((path, method, g.read(), [int(x) for x in allowed.split(",")]))
    return out


CASES = load_cases()


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
            try:
                if case:
                    s.sendall(case[2])
                    if b"connection: close" in case[2].split(b"\r\n\r\n")[0].lower():
                        s.shutdown(socket.SHUT_WR)
                else:
                    body = f"ok {method} {path}\n".encode()
                    s.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + (b"" if method == "HEAD" else body))
            except OSError:  # the proxy closed first (it refused the response): fine
                return


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
