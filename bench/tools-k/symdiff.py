#!/usr/bin/env python3
"""Kernel symbols' µs per request: mean over rounds per proxy, sorted by difference (helper K).

    python3 bench/tools-k/symdiff.py /tmp/k-rec1.json [a b] [--top 40]
"""
import json
import sys

rows = json.load(open(sys.argv[1]))
names = sys.argv[2:4] if len(sys.argv) >= 4 else sorted({r["proxy"] for r in rows}, key=lambda n: n == "haproxy")
top = 40
per = {}
for n in names:
    rs = [r for r in rows if r["proxy"] == n and "syms" in r]
    agg = {}
    for r in rs:
        for k, v in r["syms"].items():
            agg[k] = agg.get(k, 0.0) + v / len(rs)
    per[n] = agg
    print(f"{n}: {len(rs)} runs, kernel {sum(v for k, v in agg.items() if k.startswith('k ')):.2f} µs/req, "
          f"user {sum(v for k, v in agg.items() if k.startswith('u ')):.2f} µs/req, "
          f"cpu_us_req {sum(r['cpu_us_req'] for r in rs) / len(rs):.2f}")
a, b = names
keys = set(per[a]) | set(per[b])
diff = sorted(((per[a].get(k, 0) - per[b].get(k, 0), k) for k in keys if k.startswith("k ")), reverse=True)
print(f"\nkernel symbols, µs/request: {a} - {b} (largest first)")
for d, k in diff[:top]:
    print(f"{d:+7.3f}  {per[a].get(k, 0):6.3f} {per[b].get(k, 0):6.3f}  {k}")
print("...")
for d, k in diff[-15:]:
    print(f"{d:+7.3f}  {per[a].get(k, 0):6.3f} {per[b].get(k, 0):6.3f}  {k}")
