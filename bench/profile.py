#!/usr/bin/env python3
"""Where the proxy spends its CPU in one scenario: perf sampling and syscalls per request.

    python3 bench/profile.py                       # switchyard, HAProxy and nginx on ka64
    python3 bench/profile.py --proxies switchyard --scenario seed --seconds 8
    python3 bench/profile.py --proxies switchyard,haproxy --scenario eio --callgrind

For each proxy: the same backends, configuration and pinning as bench/run.py, a warm-up, then
`perf record -e cpu-clock` (this VM has no hardware counters) on the proxy's processes during a
load run, and `strace -c` during a second, shorter one (strace slows the proxy, but the count
of system calls per request does not depend on speed). Writes bench/results/profile-<proxy>-
<scenario>.txt (the full perf report) and prints a Markdown summary to paste into BENCHMARKS.md.

The load is wrk for the wrk scenarios and bench-client for `eio` and `ws-echo` ("per request"
then means per round trip or per echoed message). wrk runs are measured whole, with the
profiler attached before they start. bench-client runs are measured over the client's own
window (its `measure-start` / `measure-end` events, sessions already open and warmed up); the
profiler is attached when the window opens (strace: once it says every thread is attached) and
stopped when it closes, so a few round trips in flight at either edge are counted on one side
only (with thousands per window, well under 1%).
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
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


# bench-client scenarios profile.py can drive.
CLIENT_KINDS = ("eio", "ws-echo")


def wrk(env: scenarios.Env, sc: scenarios.Scenario, seconds: float) -> dict:
    rc, out, err, _ = procs.run_measured(
        scenarios.wrk_command(env, sc, configs.FRONTEND_PORT, seconds), env.load_cpus(), seconds + 30
    )
    if rc != 0:
        raise RuntimeError(f"wrk failed: {err}")
    return scenarios.parse_wrk(out)


def client_args(sc: scenarios.Scenario, port: int, warmup: float, seconds: float) -> list[str]:
    """bench-client's arguments for one run of `sc`, as bench/run.py passes them."""
    count_flag = "--sessions" if sc.kind == "eio" else "--conns"
    return [sc.kind, "--addr", f"127.0.0.1:{port}", count_flag, str(sc.conns),
            "--warmup", f"{warmup:g}", "--duration", f"{seconds:g}"]


def drive(env: scenarios.Env, sc: scenarios.Scenario, seconds: float, on_start, on_end,
          warmup: float = 1.0) -> int:
    """Puts `sc`'s load on the proxy for a measured window of `seconds`, calling `on_start()`
    just before the window and `on_end()` just after it; returns the operations (requests,
    round trips or messages) completed in the window.

    wrk: a warm-up run, then `on_start`, the measured run, `on_end`. bench-client: one run whose
    warm-up opens the sessions; the callbacks run on its window events.
    """
    if sc.kind == "wrk":
        if warmup > 0:
            wrk(env, sc, warmup)
        on_start()
        w = wrk(env, sc, seconds)
        on_end()
        return w["requests"]
    if sc.kind not in CLIENT_KINDS:
        raise ValueError(f"profile.py cannot drive {sc.kind!r} scenarios")
    client = scenarios._Client(env, client_args(sc, configs.FRONTEND_PORT, warmup, seconds),
                               warmup + seconds + 300)
    result = None
    started = ended = False
    try:
        for ev in client.events():
            if ev["event"] == "measure-start":
                on_start()
                started = True
            elif ev["event"] == "measure-end":
                on_end()
                ended = True
            elif ev["event"] == "result":
                result = ev
    finally:
        if started and not ended:
            on_end()
        client.finish()
    if result is None or not ended:
        raise RuntimeError("bench-client ended without a measured window")
    if result["errors"]:
        raise RuntimeError(f"bench-client: {result['errors']} errors, first: {result.get('first_error')}")
    return result["ops"]


def attached_threads(line: str) -> int:
    """Threads an strace stderr line reports attached: "Process N attached [with M threads]"."""
    m = re.search(r"Process \d+ attached(?: with (\d+) threads)?", line)
    if not m:
        return 0
    return int(m.group(1)) if m.group(1) else 1


def strace_attach(pids: list[int], out: Path, timeout: float = 10.0) -> subprocess.Popen:
    """`strace -c -f` on `pids`; returns once strace reports every thread attached."""
    threads = sum(len(list(Path(f"/proc/{p}/task").iterdir())) for p in pids)
    st = subprocess.Popen(
        ["strace", "-c", "-f", "-o", str(out), *sum((["-p", str(p)] for p in pids), [])],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    seen = 0
    deadline = time.monotonic() + timeout
    assert st.stderr is not None
    while seen < threads and time.monotonic() < deadline:
        line = st.stderr.readline()
        if not line:
            break
        seen += attached_threads(line)
    # Keep draining stderr so that strace never blocks on a full pipe.
    threading.Thread(target=st.stderr.read, daemon=True).start()
    return st


def parse_callgrind_total(text: str) -> int:
    """Instructions (Ir) recorded in a callgrind output file."""
    for line in text.splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    return 0


# What one operation of a scenario kind is called in the summaries.
OP_NAMES = {"wrk": "request", "eio": "round trip", "ws-echo": "message"}
CONN_NAMES = {"eio": "sessions"}


def callgrind_one(env: scenarios.Env, proxy: str, sc: scenarios.Scenario, seconds: float,
                  keep: Path | None = None) -> str:
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
    pids: list[int] = []
    lag: list[float] = []

    def control(*args: str) -> None:
        t = time.monotonic()
        for pid in pids:
            subprocess.run(["callgrind_control", *args, str(pid)], capture_output=True)
        lag.append(time.monotonic() - t)

    try:
        time.sleep(2.0)
        pids = svc.pids()
        # bench-client sessions open during the warm-up, which is slow under valgrind.
        ops = drive(env, light, seconds, lambda: control("-i", "on"), lambda: control("-d"),
                    warmup=1.0 if light.kind == "wrk" else 3.0)
    finally:
        svc.stop()
    dumps = sorted(out.glob("cg.*.out.*"))
    total = sum(parse_callgrind_total(d.read_text(errors="replace")) for d in dumps)
    biggest = max(dumps, key=lambda d: d.stat().st_size) if dumps else None
    if keep is not None and biggest is not None:
        # For `callgrind_annotate --auto=yes` (line level with a line-tables build).
        shutil.copy(biggest, keep / f"callgrind-{proxy}-{sc.name}.out")
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
    per_req = total / max(1, ops)
    unit = OP_NAMES.get(light.kind, "request")
    edges = "" if light.kind == "wrk" else (
        f" The window's edges: callgrind_control took {lag[0]:.2f} s to switch counting on"
        f" and {lag[-1]:.2f} s to dump (within the client's {seconds:g} s window)."
    )
    return "\n".join([
        f"#### {proxy} under callgrind (`{light.name}`, {light.conns} {CONN_NAMES.get(light.kind, 'connections')}, {ops:,} {unit}s)",
        "",
        f"User-space instructions per {unit}: **{per_req:,.0f}** (kernel work is not counted: see the system calls).{edges}",
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
        data = env.tmp / f"perf-{proxy}.data"
        perf: dict[str, subprocess.Popen] = {}
        t: dict[str, float] = {}

        def perf_start() -> None:
            perf["p"] = subprocess.Popen(
                ["perf", "record", "-q", "-e", "cpu-clock", "-F", "2000", "-o", str(data),
                 "-p", ",".join(map(str, workers))],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )
            t["start"] = time.monotonic()

        def perf_stop() -> None:
            t["end"] = time.monotonic()
            perf["p"].send_signal(signal.SIGINT)
            perf["p"].wait(60)

        n = drive(env, sc, seconds - 1, perf_start, perf_stop)
        rate = n / max(1e-9, t["end"] - t["start"])
        report = subprocess.run(
            ["perf", "report", "-i", str(data), "--stdio", "--no-children", "--sort", "dso,symbol",
             "--percent-limit", "0.3"],
            capture_output=True, text=True,
        ).stdout
        st_out = env.tmp / f"strace-{proxy}.txt"
        strace: dict[str, subprocess.Popen] = {}

        def strace_start() -> None:
            strace["p"] = strace_attach(workers, st_out)

        def strace_stop() -> None:
            strace["p"].send_signal(signal.SIGINT)
            strace["p"].wait(30)

        # A client window is longer: strace slows the proxy several times over.
        ops = drive(env, sc, 2.0 if sc.kind == "wrk" else 4.0, strace_start, strace_stop)
        syscalls = parse_strace_summary(st_out.read_text() if st_out.exists() else "")
    finally:
        svc.stop()
    top = parse_perf_report(report, 20)
    by_dso: dict[str, float] = {}
    for pct, dso, _ in parse_perf_report(report, 10_000):
        key = "kernel" if dso.startswith("[kernel") else dso
        by_dso[key] = by_dso.get(key, 0.0) + pct
    kernel = by_dso.get("kernel", 0.0)
    per_req = sorted(((n / max(1, ops), name) for name, n in syscalls.items()), reverse=True)
    unit = OP_NAMES.get(sc.kind, "request")
    (out_dir / f"profile-{proxy}-{sc.name}.txt").write_text(
        f"# perf report ({proxy}, {sc.name}, {rate:,.0f} {unit}s/s while sampled)\n"
        + report
        + f"\n# strace -c over {ops} {unit}s\n"
        + (st_out.read_text() if st_out.exists() else "")
    )
    lines = [
        f"#### {proxy} (`{sc.name}`, {rate:,.0f} {unit}s/s while sampled; "
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
        f"System calls per {unit} (strace -c, {ops:,} {unit}s): "
        + ", ".join(f"{name} {n:.2f}" for n, name in per_req if n >= 0.01)
        + f"; total {sum(n for n, _ in per_req):.2f}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--proxies", default="switchyard,haproxy,nginx")
    p.add_argument("--scenario", default="ka64",
                   help="a scenario of bench/run.py: a wrk one, eio or ws-echo")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--switchyard-bin", type=Path, default=TARGET / "release" / "switchyard")
    p.add_argument("--output", type=Path, default=HERE / "results")
    p.add_argument("--callgrind", action="store_true",
                   help="also count user-space instructions per request under valgrind --tool=callgrind")
    p.add_argument("--keep-callgrind", action="store_true",
                   help="copy each proxy's callgrind output to the output directory")
    p.add_argument("--no-perf", action="store_true",
                   help="skip perf and strace (with --callgrind: instructions only)")
    a = p.parse_args(argv)
    sc = scenarios.BY_NAME[a.scenario]
    if sc.kind != "wrk" and sc.kind not in CLIENT_KINDS:
        p.error(f"profile.py drives wrk scenarios and {', '.join(CLIENT_KINDS)} only")
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
            if not a.no_perf:
                out.append(profile_one(env, proxy, sc, a.seconds, a.output))
            if a.callgrind:
                out.append(callgrind_one(env, proxy, sc, a.seconds, a.output if a.keep_callgrind else None))
    finally:
        if env.backend:
            env.backend.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
