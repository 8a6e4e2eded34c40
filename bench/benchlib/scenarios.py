"""The scenarios and how one measured run of one proxy in one scenario goes."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import cgroup, configs, procs
from .configs import ProxyConfig

PROXIES = ("haproxy", "nginx", "switchyard")
# Load generators and backends are pinned to this CPU (with --pin), one-thread proxies to the
# other one; two-thread proxies get both.
LOAD_CPU = 0
PROXY_CPU = 1


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    mode: str  # configs.MODES
    kind: str  # "wrk", "ws-echo", "eio", "ws-idle"
    conns: int
    threads: int = 1
    path: str = "/"
    headers: tuple[str, ...] = ()
    unit: str = "req/s"
    # Also measure the backend without any proxy (a ceiling for the proxied figures).
    direct: bool = False
    # Run the proxy unpinned in a cgroup with a CPU budget of `threads` × Env.scale_cores
    # (the scaling scenarios; see cgroup.py).
    budget: bool = False
    # Scenarios of one group run back to back for each proxy (scale-1t then scale-2t, the order
    # alternating every round), so their per-round ratio compares runs adjacent in time.
    group: str = ""
    # Part of the published run's default list (`--scenarios` can still name the others).
    default: bool = True
    # Decides a goal of issue 5: gets --key-rounds rounds instead of --rounds.
    key: bool = False


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("ka64", "Keep-alive, 13-byte responses, 64 connections", "keep-alive", "wrk", 64, direct=True, key=True),
    Scenario("ka1000", "Keep-alive, 13-byte responses, 1,000 connections", "keep-alive", "wrk", 1000),
    Scenario("seed", "Seed mode (http-server-close + httpclose: new backend connection per request), 64 connections", "seed", "wrk", 64, key=True),
    Scenario("body16k", "Keep-alive, 16 KiB responses, 64 connections", "keep-alive", "wrk", 64, path="/16k"),
    Scenario("body1m", "Keep-alive, 1 MiB responses, 16 connections", "keep-alive", "wrk", 16, path="/1m"),
    Scenario("newconn", "New client connection per request (Connection: close), 64 at a time", "keep-alive", "wrk", 64, headers=("Connection: close",)),
    Scenario("eio", "Engine.IO long-poll round trips through /engine.io (seed mode), 64 sessions", "seed", "eio", 64, unit="round trips/s"),
    Scenario("ws-echo", "WebSocket echo through /engine.io, 64 connections, 32-byte messages", "keep-alive", "ws-echo", 64, unit="msg/s"),
    Scenario("ws-idle", "Idle WebSockets through /engine.io: proxy RSS per connection", "keep-alive", "ws-idle", 5000, unit="bytes/conn"),
    Scenario("scale-1t", "`ka64` with one proxy thread held to a CPU budget of q cores (scaling)", "keep-alive", "wrk", 64,
             budget=True, group="scale", key=True),
    Scenario("scale-2t", "`ka64` with two proxy threads held to a CPU budget of 2q cores (scaling)", "keep-alive", "wrk", 64,
             threads=2, budget=True, group="scale", key=True),
    # Unconstrained two threads: on 2 cores the load side takes one of them, so this shows
    # CPU efficiency with two threads, not scaling. Not in the published run any more.
    Scenario("ka64-2t", "Keep-alive, 13-byte responses, 64 connections, two proxy threads", "keep-alive", "wrk", 64, threads=2,
             default=False),
)

BY_NAME = {s.name: s for s in SCENARIOS}
# Names that stand for a group of scenarios on the command line.
GROUPS = {g: [s.name for s in SCENARIOS if s.group == g] for g in {s.group for s in SCENARIOS if s.group}}

# Checks that a budget-limited run measured the proxy, not the load side: the proxy used at
# least this share of its budget, and the CPU(s) of the load side were busy at most this share.
MIN_BUDGET_USE = 0.9
MAX_LOAD_CPU_BUSY = 0.9


def expand_names(names: list[str]) -> list[str]:
    """Scenario names with group names (e.g. `scale`) replaced by their members, in order and
    without duplicates; unknown names are kept for the caller to report."""
    out: list[str] = []
    for n in names:
        for m in GROUPS.get(n, [n]):
            if m not in out:
                out.append(m)
    return out


def run_units(scenario_list: list["Scenario"]) -> list[list["Scenario"]]:
    """The scenarios as units of work: a group's members form one unit (run back to back for
    each proxy), every other scenario is a unit of its own. Order follows the first member."""
    units: list[list[Scenario]] = []
    by_group: dict[str, list[Scenario]] = {}
    for sc in scenario_list:
        if sc.group:
            if sc.group not in by_group:
                by_group[sc.group] = []
                units.append(by_group[sc.group])
            by_group[sc.group].append(sc)
        else:
            units.append([sc])
    return units


def round_plan(units: list[list["Scenario"]], proxies: list[str], rounds: int, key_rounds: int) -> list[tuple[int, "Scenario", str]]:
    """Every measured run as (round, scenario, proxy), in the order they run.

    Each round runs every unit once; rounds past `rounds` (up to `key_rounds`) run only the key
    scenarios. The proxies' order rotates with every round and unit so no proxy always runs
    first or last; the `direct` ceiling runs before the proxies; within a group, each proxy runs
    the members back to back, in an order that alternates every round (slow drift then favours
    neither member of a pair).
    """
    plan: list[tuple[int, Scenario, str]] = []
    for rnd in range(max(rounds, key_rounds)):
        todo = [u for u in units if rnd < rounds or all(sc.key for sc in u)]
        for i, unit in enumerate(todo):
            k = (rnd + i) % len(proxies) if proxies else 0
            order = proxies[k:] + proxies[:k]
            members = unit if rnd % 2 == 0 else unit[::-1]
            if any(sc.direct for sc in unit):
                plan += [(rnd + 1, sc, "direct") for sc in members if sc.direct]
            for proxy in order:
                plan += [(rnd + 1, sc, proxy) for sc in members]
    return plan


@dataclass
class Env:
    """Everything a run needs that does not change between runs."""

    root: Path
    tmp: Path
    tools_bin: Path
    switchyard_bin: Path | None
    pin: bool
    duration: float
    warmup: float
    idle_conns: int
    backend: procs.Service | None = None
    lua: Path = field(default_factory=Path)
    # Cores of CPU budget per proxy thread in the budget scenarios (q).
    scale_cores: float = 0.35
    scale_period_us: int = cgroup.DEFAULT_PERIOD_US
    # "per-thread": each worker thread its own group of q cores inside the proxy's n×q;
    # "shared": one group of n×q cores for all threads (see BENCHMARKS.md, "Method").
    scale_budget: str = "per-thread"
    # The budget of the run in progress (set by run_one), read by the snapshots.
    budget: cgroup.CpuBudget | None = None

    def load_cpus(self) -> set[int] | None:
        return {LOAD_CPU} if self.pin else None

    def proxy_cpus(self, threads: int, budget: bool = False) -> set[int] | None:
        return {PROXY_CPU} if self.pin and threads == 1 and not budget else None


def start_backend(env: Env) -> procs.Service:
    busy = [p for p in (*configs.HTTP_PORTS, *configs.SOCKET_PORTS, configs.FRONTEND_PORT) if not procs.port_is_free(p)]
    if busy:
        raise RuntimeError(f"ports {busy} are in use: is another benchmark (or a left-over proxy) running?")
    h = ",".join(f"127.0.0.1:{p}" for p in configs.HTTP_PORTS)
    s = ",".join(f"127.0.0.1:{p}" for p in configs.SOCKET_PORTS)
    svc = procs.Service(
        "backend",
        [str(env.tools_bin / "bench-backend"), "--http", h, "--socket", s, "--threads", "1"],
        env.tmp / "backend.log",
        cpus=env.load_cpus(),
    ).start()
    for port in configs.HTTP_PORTS + configs.SOCKET_PORTS:
        procs.wait_port(port, proc=svc.proc)
    return svc


def write_configs(env: Env, cfg: ProxyConfig) -> tuple[Path, Path]:
    """Writes (HAProxy-syntax file, nginx.conf) for `cfg`; returns their paths."""
    cfg_path = env.tmp / f"{cfg.name}.cfg"
    cfg_path.write_text(configs.haproxy_cfg(cfg))
    prefix = env.tmp / f"nginx-{cfg.name}"
    prefix.mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(configs.nginx_conf(cfg, str(prefix)))
    return cfg_path, conf


def proxy_command(env: Env, proxy: str, cfg: ProxyConfig) -> list[str]:
    cfg_path, conf = write_configs(env, cfg)
    if proxy == "haproxy":
        return ["haproxy", "-db", "-f", str(cfg_path)]
    if proxy == "nginx":
        prefix = conf.parent
        return ["nginx", "-p", str(prefix), "-e", str(prefix / "nginx-error.log"), "-c", str(conf)]
    if proxy == "switchyard":
        if env.switchyard_bin is None:
            raise RuntimeError("switchyard binary not available")
        return [str(env.switchyard_bin), "-f", str(cfg_path)]
    raise ValueError(proxy)


def start_proxy(env: Env, proxy: str, cfg: ProxyConfig, tag: str, wrap: tuple[str, ...] = (),
                budget: cgroup.CpuBudget | None = None) -> procs.Service:
    """Starts `proxy` on `cfg` (prefixed by `wrap`, e.g. valgrind) and waits until it serves.
    With a `budget`, the proxy starts inside that cgroup, unpinned."""
    deadline = time.monotonic() + 10
    while not procs.port_is_free(cfg.port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"port {cfg.port} still busy")
        time.sleep(0.05)
    svc = procs.Service(
        proxy, [*wrap, *proxy_command(env, proxy, cfg)], env.tmp / "logs" / f"{tag}.log",
        cpus=env.proxy_cpus(cfg.threads, budget is not None),
        cgroup_procs=budget.procs_file() if budget is not None else None,
    ).start()
    try:
        procs.wait_port(cfg.port, timeout=30 if wrap else 10, proc=svc.proc)
        if proxy == "nginx":
            # Wait for the workers: the master listens before it forks them.
            deadline = time.monotonic() + 5
            while len(svc.pids()) < 1 + cfg.threads and time.monotonic() < deadline:
                time.sleep(0.02)
        # Health checks (`check`) must see the servers up before traffic is fair.
        time.sleep(0.3)
    except Exception:
        svc.stop()
        raise RuntimeError(f"{proxy} did not start: {svc.log_tail()}")
    return svc


@dataclass
class Snapshot:
    wall: float
    proxy_cpu: float
    backend_cpu: float
    machine_busy: int
    proxy_threads: int
    thread_ticks: dict[int, int] = field(default_factory=dict)
    backend_wait: float = 0.0
    cpu_busy: dict[int, int] = field(default_factory=dict)
    budget_stat: dict[str, int] | None = None
    proxy_user: float = 0.0

    @staticmethod
    def take(env: Env, proxy_pids: list[int]) -> "Snapshot":
        return Snapshot(
            time.monotonic(),
            procs.cpu_seconds(proxy_pids),
            procs.cpu_seconds(env.backend.pids()) if env.backend else 0.0,
            procs.machine_ticks()[0],
            procs.thread_count(proxy_pids),
            procs.thread_ticks(proxy_pids),
            procs.wait_seconds(env.backend.pids()) if env.backend else 0.0,
            procs.cpu_busy_ticks(),
            env.budget.stat() if env.budget is not None else None,
            procs.user_seconds(proxy_pids),
        )


def proxy_bound(budget_use: float | None, busiest_thread_use: float | None, load_cpu_busy: float | None) -> bool:
    """Whether a budget-limited run measured the proxy: the load side's CPU(s) had time to
    spare, and the proxy used its budget, or (budget per thread) its busiest thread used its
    own share, which is the limit of a proxy whose threads share the work unevenly."""
    if load_cpu_busy is None or load_cpu_busy > MAX_LOAD_CPU_BUSY:
        return False
    return any(u is not None and u >= MIN_BUDGET_USE for u in (budget_use, busiest_thread_use))


def budget_fields(a: Snapshot, b: Snapshot, wall: float, proxy_cores: float, budget_cores: float,
                  load_cpus: set[int] | None, per_thread_cores: float | None = None) -> dict:
    """The checks of a budget-limited run: did the proxy use its budget (it was the bottleneck),
    and did the load side's CPU(s) have time to spare (it was not)?"""
    cpus = sorted(load_cpus) if load_cpus else sorted(b.cpu_busy)
    busy = sum(b.cpu_busy.get(c, 0) - a.cpu_busy.get(c, 0) for c in cpus) / procs.CLK_TCK
    # Capped at 100%: /proc/stat and the wall clock are not read at the very same instant.
    load_busy = min(1.0, busy / wall / len(cpus)) if wall and cpus else None
    use = proxy_cores / budget_cores if budget_cores else None
    share = procs.busiest_share(a.thread_ticks, b.thread_ticks)
    thread_use = (share * proxy_cores / per_thread_cores
                  if per_thread_cores and share is not None else None)
    out = {
        "budget_cores": budget_cores,
        "budget_use": use,
        # The busiest thread's CPU over its own budget (budget per thread only).
        "busiest_thread_use": thread_use,
        # Busy share of the CPU(s) the load side may run on (CPU 0 with --pin, else all).
        "load_cpu_busy": load_busy,
        "proxy_bound": proxy_bound(use, thread_use, load_busy),
    }
    if a.budget_stat is not None and b.budget_stat is not None:
        out.update(cgroup.throttle_delta(a.budget_stat, b.budget_stat))
    return out


def window_fields(a: Snapshot, b: Snapshot, ops: int, loadgen_cpu: float | None,
                  budget_cores: float | None = None, load_cpus: set[int] | None = None,
                  per_thread_cores: float | None = None) -> dict:
    """Per-run figures from the snapshots around the measured window."""
    wall = b.wall - a.wall
    proxy_cpu = b.proxy_cpu - a.proxy_cpu
    proxy_user = b.proxy_user - a.proxy_user
    backend_cpu = b.backend_cpu - a.backend_cpu
    busy = (b.machine_busy - a.machine_busy) / procs.CLK_TCK
    ours = proxy_cpu + backend_cpu + (loadgen_cpu or 0.0)
    extra = (budget_fields(a, b, wall, proxy_cpu / wall if wall else 0.0, budget_cores, load_cpus, per_thread_cores)
             if budget_cores else {})
    return {
        **extra,
        # How evenly the proxy's threads shared its CPU: 0.5 is even for two busy threads.
        "busiest_thread_share": procs.busiest_share(a.thread_ticks, b.thread_ticks),
        "wall_s": wall,
        # Threads of the proxy's processes (all of them, pools and helpers included), sampled at
        # the end of the window: the fairness check for `nbthread` / `worker_processes`.
        "proxy_threads": b.proxy_threads,
        "proxy_cpu_s": proxy_cpu,
        "proxy_cores": proxy_cpu / wall if wall else 0.0,
        # The user-space part of proxy_cpu_s (utime); the rest is the kernel's (stime, which
        # on this kernel also holds the softirq work done while the proxy ran).
        "proxy_user_s": proxy_user,
        # The same per operation, in µs: user space (the proxy's own code) and kernel.
        "user_us_per_op": proxy_user / ops * 1e6 if ops and proxy_cpu > 0 else None,
        "kernel_us_per_op": (proxy_cpu - proxy_user) / ops * 1e6 if ops and proxy_cpu > 0 else None,
        "ops_per_cpu_s": ops / proxy_cpu if proxy_cpu > 0 else None,
        "backend_cpu_s": backend_cpu,
        "loadgen_cpu_s": loadgen_cpu,
        "machine_busy_cores": busy / wall if wall else 0.0,
        # CPU of the load generator and the backends together: near a full core (with --pin)
        # means the load side, not the proxy, limited the request rate.
        "load_side_cores": (backend_cpu + loadgen_cpu) / wall if wall and loadgen_cpu is not None else None,
        # CPU that none of the measured processes used: kernel softirq work for loopback
        # traffic plus whatever else runs on the machine (other builds = noise).
        "foreign_cores": (busy - ours) / wall if wall and loadgen_cpu is not None else None,
    }


def parse_wrk(out: str) -> dict:
    for line in out.splitlines():
        if line.startswith("BENCHJSON "):
            return json.loads(line[len("BENCHJSON ") :])
    raise RuntimeError(f"no BENCHJSON line in wrk output: {out[-500:]!r}")


def wrk_command(env: Env, sc: Scenario, port: int, seconds: float) -> list[str]:
    # wrk takes whole seconds only.
    whole = max(1, round(seconds))
    cmd = ["wrk", "-t1", f"-c{sc.conns}", f"-d{whole}s", "--timeout", "10s", "-s", str(env.lua)]
    for h in sc.headers:
        cmd += ["-H", h]
    return cmd + [f"http://127.0.0.1:{port}{sc.path}"]


def run_wrk(env: Env, sc: Scenario, port: int, proxy_pids: list[int]) -> dict:
    if env.warmup > 0:
        procs.run_measured(wrk_command(env, sc, port, env.warmup), env.load_cpus(), env.warmup + 30)
    a = Snapshot.take(env, proxy_pids)
    rc, out, err, lg_cpu, lg_wait = procs.run_measured_waits(
        wrk_command(env, sc, port, env.duration), env.load_cpus(), env.duration + 60
    )
    b = Snapshot.take(env, proxy_pids)
    if rc != 0:
        raise RuntimeError(f"wrk exited {rc}: {err.strip()[-300:]}")
    budget_cores = env.budget.cores if env.budget is not None else None
    per_thread = (env.budget.cores / env.budget.per_thread
                  if env.budget is not None and env.budget.per_thread else None)
    w = parse_wrk(out)
    seconds = w["duration_us"] / 1e6
    errors = sum(w[k] for k in ("errors_connect", "errors_read", "errors_write", "errors_status", "errors_timeout"))
    r = {
        "ops": w["requests"],
        "ops_per_s": w["requests"] / seconds,
        "errors": errors,
        "error_detail": {k: w[k] for k in w if k.startswith("errors_") and w[k]},
        "mib_per_s": w["bytes"] / seconds / 2**20,
        **{k: w[k] for k in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us")},
    }
    r.update(window_fields(a, b, w["requests"], lg_cpu, budget_cores, env.load_cpus(), per_thread))
    if r["wall_s"]:
        # Share of the window in which wrk or the backend was runnable but had no CPU: near 0
        # means the load side always got a CPU when it wanted one.
        r["load_wait_share"] = (lg_wait + b.backend_wait - a.backend_wait) / r["wall_s"]
    return r


class _Client:
    """bench-client as a child whose JSON lines are read as they come."""

    def __init__(self, env: Env, args: list[str], timeout: float, stdin=subprocess.DEVNULL):
        self.started = time.monotonic()
        self.before = procs.resource.getrusage(procs.resource.RUSAGE_CHILDREN)
        self.proc = subprocess.Popen(
            [str(env.tools_bin / "bench-client"), *args],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=procs._affinity(env.load_cpus()),
        )
        self.timer = threading.Timer(timeout, self.proc.kill)
        self.timer.start()

    def events(self):
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                ev = json.loads(line)
                if ev.get("event") == "error":
                    raise RuntimeError(f"bench-client: {ev.get('error')}")
                yield ev

    def finish(self) -> float:
        """Waits for exit; returns the client's CPU seconds."""
        self.proc.wait()
        self.timer.cancel()
        after = procs.resource.getrusage(procs.resource.RUSAGE_CHILDREN)
        self.lifetime = time.monotonic() - self.started
        if self.proc.returncode != 0:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"bench-client exited {self.proc.returncode}: {err[-300:]}")
        return (after.ru_utime - self.before.ru_utime) + (after.ru_stime - self.before.ru_stime)


def run_client_timed(env: Env, sc: Scenario, port: int, proxy_pids: list[int]) -> dict:
    count_flag = "--sessions" if sc.kind == "eio" else "--conns"
    args = [sc.kind, "--addr", f"127.0.0.1:{port}", count_flag, str(sc.conns),
            "--warmup", f"{env.warmup:g}", "--duration", f"{env.duration:g}"]
    client = _Client(env, args, env.warmup + env.duration + 60)
    a = b = None
    result = None
    try:
        for ev in client.events():
            if ev["event"] == "measure-start":
                a = Snapshot.take(env, proxy_pids)
            elif ev["event"] == "measure-end":
                b = Snapshot.take(env, proxy_pids)
            elif ev["event"] == "result":
                result = ev
    finally:
        client_cpu = client.finish()
    if a is None or b is None or result is None:
        raise RuntimeError("bench-client ended without a measured window")
    r = {
        "ops": result["ops"],
        "ops_per_s": result["ops_per_s"],
        "errors": result["errors"],
        **{k: result[k] for k in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us")},
    }
    if result.get("first_error"):
        r["error_detail"] = {"first_error": result["first_error"]}
    # The client's CPU covers its whole life (connects and warm-up too), so it is not subtracted
    # from the machine's busy time: foreign_cores stays unknown for these scenarios.
    r.update(window_fields(a, b, result["ops"], None))
    r["loadgen_cpu_s"] = client_cpu
    # The client's average over its life (connects and warm-up included) stands in for its
    # share of the window.
    client_cores = client_cpu / client.lifetime if client.lifetime else 0.0
    r["load_side_cores"] = r["backend_cpu_s"] / r["wall_s"] + client_cores if r["wall_s"] else None
    return r


def _idle_client(env: Env, port: int, conns: int) -> _Client:
    args = ["ws-idle", "--addr", f"127.0.0.1:{port}", "--conns", str(conns)]
    return _Client(env, args, 120, stdin=subprocess.PIPE)


def _idle_round(env: Env, port: int, conns: int, on_open) -> tuple[dict, dict]:
    client = _idle_client(env, port, conns)
    opened = closed = None
    try:
        for ev in client.events():
            if ev["event"] == "open":
                opened = ev
                on_open(ev)
                assert client.proc.stdin is not None
                client.proc.stdin.write("close\n")
                client.proc.stdin.flush()
            elif ev["event"] == "closed":
                closed = ev
    finally:
        client.finish()
    if opened is None or closed is None:
        raise RuntimeError("ws-idle client did not report open and closed")
    return opened, closed


def run_ws_idle(env: Env, sc: Scenario, port: int, proxy_pids: list[int]) -> dict:
    conns = env.idle_conns
    # Warm the proxy's allocator and pools with a small batch first, so the baseline is a
    # process that has already served WebSockets.
    _idle_round(env, port, min(100, conns), lambda ev: None)
    time.sleep(1.0)
    base = procs.rss_kib(proxy_pids)
    samples: dict = {}

    def measure_open(ev: dict) -> None:
        time.sleep(2.0)
        samples["open_kib"] = procs.rss_kib(proxy_pids)

    opened, closed = _idle_round(env, port, conns, measure_open)
    time.sleep(2.0)
    after = procs.rss_kib(proxy_pids)
    n = opened["open"]
    growth = samples["open_kib"] - base
    return {
        "ops": n,
        "ops_per_s": None,
        "errors": opened["failed"] + (n - closed["closed"]),
        "error_detail": {"first_error": opened["first_error"]} if opened.get("first_error") else {},
        "open_seconds": opened["seconds"],
        "rss_base_kib": base,
        "rss_open_kib": samples["open_kib"],
        "rss_closed_kib": after,
        "bytes_per_conn": growth * 1024 / n if n else None,
        "retained_kib": after - base,
        # "Returns to baseline": at most 10% of the growth (or 1 MiB) is still held 2 s after
        # the last connection closed; allocators keep some freed memory, which is normal.
        "returned_to_baseline": (after - base) <= max(1024, 0.1 * growth),
    }


RUNNERS = {"wrk": run_wrk, "ws-echo": run_client_timed, "eio": run_client_timed, "ws-idle": run_ws_idle}


def run_one(env: Env, sc: Scenario, proxy: str, round_no: int) -> dict:
    """One measured run; never raises: failures come back as {"ok": False, "error": …}."""
    base = {"round": round_no, "scenario": sc.name, "proxy": proxy}
    svc = None
    env.budget = None
    try:
        if sc.budget and proxy != "direct":
            per_thread = sc.threads if env.scale_budget == "per-thread" else 0
            env.budget = cgroup.CpuBudget(env.scale_cores * sc.threads, env.scale_period_us, per_thread).create()
        if proxy == "direct":
            port = configs.HTTP_PORTS[0] if sc.kind == "wrk" else configs.SOCKET_PORTS[0]
            pids: list[int] = []
        else:
            cfg = ProxyConfig(sc.mode, sc.threads, fds=configs.fd_limit())
            svc = start_proxy(env, proxy, cfg, f"r{round_no}-{sc.name}-{proxy}", budget=env.budget)
            port = cfg.port
            pids = svc.pids()
            if env.budget is not None:
                env.budget.split(pids)
                base["budget_layout"] = env.budget.layout
                base["budget_mode"] = env.scale_budget
        r = RUNNERS[sc.kind](env, sc, port, pids)
        if svc is not None and not svc.alive():
            raise RuntimeError(f"{proxy} died during the run: {svc.log_tail()}")
        return {**base, "ok": True, **r}
    except Exception as e:  # noqa: BLE001 - a failed run is a result, not a crash of the harness
        return {**base, "ok": False, "error": str(e)[-600:]}
    finally:
        if svc is not None:
            svc.stop()
        if env.budget is not None:
            env.budget.remove()
            env.budget = None
