#!/usr/bin/env python3
"""CPU per request of several proxies measured in interleaved one-second slices (helper K).

    python3 bench/tools-k/kslice.py --bins a=path1,b=path2 --proxies a,b,haproxy --scenario seed --slices 30

All proxies run at once (own ports, each pinned like bench/run.py pins one proxy), idle
except while wrk drives one of them for one second, in rotating order. The machine's speed
drifts over seconds (a VM: the same binary's CPU per request moves by ±20% between
5-second runs), so slices spread every proxy's measurement over the same minutes. Reports
per proxy the total requests per CPU-second over all slices, and per rotation the ratio of
each proxy to the last one named.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from benchlib import configs, procs, scenarios  # noqa: E402
from benchlib.configs import ProxyConfig  # noqa: E402
from kmeasure import parse_bins, sample, start_variant  # noqa: E402


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--bins", default="", help="name=path,... switchyard builds (name=path@VAR=1;VAR2=x: with that environment)")
    p.add_argument("--proxies", default="", help="names (bins, haproxy, nginx); ratios are to the last")
    p.add_argument("--slices", type=int, default=20, help="one-second slices per proxy")
    p.add_argument("--scenario", default="seed")
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    root = HERE.parent.parent
    extra: dict[str, dict[str, str]] = {}
    bins = parse_bins(a.bins, extra)
    order = a.proxies.split(",") if a.proxies else [*bins, "haproxy"]
    sc = scenarios.BY_NAME[a.scenario]
    lock = procs.exclusive_run()  # noqa: F841
    tmp = Path(tempfile.mkdtemp(prefix="k-slice-"))
    env = scenarios.Env(root, tmp, root / "target-bench" / "release", None, True, 1, 1.0, 0,
                        lua=root / "bench" / "wrk" / "report.lua")
    svcs, ports, pids = {}, {}, {}
    rows = []
    try:
        env.backend = scenarios.start_backend(env)
        for i, name in enumerate(order):
            cfg = ProxyConfig(sc.mode, sc.threads, port=configs.FRONTEND_PORT + 10 * (i + 1),
                              fds=configs.fd_limit())
            svcs[name] = start_variant(env, name, bins.get(name), cfg, f"s-{name}", extra)
            ports[name] = cfg.port
            pids[name] = svcs[name].pids()
        for name in order:  # warm-up
            procs.run_measured(scenarios.wrk_command(env, sc, ports[name], 1), env.load_cpus(), 30)
        for k in range(a.slices):
            seq = order[k % len(order):] + order[:k % len(order)]
            for name in seq:
                s0 = sample(pids[name])
                rc, out, err, lg = procs.run_measured(scenarios.wrk_command(env, sc, ports[name], 1),
                                                      env.load_cpus(), 30)
                s1 = sample(pids[name])
                w = scenarios.parse_wrk(out)
                rows.append({"slice": k, "proxy": name, "requests": w["requests"],
                             "cpu_ns": s1["run_ns"] - s0["run_ns"],
                             "utime": s1["utime"] - s0["utime"], "stime": s1["stime"] - s0["stime"]})
    finally:
        for s in svcs.values():
            s.stop()
        if env.backend:
            env.backend.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    ref = order[-1]
    print(f"{'proxy':10} {'req/CPU-s':>10} {'µs/req':>8} {'user share':>10}  ratio to {ref}: total, median of slices, better in")
    tot = {}
    for name in order:
        rs = [r for r in rows if r["proxy"] == name]
        tot[name] = sum(r["requests"] for r in rs) / (sum(r["cpu_ns"] for r in rs) / 1e9)
    for name in order:
        rs = [r for r in rows if r["proxy"] == name]
        n = sum(r["requests"] for r in rs)
        ns = sum(r["cpu_ns"] for r in rs)
        tk = sum(r["utime"] + r["stime"] for r in rs)
        per = []
        for k in range(a.slices):
            x = {r["proxy"]: r for r in rows if r["slice"] == k}
            per.append((x[name]["requests"] / x[name]["cpu_ns"]) / (x[ref]["requests"] / x[ref]["cpu_ns"]))
        gm = math.exp(statistics.mean(math.log(v) for v in per))
        print(f"{name:10} {tot[name]:10.0f} {ns / 1e3 / n:8.2f} {sum(r['utime'] for r in rs) / tk:10.2f}  "
              f"{tot[name] / tot[ref]:.3f}  {statistics.median(per):.3f} (geo {gm:.3f}, log-sd "
              f"{statistics.pstdev([math.log(v) for v in per]):.3f})  {sum(v > 1 for v in per)}/{len(per)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
