"""PNG charts of a run (matplotlib; skipped with a note in the report when it is missing)."""

from __future__ import annotations

from pathlib import Path

from .scenarios import BY_NAME

COLORS = {"haproxy": "#1f77b4", "nginx": "#2ca02c", "switchyard": "#d62728"}
NAMES = {"haproxy": "HAProxy", "nginx": "nginx", "switchyard": "switchyard"}


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        return plt
    except ImportError:
        return None


def _ratio_chart(plt, data: dict, agg: dict, metric: str, title: str, path: Path) -> Path | None:
    names = [s for s in data["scenarios"] if s != "ws-idle"]
    proxies = [p for p in data["proxies"] if any((s, p) in agg and agg[(s, p)]["runs"] for s in names)]
    if not names or not proxies:
        return None
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(names) + 2), 4.8))
    width = 0.8 / len(proxies)
    for i, p in enumerate(proxies):
        xs, ys, labels = [], [], []
        for j, s in enumerate(names):
            v = agg.get((s, p), {}).get(metric)
            base = agg.get((s, "haproxy"), {}).get(metric)
            if v is None or not base:
                continue
            xs.append(j + (i - (len(proxies) - 1) / 2) * width)
            ys.append(v / base)
            labels.append(f"{v:,.0f}")
        bars = ax.bar(xs, ys, width, label=NAMES.get(p, p), color=COLORS.get(p))
        for b, lab in zip(bars, labels):
            ax.text(b.get_x() + b.get_width() / 2, b.get_height(), lab, ha="center", va="bottom",
                    fontsize=6, rotation=90)
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=20)
    ax.set_ylabel("ratio to HAProxy (absolute value on each bar)")
    ax.set_title(title)
    ax.legend()
    ax.set_ylim(0, ax.get_ylim()[1] * 1.15)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _latency_chart(plt, data: dict, agg: dict, path: Path) -> Path | None:
    # Budget-limited runs are left out: their percentiles are mostly the throttling's stalls.
    names = [s for s in data["scenarios"] if s not in ("ws-idle", "body1m")
             and not (s in BY_NAME and BY_NAME[s].budget)
             and any(agg.get((s, p), {}).get("p99_us") for p in data["proxies"])]
    if not names:
        return None
    cols = min(3, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    pcts = [("p50_us", "p50"), ("p90_us", "p90"), ("p99_us", "p99"), ("p999_us", "p99.9")]
    for k, s in enumerate(names):
        ax = axes[k // cols][k % cols]
        proxies = [p for p in data["proxies"] if agg.get((s, p), {}).get("p99_us")]
        width = 0.8 / max(1, len(proxies))
        for i, p in enumerate(proxies):
            ys = [(agg[(s, p)].get(m) or 0) / 1000 for m, _ in pcts]
            xs = [j + (i - (len(proxies) - 1) / 2) * width for j in range(len(pcts))]
            ax.bar(xs, ys, width, label=NAMES.get(p, p), color=COLORS.get(p))
        ax.set_xticks(range(len(pcts)))
        ax.set_xticklabels([lab for _, lab in pcts])
        ax.set_yscale("log")
        ax.set_title(s, fontsize=10)
        ax.set_ylabel("ms")
        if k == 0:
            ax.legend(fontsize=7)
    for k in range(len(names), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle("Latency percentiles (lower is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _memory_chart(plt, data: dict, agg: dict, path: Path) -> Path | None:
    proxies = [p for p in data["proxies"] if agg.get(("ws-idle", p), {}).get("bytes_per_conn") is not None]
    if not proxies:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    ys = [agg[("ws-idle", p)]["bytes_per_conn"] for p in proxies]
    bars = ax.bar([NAMES.get(p, p) for p in proxies], ys, color=[COLORS.get(p) for p in proxies])
    for b, y in zip(bars, ys):
        ax.text(b.get_x() + b.get_width() / 2, y, f"{y:,.0f}", ha="center", va="bottom", fontsize=8)
    ax.axhline(4096, color="grey", linestyle="--", linewidth=0.8, label="goal: 4 KiB")
    ax.set_ylabel("proxy RSS growth per idle WebSocket (bytes)")
    ax.set_title("Idle WebSockets: memory per connection (lower is better)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw(data: dict, agg: dict, out_dir: Path) -> list[Path]:
    plt = _pyplot()
    if plt is None:
        return []
    made = [
        _ratio_chart(plt, data, agg, "ops_per_s", "Throughput per scenario, relative to HAProxy (higher is better)",
                     out_dir / "throughput.png"),
        _ratio_chart(plt, data, agg, "ops_per_cpu_s",
                     "Requests per proxy CPU-second, relative to HAProxy (higher is better)",
                     out_dir / "cpu-efficiency.png"),
        _latency_chart(plt, data, agg, out_dir / "latency.png"),
        _memory_chart(plt, data, agg, out_dir / "memory.png"),
    ]
    return [p for p in made if p is not None]
