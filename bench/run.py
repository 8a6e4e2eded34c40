#!/usr/bin/env python3
"""switchyard's benchmark harness: switchyard, HAProxy 2.6 and nginx side by side.

    python3 bench/run.py                 # the published run: 3 rounds (9 for the goals' scenarios), writes BENCHMARKS.md
    python3 bench/run.py --quick         # ~2 minute smoke run, writes target-bench/bench-quick/
    python3 bench/run.py --scenarios ka64,seed --proxies haproxy,switchyard --rounds 5

It builds the helper tools (bench/tools) and switchyard into target-bench/, starts the origin
backends once, then for every round and scenario starts each proxy in turn (rotating the order
every time) with the same generated configuration file for switchyard and HAProxy and the
equivalent nginx.conf, warms it up, measures, and stops it. The summary takes the median of
every figure over the rounds and its ratio to HAProxy. See BENCHMARKS.md for the method.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from benchlib import configs, machine, procs, report, scenarios  # noqa: E402
from benchlib.scenarios import PROXIES, SCENARIOS, Env  # noqa: E402

TARGET = ROOT / "target-bench"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: 1 round, short runs, 1,000 idle WebSockets")
    p.add_argument("--rounds", type=int, help="rounds (default 3, quick 1)")
    p.add_argument("--key-rounds", type=int,
                   help="rounds for the scenarios that decide a goal (ka64, seed, scale-1t/2t); the rounds past "
                        "--rounds run only those (default 9 in the published run, else --rounds; never fewer than --rounds)")
    p.add_argument("--scale-cores", type=float, default=0.35,
                   help="CPU budget q per proxy thread in the scaling scenarios: scale-1t gets q cores, scale-2t 2q "
                        "(default 0.35: two threads take at most 0.7 of the 2 cores)")
    p.add_argument("--scale-budget", choices=("per-thread", "shared"), default="per-thread",
                   help="per-thread (default): each proxy thread gets its own q inside the proxy's n×q, like a core "
                        "per thread; shared: one n×q budget for all threads (cgroup v2 can only do this)")
    p.add_argument("--scale-period-us", type=int, default=None,
                   help="CFS period of the budget in microseconds (default 10000)")
    p.add_argument("--duration", type=float, help="measured seconds per run, whole seconds for wrk (default 5, quick 2)")
    p.add_argument("--warmup", type=float, help="warm-up seconds per run, 0 for none (default 1)")
    p.add_argument("--idle-conns", type=int, help="idle WebSockets (default 5000, quick 1000)")
    p.add_argument("--scenarios", help="comma-separated subset of: " + ",".join(s.name for s in SCENARIOS)
                   + " (`scale` = scale-1t,scale-2t; default: all but " + ",".join(s.name for s in SCENARIOS if not s.default)
                   + ")")
    p.add_argument("--proxies", default=",".join(PROXIES), help="comma-separated subset of haproxy,nginx,switchyard")
    p.add_argument("--no-pin", dest="pin", action="store_false",
                   help="let the scheduler place everything (default: load generator and backends on CPU 0, "
                        "one-thread proxies on CPU 1, two-thread proxies on both)")
    p.add_argument("--profile", default="release", help="cargo profile for switchyard (release or bench-fast)")
    p.add_argument("--switchyard-bin", type=Path, help="use this switchyard binary instead of building one")
    p.add_argument("--switchyard-rev",
                   help="build switchyard from this git revision (exported with git archive into target-bench/) "
                        "instead of the working tree, e.g. HEAD for a published run")
    p.add_argument("--no-build", action="store_true", help="do not run cargo (use binaries already in target-bench)")
    p.add_argument("--target-dir", type=Path, default=TARGET,
                   help="cargo target directory of the harness's builds and revision exports (default target-bench)")
    p.add_argument("--output", type=Path,
                   help="directory for results.json, the Markdown table and charts "
                        "(default: bench/results, quick: target-bench/bench-quick)")
    p.add_argument("--markdown", type=Path,
                   help="Markdown file whose generated section is replaced (default: BENCHMARKS.md for full runs, "
                        "none for quick runs)")
    p.add_argument("--from-json", type=Path, help="only re-render the report from a results.json")
    a = p.parse_args(argv)
    if a.key_rounds is None:
        # 9 in the published run (the same binary's ka64 ratio moved by ±15% from round to
        # round on this machine); an explicit --rounds (or --quick) applies to every scenario.
        a.key_rounds = a.rounds or (1 if a.quick else 9)
    a.rounds = a.rounds or (1 if a.quick else 3)
    a.key_rounds = max(a.rounds, a.key_rounds)
    if a.scale_cores <= 0:
        p.error("--scale-cores must be positive")
    a.scale_period_us = a.scale_period_us or scenarios.cgroup.DEFAULT_PERIOD_US
    a.duration = a.duration or (2.0 if a.quick else 5.0)
    a.warmup = a.warmup if a.warmup is not None else 1.0
    a.idle_conns = a.idle_conns or (1000 if a.quick else 5000)
    a.target_dir = a.target_dir.resolve()
    if a.output is None:
        a.output = a.target_dir / "bench-quick" if a.quick else HERE / "results"
    if a.markdown is None and not a.quick:
        a.markdown = ROOT / "BENCHMARKS.md"
    names = scenarios.expand_names(a.scenarios.split(",")) if a.scenarios else [s.name for s in SCENARIOS if s.default]
    unknown = [n for n in names if n not in scenarios.BY_NAME]
    if unknown:
        p.error(f"unknown scenarios: {', '.join(unknown)}")
    a.scenario_list = [scenarios.BY_NAME[n] for n in names]
    a.proxy_list = [x for x in a.proxies.split(",") if x]
    bad = [x for x in a.proxy_list if x not in PROXIES]
    if bad:
        p.error(f"unknown proxies: {', '.join(bad)}")
    return a


def cargo(args: list[str], cwd: Path, target: Path) -> tuple[bool, str]:
    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    r = subprocess.run(["cargo", *args], cwd=cwd, env=env, capture_output=True, text=True)
    return r.returncode == 0, r.stderr[-2000:]


def build(a: argparse.Namespace) -> tuple[Path, Path | None, str]:
    """Builds the tools and switchyard; returns (tools dir, switchyard binary or None, note)."""
    tools_bin = a.target_dir / "release"
    if not a.no_build:
        ok, err = cargo(["build", "--release", "--manifest-path", str(HERE / "tools" / "Cargo.toml")], ROOT, a.target_dir)
        if not ok:
            sys.exit(f"building bench/tools failed:\n{err}")
    if "switchyard" not in a.proxy_list:
        return tools_bin, None, "not requested"
    if a.switchyard_bin:
        return tools_bin, a.switchyard_bin.resolve(), f"binary {a.switchyard_bin}"
    profile_dir = "release" if a.profile == "release" else a.profile
    src, what, target = ROOT, "working tree", a.target_dir
    if a.switchyard_rev:
        sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", a.switchyard_rev],
                             capture_output=True, text=True).stdout.strip()
        if not sha:
            return tools_bin, None, f"unknown revision {a.switchyard_rev}"
        # Cargo fingerprints workspace crates by relative path and mtime, so an export must have
        # fresh mtimes and its own target directory, or cargo may call a stale binary fresh.
        src, what, target = export_revision(sha, a.target_dir), f"commit {sha[:10]}", a.target_dir / "rev"
    binary = target / profile_dir / "switchyard"
    if not a.no_build:
        print(f"building switchyard ({what}, --profile {a.profile}) ...", flush=True)
        ok, err = cargo(["build", "--profile", a.profile, "-p", "switchyard", "--bin", "switchyard"], src, target)
        if not ok:
            return tools_bin, None, f"build failed: {err.strip().splitlines()[-1] if err.strip() else '?'}"
    if not binary.exists():
        return tools_bin, None, f"no binary at {binary}"
    return tools_bin, binary, f"{what}, --profile {a.profile}"


def export_revision(sha: str, target_dir: Path) -> Path:
    """A pristine copy of the tree at `sha` (git archive, no change to the repository), always
    extracted anew with the current time as every file's mtime."""
    dest = target_dir / "rev-src"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", "--format=tar", sha], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-m", "-C", str(dest)], stdin=archive.stdout, check=True)
    archive.wait()
    return dest


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for want in (65536, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), max(hard, want)))
            return
        except (ValueError, OSError):
            continue


def check_switchyard(env: Env, proxies: list[str], note: str) -> tuple[list[str], str]:
    """Drops switchyard from the proxies when it cannot start at all (reported as "not run")."""
    if "switchyard" not in proxies:
        return proxies, note
    if env.switchyard_bin is None:
        return [p for p in proxies if p != "switchyard"], note
    from benchlib.configs import ProxyConfig

    try:
        svc = scenarios.start_proxy(env, "switchyard", ProxyConfig("keep-alive", 1, fds=configs.fd_limit()), "switchyard-check")
        svc.stop()
        return proxies, note
    except Exception as e:  # noqa: BLE001
        return [p for p in proxies if p != "switchyard"], f"{note}; did not start: {str(e)[-300:]}"


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    if a.from_json:
        data = json.loads(a.from_json.read_text())
        report.write_all(data, a.output, a.markdown)
        return 0
    for tool in ("wrk", "haproxy", "nginx", "cargo"):
        if shutil.which(tool) is None and not (tool == "cargo" and a.no_build):
            sys.exit(f"{tool} is not installed (Debian: apt-get install wrk haproxy nginx)")
    lock = procs.exclusive_run()  # noqa: F841 - held until the process exits
    tools_bin, sy_bin, sy_note = build(a)
    raise_fd_limit()
    started = dt.datetime.now(dt.timezone.utc)
    tmp = Path(tempfile.mkdtemp(prefix="switchyard-bench-"))
    env = Env(ROOT, tmp, tools_bin, sy_bin, a.pin, a.duration, a.warmup, a.idle_conns, lua=HERE / "wrk" / "report.lua",
              scale_cores=a.scale_cores, scale_period_us=a.scale_period_us, scale_budget=a.scale_budget)
    skipped: dict[str, str] = {}
    why = scenarios.cgroup.unavailable_reason()
    if why and any(s.budget for s in a.scenario_list):
        # Said in the report instead of a figure: no budget, no scaling measurement.
        skipped = {s.name: why for s in a.scenario_list if s.budget}
        a.scenario_list = [s for s in a.scenario_list if not s.budget]
        print(f"skipping {', '.join(skipped)}: {why}", flush=True)
    results: list[dict] = []
    load_before = os.getloadavg()
    try:
        env.backend = scenarios.start_backend(env)
        proxies, sy_note = check_switchyard(env, a.proxy_list, sy_note)
        print(f"proxies: {', '.join(proxies)}; switchyard: {sy_note}; pin: {a.pin}; tmp: {tmp}", flush=True)
        plan = scenarios.round_plan(scenarios.run_units(a.scenario_list), proxies, a.rounds, a.key_rounds)
        t0 = time.monotonic()
        for done, (rnd, sc, proxy) in enumerate(plan, 1):
            r = scenarios.run_one(env, sc, proxy, rnd)
            results.append(r)
            print(report.progress_line(r, done, len(plan), time.monotonic() - t0), flush=True)
    finally:
        if env.backend is not None:
            env.backend.stop()
    data = {
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python3 bench/run.py " + " ".join(argv),
        "settings": {
            "rounds": a.rounds, "key_rounds": a.key_rounds,
            "key_scenarios": [s.name for s in a.scenario_list if s.key],
            "duration_s": a.duration, "warmup_s": a.warmup,
            "idle_conns": a.idle_conns, "pin": a.pin, "quick": a.quick,
            "scale_cores": a.scale_cores, "scale_period_us": a.scale_period_us, "scale_budget": a.scale_budget,
        },
        "skipped": skipped,
        "machine": machine.describe(load_before),
        "versions": machine.versions(sy_bin, sy_note, ROOT),
        "proxies": a.proxy_list,
        "scenarios": [s.name for s in a.scenario_list],
        "results": results,
    }
    report.write_all(data, a.output, a.markdown)
    print(report.summary_text(data))
    if any(not r["ok"] for r in results):
        print(f"some runs failed: configurations and proxy logs kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    # A failing reference proxy means the harness itself is broken; switchyard failing is a result.
    failed = [r for r in results if not r["ok"] and r["proxy"] != "switchyard"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
