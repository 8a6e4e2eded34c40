#!/usr/bin/env python3
"""Where the proxy spends its CPU in one scenario: perf sampling and syscalls per request.

    python3 bench/profile.py                       # switchyard, HAProxy and nginx on ka64
    python3 bench/profile.py --proxies switchyard --scenario seed --seconds 8

For each proxy: the same backends, configuration and pinning as bench/run.py, a warm-up, then
`perf record -e cpu-clock` (this VM has no hardware counters) on the proxy's processes during a
wrk run, and `strace -c` during a second, shorter one (strace slows the proxy, but the count
of system calls per request does not depend on speed). Writes bench/results/profile-<proxy>-
<scenario>.txt (the full perf report) and prints a Markdown summary to paste into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchlib import configs, procs, scenarios  # noqa: E402
from benchlib.configs import ProxyConfig  # noqa: E402

TARGET = HERE.parent / "target-bench"


def parse_strace_summary(text: str) -> dict[str, int]:
    """syscall -> calls, from `strace -c` output."""
    calls = {}
    for line in text.splitlines():
        parts = line.split()
        # % time, seconds, usecs/call, calls, [errors,] syscall
        if len(parts) >= 5 and re.fullmatch(r"[\d.]+", parts[0]) and parts[-1] != "total":
            try:
                calls[parts[-1]] = int(parts[3])
            except ValueError:
                continue
    return calls


def parse_perf_report(text: str, limit: int) -> list[tuple[float, str, str]]:
    """(percent, dso, symbol) rows from `perf report --stdio --sort dso,symbol`."""
    rows = []
    for line in text.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)$", line)
        if m:
            # Drop the empty trailing columns perf prints ("-   -").
            symbol = re.sub(r"(\s+-)+\s*$", "", m.group(3)).strip()
            rows.append((float(m.group(1)), m.group(2), symbol))
    return rows[:limit]


def wrk(env: scenarios.Env, sc: scenarios.Scenario, seconds: float) -> dict:
    rc, out, err, _ = procs.run_measured(
        scenarios.wrk_command(env, sc, configs.FRONTEND_PORT, seconds), env.load_cpus(), seconds + 30
    )
    if rc != 0:
        raise RuntimeError(f"wrk failed: {err}")
    return scenarios.parse_wrk(out)


def parse_callgrind_total(text: str) -> int:
    """Instructions (Ir) recorded in a callgrind output file."""
    for line in text.splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    return 0


def callgrind_one(env: scenarios.Env, proxy: str, sc: scenarios.Scenario, seconds: float) -> str:
    """User-space instructions per request under callgrind (deterministic, unlike timings)."""
    cfg = ProxyConfig(sc.mode, sc.threads, fds=configs.fd_limit(), nginx_master=False)
    out = env.tmp / f"callgrind-{proxy}"
    out.mkdir(exist_ok=True)
    # nginx workers drop privileges and must still write their profile and control files.
    env.tmp.chmod(0o755)
    out.chmod(0o777)
    wrap = ("valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}/cg.%p.out")
    # Fewer connections: under valgrind the proxy runs ~50x slower, and wrk's 10 s timeout must hold.
    light = scenarios.Scenario(sc.name, sc.title, sc.mode, sc.kind, min(sc.conns, 8), sc.threads, sc.path, sc.headers)
    svc = scenarios.start_proxy(env, proxy, cfg, f"callgrind-{proxy}", wrap=wrap)
    try:
        time.sleep(2.0)
        wrk(env, light, 1.0)
        pids = svc.pids()
        for pid in pids:
            subprocess.run(["callgrind_control", "-i", "on", str(pid)], capture_output=True)
        w = wrk(env, light, seconds)
        for pid in pids:
            subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True)
    finally:
        svc.stop()
    dumps = sorted(out.glob("cg.*.out.*"))
    total = sum(parse_callgrind_total(d.read_text(errors="replace")) for d in dumps)
    biggest = max(dumps, key=lambda d: d.stat().st_size) if dumps else None
    top = ""
    if biggest is not None:
        top = subprocess.run(["callgrind_annotate", "--threshold=80", str(biggest)],
                             capture_output=True, text=True).stdout
    rows = []
    for line in top.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(.*?)(?:\s+\[(.*)\])?$", line)
        if m and "PROGRAM TOTALS" not in line:
            where = m.group(3).split(":", 1)[-1]
            obj = Path(m.group(4)).name if m.group(4) else ""
            rows.append(f"| {float(m.group(2)):.1f} | {obj} | `{where[:90]}` |")
    per_req = total / max(1, w["requests"])
    return "\n".join([
        f"#### {proxy} under callgrind (`{light.name}`, {light.conns} connections, {w['requests']:,} requests)",
        "",
        f"User-space instructions per request: **{per_req:,.0f}** (kernel work is not counted: see the system calls).",
        "",
        "| % of instructions | object | function |",
        "|---:|---|---|",
        *rows[:15],
        "",
    ])


def profile_one(env: scenarios.Env, proxy: str, sc: scenarios.Scenario, seconds: float, out_dir: Path) -> str:
    cfg = ProxyConfig(sc.mode, sc.threads, fds=configs.fd_limit())
    svc = scenarios.start_proxy(env, proxy, cfg, f"profile-{proxy}")
    try:
        pids = svc.pids()
        workers = pids[1:] if proxy == "nginx" else pids
        wrk(env, sc, 1.0)
        data = env.tmp / f"perf-{proxy}.data"
        perf = subprocess.Popen(
            ["perf", "record", "-q", "-e", "cpu-clock", "-F", "2000", "-o", str(data),
             "-p", ",".join(map(str, workers)), "--", "sleep", f"{seconds:g}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        time.sleep(0.2)
        w = wrk(env, sc, seconds - 1)
        perf.wait(seconds + 30)
        report = subprocess.run(
            ["perf", "report", "-i", str(data), "--stdio", "--no-children", "--sort", "dso,symbol",
             "--percent-limit", "0.3"],
            capture_output=True, text=True,
        ).stdout
        st_out = env.tmp / f"strace-{proxy}.txt"
        strace = subprocess.Popen(
            ["strace", "-c", "-f", "-o", str(st_out), *sum((["-p", str(p)] for p in workers), [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        ws = wrk(env, sc, 2.0)
        strace.send_signal(signal.SIGINT)
        strace.wait(30)
        syscalls = parse_strace_summary(st_out.read_text() if st_out.exists() else "")
    finally:
        svc.stop()
    top = parse_perf_report(report, 20)
    by_dso: dict[str, float] = {}
    for pct, dso, _ in parse_perf_report(report, 10_000):
        key = "kernel" if dso.startswith("[kernel") else dso
        by_dso[key] = by_dso.get(key, 0.0) + pct
    kernel = by_dso.get("kernel", 0.0)
    per_req = sorted(((n / max(1, ws["requests"]), name) for name, n in syscalls.items()), reverse=True)
    (out_dir / f"profile-{proxy}-{sc.name}.txt").write_text(
        f"# perf report ({proxy}, {sc.name}, {w['requests'] / (w['duration_us'] / 1e6):,.0f} req/s while sampled)\n"
        + report
        + f"\n# strace -c over {ws['requests']} requests\n"
        + (st_out.read_text() if st_out.exists() else "")
    )
    lines = [
        f"#### {proxy} (`{sc.name}`, {w['requests'] / (w['duration_us'] / 1e6):,.0f} req/s while sampled; "
        f"{kernel:.0f}% of samples in the kernel)",
        "",
        "Samples by object (rows of at least 0.3%): "
        + ", ".join(f"{d} {v:.0f}%" for d, v in sorted(by_dso.items(), key=lambda kv: -kv[1]) if v >= 0.5)
        + ".",
        "",
        "| % of proxy CPU | where | symbol |",
        "|---:|---|---|",
        *[f"| {p:.1f} | {dso} | `{sym[:90]}` |" for p, dso, sym in top],
        "",
        "System calls per request (strace -c): "
        + ", ".join(f"{name} {n:.2f}" for n, name in per_req if n >= 0.01)
        + f"; total {sum(n for n, _ in per_req):.2f}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--proxies", default="switchyard,haproxy,nginx")
    p.add_argument("--scenario", default="ka64", help="a wrk scenario of bench/run.py")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--switchyard-bin", type=Path, default=TARGET / "release" / "switchyard")
    p.add_argument("--output", type=Path, default=HERE / "results")
    p.add_argument("--callgrind", action="store_true",
                   help="also count user-space instructions per request under valgrind --tool=callgrind")
    a = p.parse_args(argv)
    sc = scenarios.BY_NAME[a.scenario]
    if sc.kind != "wrk":
        p.error("profile.py drives wrk scenarios only")
    for tool in ("perf", "strace", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (Debian: linux-perf, strace, wrk)")
    a.output.mkdir(parents=True, exist_ok=True)
    lock = procs.exclusive_run()  # noqa: F841 - held until the process exits
    tmp = Path(tempfile.mkdtemp(prefix="switchyard-profile-"))
    bin_ = a.switchyard_bin.resolve() if a.switchyard_bin.exists() else None
    env = scenarios.Env(HERE.parent, tmp, TARGET / "release", bin_, True, a.seconds, 1.0, 0,
                        lua=HERE / "wrk" / "report.lua")
    out = []
    try:
        env.backend = scenarios.start_backend(env)
        for proxy in a.proxies.split(","):
            out.append(profile_one(env, proxy, sc, a.seconds, a.output))
            if a.callgrind:
                out.append(callgrind_one(env, proxy, sc, a.seconds))
    finally:
        if env.backend:
            env.backend.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
