#!/usr/bin/env python3
"""Replay the malformed/malicious request corpus through a proxy in front of the recording origin.

    python3 hardening/run_corpus.py --proxy haproxy [--proxy nginx --proxy switchyard]
        [--cases A01,B02] [--json out.json] [-v]

Each case is classified from both ends (see corpus/make_corpus.py for the expectation
grammar): what the client received (statuses, connection closed or not) and what the
recording origin parsed (requests, parse errors, bytes). After every case a fresh probe
request checks that the upstream connection pool is not poisoned.

Scorecard rows: S1 = strict cases passed (and cases where a rejected request reached the
backend), S2 = desyncs (smuggled request, origin parse error, poisoned probe),
S3 = ACL bypass set (tag ``acl``) denied.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from origin import Origin  # noqa: E402
from proxies import KINDS, Proxy, free_port  # noqa: E402

CORPUS = os.path.join(HERE, "corpus")
WINDOW = 3.0  # seconds a case may take before the connection is considered idle
QUIET_OK = 0.3
QUIET_ERR = 2.0


def unescape(s: str) -> str:
    return re.sub(r"\\x([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), s)


def load_cases(only: set[str] | None = None) -> list[dict]:
    cases = []
    with open(os.path.join(CORPUS, "cases.tsv"), encoding="latin-1") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            cid, fname, level, tags, expect, split, desc = line.rstrip("\n").split("\t")
            if only and cid not in only:
                continue
            with open(os.path.join(CORPUS, fname), "rb") as g:
                raw = g.read()
            cases.append(
                {
                    "id": cid,
                    "level": level,
                    "tags": tags.split(",") if tags != "-" else [],
                    "expect": unescape(expect),
                    "split": None if split == "-" else int(split),
                    "desc": desc,
                    "raw": raw,
                }
            )
    return cases


def parse_expect(expect: str) -> list[tuple[str, list[tuple[str, str]]]]:
    alts = []
    for alt in expect.split(" | "):
        kind, _, args = alt.partition(":")
        kv = []
        if args:
            for a in args.split(";"):
                k, _, v = a.partition("=")
                kv.append((k, v))
        alts.append((kind, kv))
    return alts


# ------------------------------------------------------------------ client side
def parse_responses(buf: bytes, head_first: bool) -> tuple[list[dict], bool]:
    """Parse as many complete responses as possible. Returns (responses, has_partial)."""
    out = []
    pos = 0
    while pos < len(buf):
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            return out, True
        head = buf[pos:end].decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3})", head[0])
        if not m:
            return out, True
        status = int(m.group(1))
        hdrs = {}
        for h in head[1:]:
            k, _, v = h.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        pos = end + 4
        body = b""
        no_body = 100 <= status < 200 or status in (204, 304) or (head_first and not out)
        if not no_body:
            if "chunked" in hdrs.get("transfer-encoding", "").lower():
                chunks = []
                while True:
                    e = buf.find(b"\r\n", pos)
                    if e < 0:
                        return out, True
                    try:
                        size = int(buf[pos:e].split(b";")[0] or b"0", 16)
                    except ValueError:  # a malformed response: report what was complete
                        return out, True
                    if len(buf) < e + 2 + size + 2:
                        return out, True
                    chunks.append(buf[e + 2 : e + 2 + size])
                    pos = e + 2 + size + 2
                    if size == 0:
                        break
                body = b"".join(chunks)
            elif hdrs.get("content-length", "").isdigit():
                n = int(hdrs["content-length"])
                if len(buf) < pos + n:
                    return out, True
                body = buf[pos : pos + n]
                pos += n
            else:  # read until close
                body = buf[pos:]
                pos = len(buf)
                out.append({"status": status, "headers": hdrs, "body": body, "until_close": True})
                return out, False
        out.append({"status": status, "headers": hdrs, "body": body})
    return out, False


def exchange(port: int, raw: bytes, split: int | None, window: float = WINDOW, stop_after: int = 0) -> dict:
    """Send a case and collect what comes back until the connection closes or goes quiet."""
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head_first = raw.startswith(b"HEAD ")
    start = time.time()
    buf = b""
    closed = False
    reset = False
    parts = [raw] if split is None else [raw[:split], raw[split:]]
    for i, part in enumerate(parts):
        try:
            s.sendall(part)
        except OSError:
            reset = True
            break
        want_one = i < len(parts) - 1
        last_rx = None
        while True:
            now = time.time()
            finals = [r for r in parse_responses(buf, head_first)[0] if r["status"] >= 200]
            partial = parse_responses(buf, head_first)[1]
            if want_one and finals:
                break
            if stop_after and len(finals) >= stop_after and not partial:
                break
            if now - start > window:
                break
            if finals and not partial and last_rx is not None:
                quiet = QUIET_ERR if finals[-1]["status"] >= 400 else QUIET_OK
                if now - last_rx >= quiet:
                    break
                timeout = quiet - (now - last_rx)
            else:
                timeout = window - (now - start)
            s.settimeout(max(0.01, min(timeout, window - (now - start))))
            try:
                data = s.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                closed = reset = True
                break
            if not data:
                closed = True
                break
            buf += data
            last_rx = time.time()
        if closed:
            break
    s.close()
    resps, partial = parse_responses(buf, head_first)
    return {
        "statuses": [r["status"] for r in resps],
        "bodies": [r["body"].decode("latin-1")[:200] for r in resps],
        "closed": closed,
        "reset": reset,
        "partial": partial,
        "elapsed": round(time.time() - start, 3),
    }


# ------------------------------------------------------------------ evaluation
def norm_path(target: str) -> str:
    """What a lenient origin would serve: absolute-form stripped, %XX decoded, dots and // removed."""
    m = re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*", target)
    if m:
        target = target[m.end() :] or "/"
    path = target.split("?", 1)[0].split("#", 1)[0]
    path = re.sub(r"%([0-9a-fA-F]{2})", lambda x: chr(int(x.group(1), 16)), path)
    out: list[str] = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    return "/" + "/".join(out)


def first_header(req: dict, name: str) -> str | None:
    for n, v in req["headers"]:
        if n == name:
            return v
    return None


def check_alt(kind: str, args: list[tuple[str, str]], client: dict, reqs: list[dict], got_bytes: bool) -> str | None:
    """None if the alternative holds, else why not."""
    finals = [s for s in client["statuses"] if s >= 200]
    if kind in ("reject", "deny"):
        allowed = args[0][0].split(",") if args else []
        if got_bytes:
            return "REACHED-BACKEND"
        if not finals:
            if "none" in allowed and client["closed"]:
                return None
            return "no response"
        if str(finals[0]) not in allowed:
            return f"status {finals[0]}"
        if kind == "reject" and not client["closed"]:
            return "connection left open"
        return None
    if kind == "incomplete":
        if reqs:
            return "origin saw a complete request"
        if any(200 <= s < 300 for s in finals):
            return "client got a 2xx"
        return None
    if kind == "fwd":
        opts = dict()
        for k, v in args:
            opts.setdefault(k, []).append(v)
        n = int(opts.get("n", ["1"])[0])
        if len(reqs) != n:
            return f"origin saw {len(reqs)} requests, want {n}"
        ok2xx = [s for s in finals if 200 <= s < 300]
        if len(ok2xx) != n:
            return f"client got statuses {client['statuses']}"
        r = reqs[0]
        if "body" in opts and r["body"] != opts["body"][0]:
            return f"origin body {r['body'][:40]!r}"
        if "bodylen" in opts and len(r["body"]) != int(opts["bodylen"][0]):
            return f"origin body length {len(r['body'])}"
        if "path" in opts and (norm_path(r["target"]) != opts["path"][0] or "#" in r["target"]):
            return f"origin target {r['target']!r}"
        if "host" in opts:
            h = first_header(r, "host")
            if (h or "").lower() != opts["host"][0].lower():
                return f"origin Host {h!r}"
        for name in opts.get("noh", []):
            v = first_header(r, name)
            if v is not None:
                return f"origin saw {name}: {v!r}"
        for name in opts.get("has", []):
            if first_header(r, name) is None:
                return f"origin did not see {name}"
        for key in ("hasv", "hasw"):
            for nv in opts.get(key, []):
                name, _, val = nv.partition("=")
                v = first_header(r, name)
                if key == "hasw" and v is not None:
                    v = re.sub(r"[ \t]+", " ", v)
                if v != val:
                    return f"origin saw {name}: {v!r}, want {val!r}"
        if "close" in opts and not client["closed"]:
            return "connection left open"
        return None
    return f"unknown kind {kind}"


def probe(port: int, cid: str) -> str | None:
    path = f"/probe-{cid}"
    c = exchange(port, f"GET {path} HTTP/1.1\r\nHost: example.com\r\n\r\n".encode(), None, window=3.0, stop_after=1)
    if not c["statuses"] or c["statuses"][0] != 200:
        return f"probe got {c['statuses']}"
    if c["bodies"][0] != f"ok GET {path}\n":
        return f"probe answered with {c['bodies'][0]!r} (poisoned pool)"
    return None


def run_case(port: int, origin: Origin, case: dict) -> dict:
    mark = origin.mark()
    client = exchange(port, case["raw"], case["split"])
    time.sleep(0.05)
    evs = origin.since(mark)
    reqs = [e for e in evs if e["ev"] == "request"]
    got_bytes = any(e["ev"] == "bytes" for e in evs)
    desync: list[str] = []
    bypass: list[str] = []
    for e in evs:
        if e["ev"] == "origin-parse-error":
            desync.append(f"origin parse error: {e['reason']}")
        if e["ev"] == "request" and "/smuggled" in e["target"]:
            desync.append("SMUGGLED request reached the origin")
        if e["ev"] == "request" and norm_path(e["target"]).startswith("/internal"):
            bypass.append(f"ACL bypassed: origin served {e['target']!r}")
    mark2 = origin.mark()
    pr = probe(port, case["id"])
    for e in origin.since(mark2):
        if e["ev"] == "origin-parse-error":
            desync.append(f"origin parse error during probe: {e['reason']}")
    if pr:
        desync.append(pr)
    reasons = []
    ok = False
    for kind, args in parse_expect(case["expect"]):
        why = check_alt(kind, args, client, reqs, got_bytes)
        if why is None:
            ok = True
            break
        reasons.append(f"{kind}: {why}")
    passed = ok and not desync and not bypass
    reached = any("REACHED-BACKEND" in r for r in reasons) and not ok
    return {
        "id": case["id"],
        "level": case["level"],
        "tags": case["tags"],
        "expect": case["expect"],
        "desc": case["desc"],
        "pass": passed,
        "why": "; ".join(desync + bypass + ([] if ok else reasons)),
        "desync": bool(desync),
        "acl_bypass": bool(bypass),
        "reached_backend": reached,
        "client": client,
        "origin_requests": [
            {k: r[k] for k in ("method", "target", "framing", "headers") if k in r} | {"body_len": len(r["body"])}
            for r in reqs
        ],
    }


def summarise(results: list[dict]) -> dict:
    strict = [r for r in results if r["level"] == "strict"]
    lenient = [r for r in results if r["level"] == "lenient"]
    acl = [r for r in results if "acl" in r["tags"]]
    return {
        "cases": len(results),
        "strict_pass": sum(r["pass"] for r in strict),
        "strict_total": len(strict),
        "lenient_pass": sum(r["pass"] for r in lenient),
        "lenient_total": len(lenient),
        "reached_backend": sum(r["reached_backend"] for r in results),
        "desyncs": sum(r["desync"] for r in results),
        "acl_pass": sum(r["pass"] for r in acl),
        "acl_total": len(acl),
        "failed": [r["id"] for r in results if not r["pass"]],
    }


def _worker(kind: str, cases: list[dict], workdir: str, verbose: bool | None, out: list, opts: dict) -> None:
    origin = Origin(os.path.join(workdir, "origin"))
    (oport,) = origin.start_thread([0])
    port = free_port()
    try:
        with Proxy(kind, port, [oport], workdir, **opts):
            for c in cases:
                r = run_case(port, origin, c)
                out.append(r)
                if verbose or (verbose is not None and not r["pass"]):
                    flag = "ok  " if r["pass"] else "FAIL"
                    print(f"  {kind:10} {flag} {c['id']} [{c['level']}] {c['desc']}: {r['why']} {r['client']['statuses']}", file=sys.stderr)
    finally:
        origin.stop()


def run_proxy(kind: str, cases: list[dict], verbose: bool | None = False, workroot: str | None = None, workers: int = 4, **opts) -> dict:
    """Runs the cases against one proxy kind with `workers` proxy+origin pairs in parallel
    (each pair runs its share of the cases in sequence, so origin events are attributed exactly).
    verbose: True prints every case, False only failures, None nothing."""
    import threading

    root = tempfile.mkdtemp(prefix=f"corpus-{kind}-", dir=workroot)
    outs: list[list] = [[] for _ in range(workers)]
    threads = []
    for w in range(workers):
        wd = os.path.join(root, f"w{w}")
        t = threading.Thread(target=_worker, args=(kind, cases[w::workers], wd, verbose, outs[w], opts))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    results = sorted((r for o in outs for r in o), key=lambda r: r["id"])
    if len(results) != len(cases):
        raise RuntimeError(f"{kind}: {len(results)} results for {len(cases)} cases; see {root}")
    return {"proxy": kind, "summary": summarise(results), "results": results, "workdir": root}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proxy", action="append", choices=KINDS)
    ap.add_argument("--cases", help="comma-separated case ids")
    ap.add_argument("--json", help="write full results here")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--workers", type=int, default=4, help="proxy+origin pairs run in parallel")
    a = ap.parse_args()
    cases = load_cases(set(a.cases.split(",")) if a.cases else None)
    out = []
    for kind in a.proxy or ["haproxy"]:
        res = run_proxy(kind, cases, a.verbose, workers=a.workers)
        out.append(res)
        print(json.dumps({"proxy": kind} | res["summary"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
