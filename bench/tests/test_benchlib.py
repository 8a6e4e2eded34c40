"""Unit tests of the harness's pure parts: configs, /proc parsing, medians, ratios, report.

Run: python3 -m unittest discover -s bench/tests
No timing is asserted anywhere: benchmarks are not tests.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import configs, procs, report  # noqa: E402
from benchlib.configs import ProxyConfig  # noqa: E402


class ConfigTests(unittest.TestCase):
    def test_modes_differ_only_in_connection_options(self):
        ka = configs.haproxy_cfg(ProxyConfig("keep-alive", 1))
        seed = configs.haproxy_cfg(ProxyConfig("seed", 2))
        self.assertIn("option http-keep-alive", ka)
        self.assertNotIn("httpclose", ka)
        for line in ("option http-server-close", "option http-pretend-keepalive", "option httpclose", "nbthread 2"):
            self.assertIn(line, seed)
        for cfg in (ka, seed):
            self.assertIn("cookie SRVNAME insert", cfg)
            self.assertIn("use_backend socket-servers if is_engineio", cfg)
            self.assertIn(f"bind 127.0.0.1:{configs.FRONTEND_PORT}", cfg)

    def test_nginx_keepalive_only_in_keepalive_mode(self):
        ka = configs.nginx_conf(ProxyConfig("keep-alive", 2), "/tmp/x")
        seed = configs.nginx_conf(ProxyConfig("seed", 1), "/tmp/x")
        self.assertIn("keepalive 1024;", ka)
        self.assertIn("worker_processes 2;", ka)
        self.assertNotIn("keepalive 1024;", seed)
        self.assertIn('proxy_set_header Connection "";', ka)
        self.assertIn("proxy_set_header Connection close;", seed)

    def test_limits_fit_descriptors(self):
        maxconn, worker_connections = configs.connection_limits(20000)
        self.assertLessEqual(maxconn * 2 + 50, 20000)
        self.assertLessEqual(worker_connections, 20000)
        self.assertGreaterEqual(maxconn, 5000 + 100)  # room for the idle-WebSocket scenario

    def test_unknown_mode_rejected(self):
        with self.assertRaises(ValueError):
            configs.haproxy_cfg(ProxyConfig("tcp", 1))

    @unittest.skipUnless(shutil.which("haproxy"), "haproxy not installed")
    def test_haproxy_accepts_generated_files(self):
        with tempfile.TemporaryDirectory() as d:
            for mode in configs.MODES:
                for threads in (1, 2):
                    path = Path(d) / f"{mode}.cfg"
                    path.write_text(configs.haproxy_cfg(ProxyConfig(mode, threads)))
                    r = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True)
                    self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    @unittest.skipUnless(shutil.which("nginx"), "nginx not installed")
    def test_nginx_accepts_generated_files(self):
        with tempfile.TemporaryDirectory() as d:
            for mode in configs.MODES:
                conf = Path(d) / "nginx.conf"
                conf.write_text(configs.nginx_conf(ProxyConfig(mode, 1), d))
                r = subprocess.run(["nginx", "-t", "-p", d, "-e", f"{d}/e.log", "-c", str(conf)],
                                   capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class ProcParsingTests(unittest.TestCase):
    def test_stat_cpu_ticks_with_spaces_in_name(self):
        line = "1234 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0"
        self.assertEqual(procs.parse_stat_cpu_ticks(line), 300)

    def test_proc_stat_busy_excludes_idle_and_iowait(self):
        text = "cpu  100 5 50 1000 20 1 4 0 0 0\ncpu0 1 1 1 1 1 1 1 1 1 1\n"
        self.assertEqual(procs.parse_proc_stat_cpu(text), (160, 1180))

    def test_vmrss(self):
        self.assertEqual(procs.parse_status_rss_kib("Name:\tx\nVmRSS:\t  4321 kB\n"), 4321)
        self.assertEqual(procs.parse_status_rss_kib("Name:\tzombie\n"), 0)

    def test_own_process_is_measurable(self):
        import os

        self.assertGreater(procs.rss_kib([os.getpid()]), 0)
        self.assertGreaterEqual(procs.cpu_seconds([os.getpid()]), 0)
        self.assertIn(os.getpid(), procs.descendants(os.getpid()))


def fake(scenario, proxy, rnd, ops_per_s, cpu_eff, p99, ok=True, **extra):
    r = {"round": rnd, "scenario": scenario, "proxy": proxy, "ok": ok}
    if ok:
        r.update(ops=int(ops_per_s * 5), ops_per_s=ops_per_s, ops_per_cpu_s=cpu_eff, p50_us=p99 / 4,
                 p90_us=p99 / 2, p99_us=p99, p999_us=p99 * 2, errors=0, proxy_cores=1.0, **extra)
    else:
        r["error"] = "boom | bad"
    return r


def fake_data(results, proxies=("haproxy", "nginx", "switchyard")):
    return {
        "started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T00:10:00+00:00",
        "command": "python3 bench/run.py", "settings": {"rounds": 3, "duration_s": 5, "warmup_s": 1,
                                                       "idle_conns": 5000, "pin": True, "quick": False},
        "machine": {"cpus": 2, "cpu_model": "x", "kernel": "k", "memory_gib": 1,
                    "loadavg_before": [0, 0, 0], "loadavg_after": [0, 0, 0]},
        "versions": {"haproxy": "h", "nginx": "n", "wrk": "w", "rustc": "r", "switchyard": "not run (build failed)"},
        "proxies": list(proxies), "scenarios": sorted({r["scenario"] for r in results}), "results": results,
    }


class ReportTests(unittest.TestCase):
    def test_medians_spread_and_failures(self):
        rs = [fake("ka64", "haproxy", i, v, v * 2, 1000) for i, v in enumerate((100, 300, 200))]
        rs.append(fake("ka64", "haproxy", 4, 0, 0, 0, ok=False))
        a = report.aggregate(rs)[("ka64", "haproxy")]
        self.assertEqual(a["ops_per_s"], 200)
        self.assertEqual(a["ops_per_cpu_s"], 400)
        self.assertEqual((a["runs"], a["failed"]), (3, 1))
        self.assertAlmostEqual(a["spread"], 1.0)

    def test_goals(self):
        rs = [
            fake("ka64", "haproxy", 1, 100, 100, 1000), fake("ka64", "nginx", 1, 90, 110, 1100),
            fake("ka64", "switchyard", 1, 120, 130, 900), fake("seed", "haproxy", 1, 50, 50, 2000),
            fake("seed", "switchyard", 1, 60, 54, 2000), fake("ka64-2t", "switchyard", 1, 210, 110, 900),
            {"round": 1, "scenario": "ws-idle", "proxy": "switchyard", "ok": True, "ops": 5000, "ops_per_s": None,
             "errors": 0, "bytes_per_conn": 3000.0, "returned_to_baseline": True},
        ]
        statuses = [g["status"] for g in report.goals(report.aggregate(rs))]
        # ka64 CPU 1.3x HAProxy and > nginx: met; rps/p99: met; seed 1.08x: not met; ws-idle: met; 2t 1.75x: met.
        self.assertEqual(statuses, ["met", "met", "not met", "met", "met"])

    def test_markdown_marks_missing_and_failed_proxies(self):
        rs = [fake("ka64", "haproxy", 1, 100, 100, 1000), fake("ka64", "nginx", 1, 0, 0, 0, ok=False)]
        data = fake_data(rs)
        md = report.markdown_section(data, report.aggregate(rs), [], Path("."))
        self.assertIn("| switchyard | not run: not run (build failed) |", md)
        self.assertIn("| nginx | failed: boom / bad |", md)
        self.assertIn("| HAProxy | 100 | 1.00x |", md)
        self.assertTrue(md.startswith(report.BEGIN) and md.rstrip().endswith(report.END))

    def test_replace_section_keeps_hand_written_parts(self):
        doc = f"# T\n\nintro\n\n{report.BEGIN}\nold\n{report.END}\n\n## Hand written\nkeep\n"
        out = report.replace_section(doc, f"{report.BEGIN}\nnew\n{report.END}\n")
        self.assertIn("intro", out)
        self.assertIn("new", out)
        self.assertNotIn("old", out)
        self.assertIn("## Hand written\nkeep", out)
        self.assertIn("new", report.replace_section("# T\n", f"{report.BEGIN}\nnew\n{report.END}\n"))

    def test_write_all_renders_json_markdown_and_charts(self):
        rs = [fake(s, p, 1, 100 + i, 200 + i, 1000 + i) for i, p in enumerate(("haproxy", "nginx", "switchyard"))
              for s in ("ka64", "seed")]
        with tempfile.TemporaryDirectory() as d:
            md = Path(d) / "B.md"
            report.write_all(fake_data(rs), Path(d) / "out", md)
            self.assertTrue((Path(d) / "out" / "results.json").exists())
            text = md.read_text()
            self.assertIn("### `seed`", text)
            try:
                import matplotlib  # noqa: F401
            except ImportError:
                self.assertIn("not drawn", text)
            else:
                self.assertTrue((Path(d) / "out" / "throughput.png").exists())
                self.assertIn("](out/throughput.png)", text)


class ProfileParsingTests(unittest.TestCase):
    def test_strace_and_perf_tables(self):
        import importlib.util

        spec = importlib.util.spec_from_file_location("bench_profile", Path(__file__).parent.parent / "profile.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        strace = """% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 60.00    0.600000           5    120000           sendto
 40.00    0.400000           4     80000      1000 recvfrom
------ ----------- ----------- --------- --------- ----------------
100.00    1.000000           5    200000      1000 total
"""
        self.assertEqual(mod.parse_strace_summary(strace), {"sendto": 120000, "recvfrom": 80000})
        perf = """# Overhead  Shared Object      Symbol
     8.60%  [kernel.kallsyms]  [k] _raw_spin_unlock_irqrestore      -      -
     1.50%  switchyard         [.] switchyard::proxy::forward::handle::{{closure}}
"""
        self.assertEqual(mod.parse_perf_report(perf, 5), [
            (8.6, "[kernel.kallsyms]", "_raw_spin_unlock_irqrestore"),
            (1.5, "switchyard", "switchyard::proxy::forward::handle::{{closure}}"),
        ])


if __name__ == "__main__":
    unittest.main()
