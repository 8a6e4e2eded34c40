#!/usr/bin/env python3
"""Kernel time per request, switchyard against HAProxy, alternating runs (helper K).

    python3 bench/tools-k/kmeasure.py --rounds 4 --bin target-k/release/switchyard
    python3 bench/tools-k/kmeasure.py --events      # also count tracepoints (perf stat)
    python3 bench/tools-k/kmeasure.py --bins a=path1,b=path2 --proxies a,b,haproxy

Uses bench/run.py's configuration, backend and pinning (backend + wrk on CPU 0, the proxy
alone on CPU 1). Per run and per request: CPU time from schedstat (exact ns), utime and stime
from /proc/<pid>/stat (tick-sampled split), minor faults, voluntary / involuntary context
switches; with --events, `perf stat` counts of tracepoints in the proxy's threads (system
calls, packets sent, softirqs, IPIs sent, wake-ups, page faults); with --record, `perf record
-e cpu-clock` and µs per request per symbol (compare with bench/tools-k/symdiff.py).

Environment: KEVENTS=a,b (tracepoints for --events), KRECEV="-e ev ..." (events for
--record instead of cpu-clock), KCALLG=dir (--record with -g, perf.data kept in dir).
A variant's own environment: --bins "name=path@VAR=1;VAR2=x".
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchlib import configs, procs, scenarios  # noqa: E402
from benchlib.configs import ProxyConfig  # noqa: E402

EVENTS = [
    "raw_syscalls:sys_enter",
    "syscalls:sys_enter_epoll_wait",
    "syscalls:sys_enter_epoll_ctl",
    "syscalls:sys_enter_sendto",
    "syscalls:sys_enter_recvfrom",
    "syscalls:sys_enter_write",
    "syscalls:sys_enter_read",
    "syscalls:sys_enter_madvise",
    "syscalls:sys_enter_mmap",
    "syscalls:sys_enter_munmap",
    "net:net_dev_xmit",
    "net:netif_rx",
    "irq:softirq_entry",
    "ipi:ipi_send_cpu",
    "ipi:ipi_send_cpumask",
    "irq_vectors:reschedule_entry",
    "irq_vectors:call_function_single_entry",
    "irq_vectors:local_timer_entry",
    "sched:sched_wakeup",
    "sched:sched_switch",
    "exceptions:page_fault_user",
    "tcp:tcp_rcv_space_adjust",
    "skb:consume_skb",
    "timer:hrtimer_start",
    "timer:timer_start",
]


# name -> extra environment of that variant ("name=path@VAR=1;VAR2=x").
VARS: dict[str, dict[str, str]] = {}


def tasks(pids: list[int]) -> list[Path]:
    out = []
    for p in pids:
        try:
            out.extend(Path(f"/proc/{p}/task").iterdir())
        except OSError:
            pass
    return out


@functools.cache
def softirqd_of_proxy_cpu() -> tuple[str, ...]:
    """The pids of ksoftirqd on CPU 1, where one-thread proxies are pinned (looked up once)."""
    out = subprocess.run(["pgrep", "-a", "ksoftirqd"], capture_output=True, text=True).stdout
    # `pgrep -a` prints kernel threads' names in brackets: `22 [ksoftirqd/1]`.
    return tuple(pid for pid, name in (line.split() for line in out.splitlines())
                 if name.strip("[]") == "ksoftirqd/1")


def sample(pids: list[int]) -> dict:
    s = {"run_ns": 0, "utime": 0, "stime": 0, "minflt": 0, "majflt": 0, "vcsw": 0, "ivcsw": 0}
    for p in pids:
        try:
            rest = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        f = rest[rest.rindex(")") + 2:].split()
        s["minflt"] += int(f[7])
        s["majflt"] += int(f[9])
        s["utime"] += int(f[11])
        s["stime"] += int(f[12])
    s["softirqd_ns"] = sum(int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
                           for pid in softirqd_of_proxy_cpu())
    for t in tasks(pids):
        try:
            s["run_ns"] += int((t / "schedstat").read_text().split()[0])
            for line in (t / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches"):
                    s["vcsw"] += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches"):
                    s["ivcsw"] += int(line.split()[1])
        except OSError:
            pass
    return s


def start_variant(env, name: str, bin_: Path | None, cfg: ProxyConfig, tag: str,
                  env_of: dict[str, dict[str, str]]):
    """Starts proxy `name`: HAProxy, nginx, or the switchyard build `bin_` with its own
    environment from `env_of` (see parse_bins)."""
    env.switchyard_bin = bin_
    real = name if name in ("haproxy", "nginx") else "switchyard"
    saved = dict(os.environ)
    os.environ.update(env_of.get(name, {}))
    try:
        return scenarios.start_proxy(env, real, cfg, tag)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def one(env, proxy: str, bin_: Path | None, sc, seconds: float, events: bool, record: bool = False) -> dict:
    cfg = ProxyConfig(sc.mode, sc.threads, fds=configs.fd_limit())
    svc = start_variant(env, proxy, bin_, cfg, f"k-{proxy}", VARS)
    try:
        pids = svc.pids()
        procs.run_measured(scenarios.wrk_command(env, sc, cfg.port, 1.0), env.load_cpus(), 30)
        perf = None
        if events:
            out = env.tmp / f"perfstat-{proxy}.txt"
            tids = [t.name for t in tasks(pids)]
            perf = subprocess.Popen(
                ["perf", "stat", "-x", ",", "-o", str(out), "-t", ",".join(tids),
                 *sum((["-e", e] for e in (os.environ["KEVENTS"].split(",") if os.environ.get("KEVENTS") else EVENTS)), [])],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            time.sleep(0.3)
        prec = None
        if record:
            data = env.tmp / f"perf-{proxy}.data"
            prec = subprocess.Popen(
                ["perf", "record", "-q", *(os.environ["KRECEV"].split() if os.environ.get("KRECEV") else ["-e", "cpu-clock", "-F", "4000"]), "-o", str(data), *(["-g"] if os.environ.get("KCALLG") else []),
                 "-t", ",".join(t.name for t in tasks(pids))],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            time.sleep(0.3)
        a = sample(pids)
        wall0 = time.monotonic()
        rc, wout, err, lg = procs.run_measured(scenarios.wrk_command(env, sc, cfg.port, seconds),
                                               env.load_cpus(), seconds + 30)
        wall = time.monotonic() - wall0
        b = sample(pids)
        counts = {}
        if perf is not None:
            perf.send_signal(2)
            perf.wait(30)
            for line in out.read_text().splitlines():
                parts = line.split(",")
                if len(parts) > 3 and parts[0].strip().isdigit():
                    counts[parts[2]] = int(parts[0])
        w = scenarios.parse_wrk(wout)
        syms = {}
        if prec is not None:
            prec.send_signal(2)
            prec.wait(30)
            if os.environ.get("KCALLG"):
                keep = Path(os.environ["KCALLG"]) / f"perf-{proxy}-{time.time():.0f}.data"
                shutil.copy(data, keep)
            rep = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--no-children",
                                  "--sort", "sym", "-F", "sample,sym", "--percent-limit", "0"],
                                 capture_output=True, text=True).stdout
            for line in rep.splitlines():
                m = re.match(r"\s*(\d+)\s+\[(.)\]\s+(.*\S)", line)
                if m:
                    syms[("k " if m.group(2) == "k" else "u ") + m.group(3)] = int(m.group(1))
    finally:
        svc.stop()
    n = w["requests"]
    d = {k: b[k] - a[k] for k in a}
    tick_total = d["utime"] + d["stime"]
    cpu_us = d["run_ns"] / 1e3
    r = {
        "proxy": proxy,
        "requests": n,
        "req_s": n / (w["duration_us"] / 1e6),
        "cores": d["run_ns"] / 1e9 / wall,
        "load_cores": lg / wall,
        "cpu_us_req": cpu_us / n,
        "req_per_cpu_s": n / (d["run_ns"] / 1e9),
        "stime_share": d["stime"] / tick_total if tick_total else 0,
        "sys_us_req": cpu_us / n * (d["stime"] / tick_total if tick_total else 0),
        "usr_us_req": cpu_us / n * (d["utime"] / tick_total if tick_total else 0),
        "minflt_req": d["minflt"] / n,
        # Time ksoftirqd on the proxy's CPU spent (softirqs deferred from the proxy's own
        # system calls land there instead of in the proxy's stime).
        "softirqd_us_req": d["softirqd_ns"] / 1e3 / n,
        "vcsw_req": d["vcsw"] / n,
        "ivcsw_req": d["ivcsw"] / n,
    }
    for k, v in counts.items():
        r["ev:" + k] = v / n
    if syms:
        # µs per request from samples at 4 kHz.
        r["syms"] = {k: v * 250.0 / n for k, v in syms.items()}
        r["perf_kernel_us_req"] = sum(v for k, v in r["syms"].items() if k.startswith("k "))
        r["perf_user_us_req"] = sum(v for k, v in r["syms"].items() if k.startswith("u "))
    return r


def parse_bins(spec: str, env_of: dict[str, dict[str, str]]) -> dict[str, Path]:
    """`name=path,...` with an optional environment per variant (`name=path@VAR=1;VAR2=x`,
    stored in `env_of`)."""
    bins = {}
    for item in filter(None, spec.split(",")):
        name, path = item.split("=", 1)
        if "@" in path:
            path, extra = path.split("@", 1)
            env_of[name] = dict(kv.split("=", 1) for kv in extra.split(";"))
        bins[name] = Path(path).resolve()
    return bins


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--bins", default="", help="name=path,... switchyard builds (default: sy=target-k)")
    p.add_argument("--proxies", default="", help="order within a round (default: every bin, haproxy)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--scenario", default="ka64")
    p.add_argument("--events", action="store_true")
    p.add_argument("--json", type=Path)
    p.add_argument("--record", action="store_true", help="perf record cpu-clock, µs per request per symbol")
    a = p.parse_args(argv)
    root = HERE.parent.parent
    bins = parse_bins(a.bins or f"sy={root / 'target-k/release/switchyard'}", VARS)
    order = a.proxies.split(",") if a.proxies else [*bins, "haproxy"]
    sc = scenarios.BY_NAME[a.scenario]
    lock = procs.exclusive_run()  # noqa: F841
    tmp = Path(tempfile.mkdtemp(prefix="k-measure-"))
    env = scenarios.Env(root, tmp, root / "target-bench" / "release", None, True, a.seconds, 1.0, 0,
                        lua=root / "bench" / "wrk" / "report.lua")
    rows = []
    try:
        env.backend = scenarios.start_backend(env)
        for rnd in range(a.rounds):
            seq = order if rnd % 2 == 0 else order[::-1]
            for proxy in seq:
                r = one(env, proxy, bins.get(proxy), sc, a.seconds, a.events, a.record)
                r["round"] = rnd
                rows.append(r)
                print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items() if k != "syms"}),
                      flush=True)
    finally:
        if env.backend:
            env.backend.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    # Summary: medians per proxy.
    keys = [k for k in rows[0] if k not in ("proxy", "round", "syms")]
    print("\nmedians:")
    print("key".ljust(44) + "".join(n.rjust(12) for n in order))
    for k in keys:
        vals = []
        for n in order:
            xs = sorted(r[k] for r in rows if r["proxy"] == n and k in r)
            vals.append(xs[len(xs) // 2] if xs else float("nan"))
        print(k.ljust(44) + "".join(f"{v:12.4g}" for v in vals))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

