#!/usr/bin/env python3
"""Reliability scorecard: switchyard, HAProxy and nginx measured side by side in one run.

    python3 hardening/scorecard.py [--quick] [--proxies switchyard,haproxy,nginx]
        [--out RELIABILITY.md] [--json scorecard.json] [--no-build] [--profile dev]

Rows (../shared/docs/proxy-security.md §5): S1-S3 smuggling corpus, S4 malicious responses
(§1.6), R1 slowloris, R2 slow
POST, R3 slow read, R4 header limits, F1/F2 backend killed under load (GET / POST, with
retries and redispatch), F3 slow backend (504 at `timeout server`), F4 flapping backend,
W1 idle WebSockets memory, W2 WebSocket frame flood. (F5-F7 reloads/drain and Z fuzzing
are measured elsewhere.)
Writes the table into RELIABILITY.md between the scorecard markers; about 9 minutes on 2
cores (`--quick`: about 5). Needs haproxy, nginx and wrk on PATH; Python 3.11 stdlib only.
Every process it starts is killed by process group id when its row ends.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import math
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import response_cases  # noqa: E402
import run_corpus  # noqa: E402
from origin import Origin  # noqa: E402
from proxies import NginxOrigin, Proxy, free_port  # noqa: E402

BEGIN = "<!-- scorecard:begin -->"
END = "<!-- scorecard:end -->"


# ----------------------------------------------------------------------------- helpers
def http_get(port: int, path: str = "/", timeout: float = 2.0, extra: str = "") -> tuple[int, float]:
    """One request on a fresh connection with a total deadline of `timeout` seconds (as
    `curl -m`): (status or 0, seconds)."""
    t = time.time()
    deadline = t + timeout
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n{extra}\r\n".encode())
        data = b""
        while b"\r\n" not in data:
            left = deadline - time.time()
            if left <= 0:
                break
            s.settimeout(left)
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
        return (int(m.group(1)) if m else 0), time.time() - t
    except OSError:
        return 0, time.time() - t


def probes(port: int, n: int, gap: float, start_after: float, out: list) -> threading.Thread:
    """n probe requests launched on a fixed schedule (one every `gap` seconds after
    `start_after`), each in its own thread with a 2 s timeout, as `curl -m 2` in a loop
    would be: a starved proxy does not stretch the schedule. Join the returned thread."""

    def one() -> None:
        out.append(http_get(port))

    def run() -> None:
        time.sleep(start_after)
        threads = []
        for _ in range(n):
            t = threading.Thread(target=one)
            t.start()
            threads.append(t)
            time.sleep(gap)
        for t in threads:
            t.join()

    t = threading.Thread(target=run)
    t.start()
    return t


def group_rss_kb(pid: int) -> int:
    """RSS of a process and its children (nginx workers), in KB."""
    total = 0
    pids = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                pids += [int(c) for c in f.read().split()]
    except OSError:
        pass
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def wrk(port: int, seconds: int, conns: int, script: str | None, workdir: str) -> dict:
    cmd = ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--timeout", "5s"]
    if script:
        path = os.path.join(workdir, "wrk.lua")
        with open(path, "w") as f:
            f.write(script)
        cmd += ["-s", path]
    cmd.append(f"http://127.0.0.1:{port}/")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    return {"proc": p}


def wrk_result(handle: dict) -> dict:
    out, _ = handle["proc"].communicate(timeout=120)
    reqs = int(re.search(r"(\d+) requests in", out).group(1)) if re.search(r"(\d+) requests in", out) else 0
    non2xx = int(re.search(r"Non-2xx or 3xx responses: (\d+)", out).group(1)) if "Non-2xx" in out else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errs = sum(int(x) for x in sock.groups()) if sock else 0
    return {"requests": reqs, "non2xx": non2xx, "socket_errors": errs, "errors": non2xx + errs, "raw": out[-600:]}


POST_SCRIPT = """
local counter = 0
local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
request = function()
  counter = counter + 1
  return wrk.format("POST", "/", {["X-Req-Id"] = tid .. "-" .. counter, ["Content-Length"] = "5"}, "hello")
end
"""

GET_SCRIPT = POST_SCRIPT.replace('"POST"', '"GET"').replace(', ["Content-Length"] = "5"}, "hello")', "})")


# ----------------------------------------------------------------------------- rows
def row_corpus(kind: str, work: str, quick: bool) -> dict:
    cases = run_corpus.load_cases()
    res = run_corpus.run_proxy(kind, cases, verbose=None, workroot=work, workers=4)
    s = res["summary"]
    return {
        "S1": f"{s['strict_pass']}/{s['strict_total']} ({s['reached_backend']} reached backend)",
        "S2": f"{s['desyncs']} desyncs",
        "S3": f"{s['acl_pass']}/{s['acl_total']}",
        "_corpus": s,
    }


def row_responses(kind: str, work: str, quick: bool) -> dict:
    r = response_cases.run_proxy(kind, workroot=work)
    val = f"{r['passed']}/{r['total']}" + (f" (fails {', '.join(sorted(r['failed']))})" if r["failed"] else "")
    return {"value": val, **r}


def slow_clients(port: int, n: int, mode: str, stop: threading.Event, opened: list) -> threading.Thread:
    """n connections that never finish: 'headers' (slowloris), 'body' (slow POST) or
    'read' (request a 1 MB object, never read)."""

    def run() -> None:
        socks = []
        for _ in range(n):
            if stop.is_set():
                break
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=1)
                s.setblocking(False)
                if mode == "headers":
                    s.send(b"GET / HTTP/1.1\r\nHost: example.com\r\n")
                elif mode == "body":
                    s.send(b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 10000\r\n\r\nx")
                else:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    s.send(b"GET /big?bytes=1048576 HTTP/1.1\r\nHost: example.com\r\n\r\n")
                socks.append(s)
            except OSError:
                pass
            time.sleep(0.002)  # ~500 new connections per second
        opened.append(len(socks))
        while not stop.wait(1.0):
            for s in list(socks):
                try:
                    if mode == "headers":
                        s.send(b"X-a: b\r\n")
                    elif mode == "body":
                        s.send(b"x")
                except OSError:
                    socks.remove(s)
        for s in socks:
            s.close()

    t = threading.Thread(target=run)
    t.start()
    return t


def row_slow(kind: str, work: str, quick: bool, mode: str) -> dict:
    origin = Origin()
    (oport,) = origin.start_thread([0])
    port = free_port()
    maxconn = 200
    opts = {"maxconn": maxconn, "timeout_http_request": "3s", "timeout_client": "3s", "frontend_maxconn": maxconn}
    duration = 8 if quick else 15
    n_attack = 2 * maxconn if mode != "read" else 100
    try:
        with Proxy(kind, port, [oport], os.path.join(work, f"{mode}-{kind}"), **opts) as px:
            rss0 = group_rss_kb(px.pid())
            stop = threading.Event()
            opened: list = []
            att = slow_clients(port, n_attack, mode, stop, opened)
            results: list = []
            pr = probes(port, 40, (duration - 2) / 40, 1.0, results)
            pr.join()
            rss1 = group_rss_kb(px.pid())
            stop.set()
            att.join()
    finally:
        origin.stop()
    ok = [t for s, t in results if s == 200]
    times = sorted(t for _, t in results)
    p99 = times[max(0, math.ceil(0.99 * len(times)) - 1)] if times else 0
    val = f"{len(ok)}/40 probes, p99 {p99 * 1000:.0f} ms, {opened[0] if opened else 0} attack conns"
    if mode == "body":
        val += f", origin peak {origin.peak_conns} conns"
    if mode == "read":
        val += f", RSS +{(rss1 - rss0) / 1024:.1f} MB"
    return {"value": val, "ok": len(ok), "p99_ms": round(p99 * 1000), "rss_growth_kb": rss1 - rss0}


def row_limits(kind: str, work: str, quick: bool) -> dict:
    origin = Origin()
    (oport,) = origin.start_thread([0])
    port = free_port()
    reqs = {
        "20 KB header": b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Big: " + b"a" * 20480 + b"\r\n\r\n",
        "150 headers": b"GET / HTTP/1.1\r\nHost: example.com\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n",
        "64 KB line": b"GET /" + b"a" * 65536 + b" HTTP/1.1\r\nHost: example.com\r\n\r\n",
    }
    out = {}
    try:
        with Proxy(kind, port, [oport], os.path.join(work, f"limits-{kind}")):
            for name, raw in reqs.items():
                c = run_corpus.exchange(port, raw, None, window=3.0, stop_after=1)
                out[name] = c["statuses"][0] if c["statuses"] else 0
    finally:
        origin.stop()
    return {"value": "/".join(str(v) for v in out.values()), "statuses": out}


def row_kill(kind: str, work: str, quick: bool, method: str) -> dict:
    d = os.path.join(work, f"kill-{method}-{kind}")
    p1, p2 = free_port(), free_port()
    o1 = NginxOrigin(p1, os.path.join(d, "o1")).start()
    o2 = NginxOrigin(p2, os.path.join(d, "o2")).start()
    port = free_port()
    opts = {"retries": 3, "redispatch": True, "retry_on": "conn-failure empty-response response-timeout", "check": True,
            "inter": "500ms", "rise": 2, "fall": 2, "timeout_connect": "500ms"}
    dur, kill_at, back_at = (10, 3, 6) if quick else (20, 5, 12)
    try:
        with Proxy(kind, port, [p1, p2], d, **opts):
            h = wrk(port, dur, 50, POST_SCRIPT if method == "POST" else GET_SCRIPT, d)
            time.sleep(kill_at)
            o1.kill()
            time.sleep(back_at - kill_at)
            o1 = NginxOrigin(p1, os.path.join(d, "o1")).start()
            r = wrk_result(h)
    finally:
        o1.kill()
        o2.kill()
    ids = o1.request_ids() + o2.request_ids()
    dups = len(ids) - len(set(ids))
    val = f"{r['errors']} errors / {r['requests']:,}"
    if method == "POST":
        val += f", {dups} duplicates"
    return {"value": val, "errors": r["errors"], "non2xx": r["non2xx"], "socket_errors": r["socket_errors"],
            "requests": r["requests"], "duplicates": dups, "wrk": r["raw"]}


def row_slow_backend(kind: str, work: str, quick: bool) -> dict:
    origin = Origin()
    (oport,) = origin.start_thread([0])
    port = free_port()
    try:
        with Proxy(kind, port, [oport], os.path.join(work, f"slowbe-{kind}"), timeout_server="1s"):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.settimeout(5)
            t = time.time()
            s.sendall(b"GET /slow?ms=2000 HTTP/1.1\r\nHost: example.com\r\n\r\n")
            first = run_corpus.parse_responses(_read_until_response(s), False)[0]
            elapsed = time.time() - t
            status = first[0]["status"] if first else 0
            reusable = False
            try:
                s.sendall(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
                second = run_corpus.parse_responses(_read_until_response(s), False)[0]
                reusable = bool(second) and second[0]["status"] == 200
            except OSError:
                pass
            s.close()
    finally:
        origin.stop()
    within = abs(elapsed - 1.0) <= 0.1
    val = f"{status} after {elapsed * 1000:.0f} ms ({'within' if within else 'outside'} 10%), conn {'reusable' if reusable else 'closed'}"
    return {"value": val, "status": status, "elapsed_ms": round(elapsed * 1000), "reusable": reusable}


def _read_until_response(s: socket.socket) -> bytes:
    data = b""
    while True:
        resps, partial = run_corpus.parse_responses(data, False)
        if resps and not partial:
            return data
        try:
            chunk = s.recv(65536)
        except OSError:
            return data
        if not chunk:
            return data
        data += chunk


def row_flap(kind: str, work: str, quick: bool) -> dict:
    origin = Origin()
    p_flap, p_stable = origin.start_thread([0, 0])
    port = free_port()
    d = os.path.join(work, f"flap-{kind}")
    dur = 10 if quick else 20
    opts = {"retries": 3, "redispatch": True, "retry_on": "conn-failure empty-response response-timeout", "check": True,
            "inter": "200ms", "rise": 2, "fall": 2, "timeout_connect": "300ms"}
    stop = threading.Event()

    def flap() -> None:
        up = True
        while not stop.wait(0.7):
            if up:
                origin.call(origin.unlisten, p_flap)
            else:
                origin.call(origin.listen, p_flap)
            up = not up

    try:
        with Proxy(kind, port, [p_flap, p_stable], d, **opts) as px:
            t = threading.Thread(target=flap)
            t.start()
            h = wrk(port, dur, 10, GET_SCRIPT, d)
            r = wrk_result(h)
            stop.set()
            t.join()
            px.log.flush()
            with open(px.log.name, errors="replace") as f:
                log = f.read()
    finally:
        stop.set()
        origin.stop()
    changes = len(re.findall(r"is (?:UP|DOWN)", log))
    bound = dur / (2 * 0.2)  # at most one change per rise*inter
    val = f"{r['errors']} errors / {r['requests']:,}, {changes} state changes"
    return {"value": val, "errors": r["errors"], "non2xx": r["non2xx"], "socket_errors": r["socket_errors"],
            "requests": r["requests"], "state_changes": changes, "bound": bound, "wrk": r["raw"]}


WS_UPGRADE = (
    b"GET /ws101 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
)


def open_websockets(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=3)
            s.sendall(WS_UPGRADE)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            if data.startswith(b"HTTP/1.1 101"):
                socks.append(s)
            else:
                s.close()
        except OSError:
            pass
    return socks


def row_ws_idle(kind: str, work: str, quick: bool) -> dict:
    """W1: idle WebSockets through the proxy: RSS per connection, and after closing them."""
    origin = Origin()
    (oport,) = origin.start_thread([0])
    port = free_port()
    n = 500 if quick else 2000
    try:
        with Proxy(kind, port, [oport], os.path.join(work, f"ws1-{kind}"), maxconn=3 * n) as px:
            time.sleep(0.3)
            rss0 = group_rss_kb(px.pid())
            socks = open_websockets(port, n)
            time.sleep(0.5)
            rss1 = group_rss_kb(px.pid())
            opened = len(socks)
            for s in socks:
                s.close()
            time.sleep(1.0)
            rss2 = group_rss_kb(px.pid())
    finally:
        origin.stop()
    per = (rss1 - rss0) / max(opened, 1)
    val = f"{opened} open: +{(rss1 - rss0) / 1024:.1f} MB = {per:.1f} KB/conn; {rss2 / 1024:.0f} MB after close"
    return {"value": val, "opened": opened, "kb_per_conn": round(per, 2), "rss_after_close_kb": rss2}


def row_ws_flood(kind: str, work: str, quick: bool) -> dict:
    """W2: 100 WebSockets flooding 1-byte masked frames + one frame header announcing 2^63-1
    bytes; RSS growth of the proxy, and whether it still answers."""
    origin = Origin()
    (oport,) = origin.start_thread([0])
    port = free_port()
    dur = 3 if quick else 8
    frame = bytes([0x82, 0x81, 1, 2, 3, 4, 0x55]) * 600
    sent = [0]
    try:
        with Proxy(kind, port, [oport], os.path.join(work, f"ws2-{kind}")) as px:
            socks = open_websockets(port, 100)
            big = open_websockets(port, 1)
            rss0 = group_rss_kb(px.pid())
            for s in big:
                s.sendall(bytes([0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4]))
            for s in socks:
                s.setblocking(False)
            peak = rss0
            end = time.time() + dur
            while time.time() < end:
                for s in socks + big:
                    try:
                        sent[0] += s.send(frame)
                    except (BlockingIOError, OSError):
                        pass
                peak = max(peak, group_rss_kb(px.pid()))
            alive = http_get(port)[0] == 200
            for s in socks + big:
                s.close()
    finally:
        origin.stop()
    val = f"RSS +{(peak - rss0) / 1024:.1f} MB after {sent[0] / 1e6:.0f} MB of frames, {'still serving' if alive else 'NOT serving'}"
    return {"value": val, "rss_growth_kb": peak - rss0, "bytes": sent[0], "alive": alive}


ROWS = [
    ("S1", "Strict corpus cases passed (of the project's corpus), rejected requests that reached the backend", "all strict, 0 reached"),
    ("S2", "Desyncs: smuggled request, origin strict-parse failure or poisoned probe", "0"),
    ("S3", "ACL bypass set denied (`path_beg /internal` vs encoded/dot/slash variants)", "all"),
    ("S4", "Malicious origin responses (CL+TE, 2 CLs, body on HEAD/204, bytes after close, bare LF, NUL, unsolicited 101/response): right status, never reach another client", "all"),
    ("R1", "Slowloris: 2x maxconn (400) slow-header conns + 40 probes (fixed schedule, 2 s timeout each)", ">= 39/40, p99 < 100 ms"),
    ("R2", "Slow POST: 400 conns trickling bodies + 40 probes, origin conns", ">= 39/40, origin bounded"),
    ("R3", "Slow read: 100 conns not reading a 1 MB object + 40 probes, RSS", ">= 39/40, RSS < 64 MB"),
    ("R4", "20 KB header / 150 headers / 64 KB request line -> status", "431/431/414"),
    ("F1", "Backend kill -9 under load (wrk -c50), GET, retries + redispatch", "0 errors"),
    ("F2", "Same with POST: failures, duplicate executions at the origins", "failures <= in-flight, 0 duplicates"),
    ("F3", "Slow backend (2 s) vs `timeout server 1s`: status, time, client conn", "504 within 10%, reusable"),
    ("F4", "Flapping backend (700 ms up/down) beside a stable one, retries on", "0 errors, changes <= 1 per rise*inter"),
    ("W1", "Idle WebSockets through the proxy (2,000; --quick 500): RSS per connection, RSS after close", "<= 8 KB/conn"),
    ("W2", "WebSocket flood: 100 conns of 1-byte frames + one 2^63-1 length header", "RSS growth < 64 MB, still serving"),
]


def run_all(kinds: list[str], quick: bool, work: str, only: list[str] | None = None) -> dict:
    table: dict[str, dict[str, dict]] = {r[0]: {} for r in ROWS}
    for kind in kinds:
        t0 = time.time()
        steps = [
            ("S", lambda: row_corpus(kind, work, quick)),
            ("S4", lambda: row_responses(kind, work, quick)),
            ("R1", lambda: row_slow(kind, work, quick, "headers")),
            ("R2", lambda: row_slow(kind, work, quick, "body")),
            ("R3", lambda: row_slow(kind, work, quick, "read")),
            ("R4", lambda: row_limits(kind, work, quick)),
            ("F1", lambda: row_kill(kind, work, quick, "GET")),
            ("F2", lambda: row_kill(kind, work, quick, "POST")),
            ("F3", lambda: row_slow_backend(kind, work, quick)),
            ("F4", lambda: row_flap(kind, work, quick)),
            ("W1", lambda: row_ws_idle(kind, work, quick)),
            ("W2", lambda: row_ws_flood(kind, work, quick)),
        ]
        for name, fn in steps:
            if only is not None and name not in only:
                continue
            t_row = time.time()
            try:
                res = fn()
            except Exception as e:  # a row that cannot run is reported, not hidden
                res = {"value": f"error: {e}"[:120]}
                if name == "S":
                    res = {k: res for k in ("S1", "S2", "S3")}
            if name == "S":
                for k in ("S1", "S2", "S3"):
                    v = res[k]
                    table[k][kind] = v if isinstance(v, dict) else {"value": v}
                table["S1"][kind]["corpus"] = res.get("_corpus")
            else:
                table[name][kind] = res
            print(json.dumps({"proxy": kind, "row": name, "value": res.get("value", res.get("S1")), "s": round(time.time() - t_row)}, default=str), flush=True)
        print(json.dumps({"proxy": kind, "seconds": round(time.time() - t0)}), flush=True)
    return table


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            cpu = m.group(1) if m else cpu
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) // 1024 // 1024} GiB"
    except OSError:
        pass
    return f"{os.cpu_count()} vCPU ({cpu}), {mem}, Linux {platform.release()}, loopback only"


def versions() -> str:
    def first(cmd: list[str]) -> str:
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"

    return f"{first(['haproxy', '-v'])}; {first(['nginx', '-v'])}; {first(['wrk', '--version'])}"


def render(table: dict, kinds: list[str], quick: bool, elapsed: float, profile: str) -> str:
    names = {"switchyard": "switchyard", "haproxy": "HAProxy", "nginx": "nginx"}
    lines = [
        BEGIN,
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine()}, in {elapsed / 60:.1f} min"
        f"{' (--quick: shorter load rows)' if quick else ''}; switchyard built with the `{profile}` profile.",
        f"Peers: {versions()}.",
        "",
        "| # | Metric | " + " | ".join(names[k] for k in kinds) + " | Bar |",
        "|---|---|" + "---|" * len(kinds) + "---|",
    ]
    for rid, metric, bar in ROWS:
        cells = []
        for k in kinds:
            v = table.get(rid, {}).get(k, {})
            cells.append(str(v.get("value", "-")).replace("|", "/"))
        lines.append(f"| {rid} | {metric} | " + " | ".join(cells) + f" | {bar} |")
    lines += ["", "Failing corpus cases per proxy:", ""]
    for k in kinds:
        c = table["S1"].get(k, {}).get("corpus") or {}
        lines.append(f"- {names[k]}: {', '.join(c.get('failed', [])) or 'none'}")
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_doc(path: str, block: str) -> None:
    text = open(path).read() if os.path.exists(path) else ""
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) + 1 :]
    else:
        text = text + ("\n" if text else "") + "## Scorecard\n\n" + block
    with open(path, "w") as f:
        f.write(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter load rows (about 5 minutes)")
    ap.add_argument("--proxies", default="switchyard,haproxy,nginx")
    ap.add_argument("--out", default=os.path.join(ROOT, "RELIABILITY.md"))
    ap.add_argument("--json")
    ap.add_argument("--no-build", action="store_true", help="use the existing switchyard binary")
    ap.add_argument("--profile", default="dev", help="cargo profile for switchyard (dev, bench-fast, release)")
    ap.add_argument("--rows", help="only these rows, e.g. F1,F2,F4 (S runs S1-S3); use with --out elsewhere")
    a = ap.parse_args()
    kinds = a.proxies.split(",")
    if "switchyard" in kinds and not os.environ.get("SWITCHYARD_BIN"):
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        sub = "debug" if a.profile == "dev" else a.profile
        if not a.no_build:
            subprocess.run(["cargo", "build", "-p", "switchyard", "--profile", a.profile], cwd=ROOT, check=True)
        os.environ["SWITCHYARD_BIN"] = os.path.join(target, sub, "switchyard")
    work = tempfile.mkdtemp(prefix="scorecard-")
    t0 = time.time()
    table = run_all(kinds, a.quick, work, a.rows.split(",") if a.rows else None)
    block = render(table, kinds, a.quick, time.time() - t0, a.profile)
    write_doc(a.out, block)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(table, f, indent=1, default=str)
    print(block)
    print(f"work files in {work}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
