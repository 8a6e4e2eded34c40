"""What the run ran on: machine and versions, for the report."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path


def _first_line(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"
    text = (r.stdout or r.stderr).strip()
    return text.splitlines()[0] if text else "unavailable"


def describe(loadavg_before: tuple[float, float, float]) -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "loadavg_before": [round(x, 2) for x in loadavg_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def versions(switchyard_bin: Path | None, switchyard_note: str, root: Path) -> dict:
    commit = _first_line(["git", "-C", str(root), "rev-parse", "--short", "HEAD"])
    dirty = _first_line(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"])
    return {
        "haproxy": _first_line(["haproxy", "-v"]),
        "nginx": _first_line(["nginx", "-v"]),
        "wrk": _first_line(["wrk", "-v"]),
        "rustc": _first_line(["rustc", "-V"]),
        "switchyard": switchyard_label(switchyard_bin, switchyard_note, commit, dirty),
    }


def switchyard_label(binary: Path | None, note: str, head: str, dirty: str) -> str:
    """What was measured: a pristine commit, the working tree at HEAD (+ changes), or a binary."""
    if binary is None:
        return f"not run ({note})"
    if note.startswith("working tree"):
        changes = " plus uncommitted changes" if dirty and dirty != "unavailable" else ""
        return f"working tree at {head}{changes}{note[len('working tree'):]}"
    return note
