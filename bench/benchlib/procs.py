"""Processes under measurement: start, wait for readiness, CPU time, RSS, stop.

CPU time is read from /proc/<pid>/stat (utime + stime, which cover every thread of the process)
for the process and all its descendants, so nginx's master + workers count together. Child
processes that exit during a run are not counted (none of ours do).
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def parse_stat_cpu_ticks(stat_line: str) -> int:
    """utime + stime (clock ticks) from the text of a /proc/<pid>/stat file."""
    user, system = parse_stat_user_system_ticks(stat_line)
    return user + system


def parse_stat_user_system_ticks(stat_line: str) -> tuple[int, int]:
    """(utime, stime) in clock ticks from the text of a /proc/<pid>/stat file."""
    rest = stat_line[stat_line.rindex(")") + 2 :].split()
    return int(rest[11]), int(rest[12])


def descendants(pid: int) -> list[int]:
    """`pid` and all its live descendants (via /proc/<pid>/task/*/children)."""
    out = [pid]
    i = 0
    while i < len(out):
        p = out[i]
        i += 1
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                try:
                    out.extend(int(c) for c in (task / "children").read_text().split())
                except OSError:
                    pass
        except OSError:
            pass
    return out


def _sum_over(pids: list[int], read) -> int:
    """Sum of `read(pid)` over the processes that still exist."""
    total = 0
    for pid in pids:
        try:
            total += read(pid)
        except OSError:
            pass
    return total


def cpu_seconds(pids: list[int]) -> float:
    """Sum of utime + stime, in seconds, of the given live processes."""
    return _sum_over(pids, lambda p: parse_stat_cpu_ticks(Path(f"/proc/{p}/stat").read_text())) / CLK_TCK


def user_seconds(pids: list[int]) -> float:
    """Sum of utime alone (user space), in seconds, of the given live processes."""
    return _sum_over(
        pids, lambda p: parse_stat_user_system_ticks(Path(f"/proc/{p}/stat").read_text())[0]
    ) / CLK_TCK


def parse_status_field(status_text: str, name: str) -> int:
    """The first number of field `name` (e.g. "VmRSS", "Threads") of a /proc/<pid>/status text."""
    for line in status_text.splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


def parse_status_rss_kib(status_text: str) -> int:
    return parse_status_field(status_text, "VmRSS")


def rss_kib(pids: list[int]) -> int:
    """Sum of VmRSS (KiB) of the given live processes."""
    return _sum_over(pids, lambda p: parse_status_rss_kib(Path(f"/proc/{p}/status").read_text()))


def thread_count(pids: list[int]) -> int:
    """Sum of the thread counts of the given live processes."""
    return _sum_over(pids, lambda p: parse_status_field(Path(f"/proc/{p}/status").read_text(), "Threads"))


def parse_proc_stat_cpu(text: str) -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs from the text of /proc/stat."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            v = [int(x) for x in line.split()[1:]]
            # user nice system idle iowait irq softirq steal guest guest_nice; guest time is
            # already inside user/nice.
            total = sum(v[:8])
            idle = v[3] + v[4]
            return total - idle, total
    raise ValueError("no cpu line in /proc/stat")


def machine_ticks() -> tuple[int, int]:
    return parse_proc_stat_cpu(Path("/proc/stat").read_text())


def parse_proc_stat_per_cpu(text: str) -> dict[int, int]:
    """CPU number -> busy clock ticks (all but idle and iowait) from the text of /proc/stat."""
    out: dict[int, int] = {}
    for line in text.splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *vals = line.split()
            v = [int(x) for x in vals]
            out[int(name[3:])] = sum(v[:8]) - v[3] - v[4]
    return out


def cpu_busy_ticks() -> dict[int, int]:
    return parse_proc_stat_per_cpu(Path("/proc/stat").read_text())


def per_thread(pids: list[int], file: str, parse) -> dict[int, int]:
    """Thread id -> `parse(text of /proc/<pid>/task/<tid>/<file>)` for every thread of the given
    live processes (threads that end meanwhile are left out)."""
    out: dict[int, int] = {}
    for pid in pids:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                out[int(task.name)] = parse((task / file).read_text())
            except (OSError, ValueError):
                pass
    return out


def thread_ticks(pids: list[int]) -> dict[int, int]:
    """Thread id -> utime + stime (clock ticks) of every thread of the given live processes,
    so a window's CPU can be split per thread (how evenly a proxy's threads shared the work)."""
    return per_thread(pids, "stat", parse_stat_cpu_ticks)


def busiest_share(before: dict[int, int], after: dict[int, int]) -> float | None:
    """The busiest thread's part of the CPU all threads used between two `thread_ticks`
    readings (1/n when n threads shared it evenly, 1.0 when one thread did everything)."""
    deltas = [after[t] - before.get(t, 0) for t in after]
    total = sum(d for d in deltas if d > 0)
    return max(deltas) / total if total > 0 else None


def wait_port(port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    """Waits until 127.0.0.1:`port` accepts a TCP connection (or raises)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with status {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listening on port {port} after {timeout}s")
            time.sleep(0.02)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def exclusive_run(path: str = "/tmp/switchyard-bench.lock"):
    """Holds a machine-wide lock so two benchmark runs never share the ports or the CPUs.

    Returns the open lock file (keep it referenced for the duration of the run); waits, saying
    so, while another run holds it.
    """
    import fcntl

    lock = open(path, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("another benchmark run holds the lock; waiting for it to finish ...", flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def _affinity(cpus: set[int] | None, cgroup_procs: Path | None = None):
    """The child's set-up before exec: join a cgroup (by writing its own pid to the group's
    cgroup.procs) and/or restrict it to `cpus`."""
    if not cpus and cgroup_procs is None:
        return None

    def apply() -> None:
        if cgroup_procs is not None:
            with open(cgroup_procs, "w") as f:
                f.write(str(os.getpid()))
        if cpus:
            os.sched_setaffinity(0, cpus)

    return apply


@dataclass
class Service:
    """A long-running process we started (its own session, so its whole group can be stopped)."""

    name: str
    cmd: list[str]
    log_path: Path
    cpus: set[int] | None = None
    # cgroup.procs of a group to start in (a CPU budget); children inherit it.
    cgroup_procs: Path | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def start(self, stdout=None) -> "Service":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.cmd,
            stdin=subprocess.DEVNULL,
            stdout=stdout if stdout is not None else log,
            stderr=log,
            start_new_session=True,
            preexec_fn=_affinity(self.cpus, self.cgroup_procs),
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def pids(self) -> list[int]:
        return descendants(self.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after `timeout`."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout)
        # Members of the group that outlive the leader (nginx workers) are killed too.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def parse_schedstat_wait_ns(text: str) -> int:
    """Time spent runnable but waiting for a CPU (ns): the second field of /proc/.../schedstat."""
    parts = text.split()
    return int(parts[1]) if len(parts) >= 2 else 0


def wait_seconds(pids: list[int]) -> float:
    """Seconds the threads of the given live processes spent waiting on a run queue for a CPU."""
    return sum(per_thread(pids, "schedstat", parse_schedstat_wait_ns).values()) / 1e9


def run_measured(cmd: list[str], cpus: set[int] | None, timeout: float) -> tuple[int, str, str, float]:
    """Runs a load generator to completion: (status, stdout, stderr, its CPU seconds)."""
    rc, out, err, cpu, _ = run_measured_waits(cmd, cpus, timeout)
    return rc, out, err, cpu


def run_measured_waits(cmd: list[str], cpus: set[int] | None, timeout: float) -> tuple[int, str, str, float, float]:
    """`run_measured` plus the seconds the load generator waited for a CPU (run-queue delay),
    sampled every 50 ms while it runs (the last sample misses at most its final 50 ms).

    The load generator's CPU time is the growth of this process's reaped-children rusage across
    the call; nothing else of ours is reaped meanwhile (services are stopped between runs).
    """
    import threading

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_affinity(cpus),
    )
    result: dict = {}

    def talk() -> None:
        try:
            result["io"] = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            result["io"] = proc.communicate()

    reader = threading.Thread(target=talk, daemon=True)
    reader.start()
    waited = 0.0
    while reader.is_alive():
        w = wait_seconds([proc.pid])
        if w > 0:
            waited = w
        reader.join(0.05)
    out, err = result["io"]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"), cpu, waited
