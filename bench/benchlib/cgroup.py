"""A fixed CPU budget for a proxy: a cgroup (v1 `cpu` controller, or v2) with a CFS quota.

The scaling scenarios give a one-thread proxy `q` cores and a two-thread proxy `2q` cores
(cpu.cfs_quota_us / cpu.cfs_period_us), so the proxy, not the load generator, is what limits
the request rate even on a 2-core machine. The proxy is not pinned: its threads may run on any
CPU of the (root) cpuset. See BENCHMARKS.md, "Method", for what this does and does not emulate.

Every group is created under the `cpu` hierarchy as `switchyard-bench-<pid>-<n>` and removed
when the proxy has stopped; groups left by a killed run (their pid no longer exists) are removed
on the next start.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

V1_ROOT = Path("/sys/fs/cgroup/cpu")
V2_ROOT = Path("/sys/fs/cgroup")
PREFIX = "switchyard-bench-"
# 10 ms: the budget is handed out in small pieces, so a throttled proxy stalls for at most a
# few milliseconds at a time (the kernel's default period, 100 ms, stalls it for up to 65 ms at
# 0.35 cores). Not shorter: every period costs the kernel a timer and a refill, and the quota of
# a period must stay well above the per-CPU slice (sched_cfs_bandwidth_slice_us, 5 ms).
DEFAULT_PERIOD_US = 10_000


def parse_cpu_stat(text: str) -> dict[str, int]:
    """The `key value` lines of a cgroup's cpu.stat (v1: nr_periods, nr_throttled,
    throttled_time in ns; v2 adds usage_usec and names the throttled time throttled_usec)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def throttle_delta(before: dict[str, int], after: dict[str, int]) -> dict:
    """Periods, throttled periods and throttled seconds between two cpu.stat readings."""
    periods = after.get("nr_periods", 0) - before.get("nr_periods", 0)
    throttled = after.get("nr_throttled", 0) - before.get("nr_throttled", 0)
    if "throttled_time" in after:  # v1: nanoseconds
        secs = (after["throttled_time"] - before.get("throttled_time", 0)) / 1e9
    else:  # v2: microseconds
        secs = (after.get("throttled_usec", 0) - before.get("throttled_usec", 0)) / 1e6
    return {
        "cg_periods": periods,
        "cg_throttled_periods": throttled,
        "cg_throttled_share": throttled / periods if periods > 0 else None,
        "cg_throttled_s": secs,
    }


def quota_line(cores: float, period_us: int) -> tuple[int, int]:
    """(quota_us, period_us) for `cores` CPUs; the kernel refuses quotas below 1 ms."""
    if cores <= 0:
        raise ValueError("a CPU budget must be positive")
    return max(1000, round(cores * period_us)), period_us


def _root() -> tuple[Path, int] | None:
    """(hierarchy root, cgroup version) of a usable `cpu` controller, or None."""
    if (V1_ROOT / "cpu.cfs_quota_us").exists() or (V1_ROOT / "tasks").exists():
        return V1_ROOT, 1
    ctl = V2_ROOT / "cgroup.controllers"
    if ctl.exists() and "cpu" in ctl.read_text().split():
        return V2_ROOT, 2
    return None


def unavailable_reason() -> str | None:
    """Why no CPU budget can be set here (None when it can)."""
    found = _root()
    if found is None:
        return "no cgroup cpu controller (neither /sys/fs/cgroup/cpu nor cgroup v2 with cpu)"
    root, _ = found
    if not os.access(root, os.W_OK):
        return f"{root} is not writable (the scaling scenarios need root)"
    return None


def _cleanup_stale(root: Path) -> None:
    for d in root.glob(PREFIX + "*"):
        m = re.match(re.escape(PREFIX) + r"(\d+)-", d.name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            for g in [*d.glob("t*"), d]:
                try:
                    g.rmdir()
                except OSError:
                    pass


def worker_threads(tree: dict[int, list[int]], threads: dict[int, list[int]]) -> list[int]:
    """The thread ids that do a proxy's work: every thread of every process that has no child
    process (so nginx's master, which only manages its workers, is left out), in pid then tid
    order. `tree` maps each pid of the proxy to its child pids, `threads` each pid to its tids."""
    out: list[int] = []
    for pid in sorted(threads):
        if not tree.get(pid):
            out.extend(sorted(threads[pid]))
    return out


def assign(tids: list[int], groups: int) -> list[list[int]]:
    """Spreads `tids` over `groups` groups in turn (thread i to group i mod groups)."""
    out: list[list[int]] = [[] for _ in range(groups)]
    for i, t in enumerate(tids):
        out[i % groups].append(t)
    return out


def _write_limit(path: Path, version: int, quota_us: int, period_us: int) -> None:
    if version == 1:
        (path / "cpu.cfs_period_us").write_text(str(period_us))
        (path / "cpu.cfs_quota_us").write_text(str(quota_us))
        burst = path / "cpu.cfs_burst_us"
        if burst.exists():
            burst.write_text("0")
    else:
        (path / "cpu.max").write_text(f"{quota_us} {period_us}")


class CpuBudget:
    """A cgroup with `cores` CPUs of quota for one proxy run.

    With `per_thread` > 0 (cgroup v1 only, where the threads of one process may sit in
    different groups), `split` then moves the proxy's worker threads into that many child
    groups of `cores / per_thread` each: every thread gets at most its own share, as on a
    machine with one core per thread, and the parent keeps the whole proxy within `cores`.
    """

    _seq = 0

    def __init__(self, cores: float, period_us: int = DEFAULT_PERIOD_US, per_thread: int = 0):
        found = _root()
        if found is None:
            raise RuntimeError(unavailable_reason())
        self.root, self.version = found
        if per_thread and self.version != 1:
            raise RuntimeError("a budget per thread needs cgroup v1 (use --scale-budget shared)")
        _cleanup_stale(self.root)
        CpuBudget._seq += 1
        self.path = self.root / f"{PREFIX}{os.getpid()}-{CpuBudget._seq}"
        self.cores = cores
        self.per_thread = per_thread
        self.quota_us, self.period_us = quota_line(cores, period_us)
        self.children: list[Path] = []
        # Worker threads per child group once split (the report shows it: 1 each is intended).
        self.layout: list[int] = []

    def create(self) -> "CpuBudget":
        """Creates the group (and the child groups); on failure removes what it made and raises."""
        self.path.mkdir()
        try:
            _write_limit(self.path, self.version, self.quota_us, self.period_us)
            for i in range(self.per_thread):
                child = self.path / f"t{i}"
                child.mkdir()
                self.children.append(child)
                q, per = quota_line(self.cores / self.per_thread, self.period_us)
                _write_limit(child, self.version, q, per)
        except OSError as e:
            self.remove()
            raise RuntimeError(f"cannot set a CPU budget in {self.path}: {e}") from e
        return self

    def split(self, pids: list[int]) -> None:
        """Moves the worker threads of `pids` (the proxy's process tree) into the child groups.
        Threads the proxy starts later inherit the group of the thread that starts them."""
        if not self.children:
            return
        tree: dict[int, list[int]] = {}
        threads: dict[int, list[int]] = {}
        for pid in pids:
            try:
                tasks = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
            except OSError:
                continue
            threads[pid] = tasks
            kids: list[int] = []
            for t in tasks:
                try:
                    kids += [int(c) for c in Path(f"/proc/{pid}/task/{t}/children").read_text().split()]
                except OSError:
                    pass
            tree[pid] = kids
        groups = assign(worker_threads(tree, threads), len(self.children))
        for child, tids in zip(self.children, groups):
            for tid in tids:
                try:
                    (child / "tasks").write_text(str(tid))
                except OSError:
                    pass  # the thread ended meanwhile
        self.layout = [len(g) for g in groups]

    def procs_file(self) -> Path:
        """Write a pid here (in the child, before exec) to move that process in."""
        return self.path / "cgroup.procs"

    def stat(self) -> dict[str, int]:
        """cpu.stat summed over the groups that throttle the threads: the child groups when
        split per thread, else the group itself."""
        total: dict[str, int] = {}
        for g in self.children or [self.path]:
            try:
                for k, v in parse_cpu_stat((g / "cpu.stat").read_text()).items():
                    total[k] = total.get(k, 0) + v
            except OSError:
                pass
        return total

    def remove(self) -> None:
        """Removes the groups; their processes must have exited (waits up to 2 s for that)."""
        import time

        for g in [*self.children, self.path]:
            deadline = time.monotonic() + 2
            while True:
                try:
                    g.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)

    def __enter__(self) -> "CpuBudget":
        return self.create()

    def __exit__(self, *exc) -> None:
        self.remove()
