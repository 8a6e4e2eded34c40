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

from benchlib import cgroup, configs, procs, report, scenarios  # noqa: E402
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
        self.assertEqual(procs.parse_stat_user_system_ticks(line), (250, 50))

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

    def test_per_round_ratios_and_their_median(self):
        # HAProxy drifts down over the rounds; switchyard follows it at 1.2x, 1.3x and 1.1x.
        hp = (100, 80, 60)
        sy = (120, 104, 66)
        rs = [fake("ka64", "haproxy", i + 1, 1, v, 1000) for i, v in enumerate(hp)]
        rs += [fake("ka64", "switchyard", i + 1, 1, v, 1000) for i, v in enumerate(sy)]
        rs.append(fake("ka64", "switchyard", 4, 1, 500, 1000))  # no HAProxy run in round 4: unpaired
        per = report.paired_ratios(rs, ("ka64", "switchyard"), ("ka64", "haproxy"), "ops_per_cpu_s")
        self.assertEqual(list(per), [1, 2, 3])
        self.assertAlmostEqual(per[2], 1.3)
        r = report.vs_haproxy(report.aggregate(rs), rs, "ka64", "ops_per_cpu_s", 1.25)
        self.assertAlmostEqual(r["median"], 1.2)
        # Ratio of medians: median(120, 104, 66, 500) / median(100, 80, 60) = 112 / 80.
        self.assertAlmostEqual(r["of_medians"], 1.4)
        self.assertEqual((r["rounds"], r["rounds_met"]), (3, 1))
        text = report._ratio_text(r, " HAProxy")
        self.assertIn("1.20x HAProxy (rounds 1.20, 1.30, 1.10: 1 of 3 met; ratio of medians 1.40x)", text)

    def test_scaling_counts_only_proxy_bound_rounds(self):
        def run(sc, p, rnd, rps, bound):
            return fake(sc, p, rnd, rps, rps * 3, 1000, proxy_bound=bound, budget_use=0.95 if bound else 0.5,
                        load_cpu_busy=0.6 if bound else 0.99, budget_cores=0.35)
        rs = [run("scale-1t", "switchyard", 1, 100, True), run("scale-2t", "switchyard", 1, 190, True),
              run("scale-1t", "switchyard", 2, 100, True), run("scale-2t", "switchyard", 2, 120, False),
              run("scale-1t", "switchyard", 3, 90, True), run("scale-2t", "switchyard", 3, 162, True),
              run("scale-1t", "haproxy", 1, 80, False), run("scale-2t", "haproxy", 1, 90, False)]
        agg = report.aggregate(rs)
        sy = report.scaling(agg, rs, "switchyard")
        self.assertEqual(sy["per_round"], {1: 1.9, 3: 1.8})
        self.assertEqual(list(sy["all_rounds"]), [1, 2, 3])
        self.assertAlmostEqual(sy["median"], 1.85)
        self.assertEqual(sy["rounds_met"], 2)
        self.assertAlmostEqual(sy["of_medians"], 176 / 95)
        hp = report.scaling(agg, rs, "haproxy")
        self.assertEqual(hp["rounds"], 0)
        self.assertIn("not measured", report._scaling_text(hp))
        goal = report.goals(agg, rs)[-1]
        self.assertEqual(goal["status"], "met")
        self.assertIn("switchyard 1.85x (rounds 1.90, 1.80; 2 of 3 rounds proxy-bound", goal["measured"])
        md = report.markdown_section(fake_data(rs), agg, [], Path("."))
        self.assertIn("#### Scaling: `scale-2t` / `scale-1t`", md)
        self.assertIn("| switchyard | 100 | 162 | 1.85x | 1.90, 1.20 ✗, 1.80 | 1.85x | 2 of 3 |", md)
        self.assertIn("| HAProxy | 80 | 90 | not measured | 1.12 ✗ | – | 0 of 1 |", md)

    def test_scaling_goal_not_measured_when_load_side_saturates(self):
        rs = [fake(s, "switchyard", 1, 100, 300, 1000, proxy_bound=False, load_cpu_busy=0.99)
              for s in ("scale-1t", "scale-2t")]
        goal = report.goals(report.aggregate(rs), rs)[-1]
        self.assertEqual(goal["status"], "not measured")
        self.assertIn("load CPU up to 99% busy", goal["measured"])

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


class BudgetTests(unittest.TestCase):
    def test_cpu_stat_v1_and_v2(self):
        v1 = "nr_periods 506\nnr_throttled 122\nthrottled_time 123000000\nnr_bursts 0\nburst_time 0\n"
        v2 = "usage_usec 9\nnr_periods 10\nnr_throttled 5\nthrottled_usec 250000\n"
        a1, b1 = cgroup.parse_cpu_stat("nr_periods 6\nnr_throttled 2\nthrottled_time 3000000\n"), cgroup.parse_cpu_stat(v1)
        d = cgroup.throttle_delta(a1, b1)
        self.assertEqual((d["cg_periods"], d["cg_throttled_periods"]), (500, 120))
        self.assertAlmostEqual(d["cg_throttled_share"], 0.24)
        self.assertAlmostEqual(d["cg_throttled_s"], 0.12)
        d2 = cgroup.throttle_delta({}, cgroup.parse_cpu_stat(v2))
        self.assertAlmostEqual(d2["cg_throttled_s"], 0.25)
        self.assertIsNone(cgroup.throttle_delta({}, {})["cg_throttled_share"])

    def test_quota_line(self):
        self.assertEqual(cgroup.quota_line(0.35, 10000), (3500, 10000))
        self.assertEqual(cgroup.quota_line(0.01, 10000), (1000, 10000))  # the kernel's minimum
        with self.assertRaises(ValueError):
            cgroup.quota_line(0, 10000)

    def test_worker_threads_leave_out_processes_with_children(self):
        # nginx: master 10 with workers 11 and 12; HAProxy/switchyard: one process, two threads.
        tree = {10: [11, 12], 11: [], 12: []}
        threads = {10: [10], 11: [11], 12: [12]}
        self.assertEqual(cgroup.worker_threads(tree, threads), [11, 12])
        self.assertEqual(cgroup.worker_threads({5: []}, {5: [7, 5]}), [5, 7])
        self.assertEqual(cgroup.assign([1, 2, 3], 2), [[1, 3], [2]])
        self.assertEqual(cgroup.assign([1], 2), [[1], []])

    def test_per_cpu_busy_and_thread_shares(self):
        text = "cpu  9 9 9 9 9 9 9 0 0 0\ncpu0 10 0 5 100 5 0 1 0 0 0\ncpu1 1 0 1 200 0 0 0 0 0 0\nintr 1\n"
        self.assertEqual(procs.parse_proc_stat_per_cpu(text), {0: 16, 1: 2})
        self.assertAlmostEqual(procs.busiest_share({1: 10, 2: 10}, {1: 40, 2: 20}), 0.75)
        self.assertAlmostEqual(procs.busiest_share({}, {1: 5, 2: 5}), 0.5)
        self.assertIsNone(procs.busiest_share({1: 5}, {1: 5}))
        self.assertEqual(procs.parse_schedstat_wait_ns("123 4567 8\n"), 4567)
        self.assertEqual(procs.parse_schedstat_wait_ns(""), 0)

    def test_load_generator_waits_and_cpu_are_measured(self):
        rc, out, err, cpu, waited = procs.run_measured_waits(
            [sys.executable, "-c", "import time; t = time.time()\nwhile time.time() - t < 0.3: pass\nprint('ok')"], None, 30)
        self.assertEqual((rc, out.strip()), (0, "ok"))
        self.assertGreater(cpu, 0)
        self.assertGreaterEqual(waited, 0)
        self.assertGreaterEqual(procs.wait_seconds([__import__("os").getpid()]), 0)

    def test_proxy_bound_check(self):
        self.assertTrue(scenarios.proxy_bound(0.95, None, 0.7))
        self.assertFalse(scenarios.proxy_bound(0.95, None, 0.97))  # load side saturated
        self.assertFalse(scenarios.proxy_bound(0.5, None, 0.5))  # proxy did not use its budget
        self.assertTrue(scenarios.proxy_bound(0.5, 0.96, 0.5))  # one busy thread at its own q
        self.assertFalse(scenarios.proxy_bound(0.95, 0.95, None))

    @unittest.skipIf(cgroup.unavailable_reason(), cgroup.unavailable_reason() or "")
    def test_budget_per_thread_moves_worker_threads(self):
        code = "import threading,time\nfor _ in range(2): threading.Thread(target=time.sleep, args=(30,)).start()\ntime.sleep(30)"
        try:
            budget = cgroup.CpuBudget(0.7, 10000, per_thread=2).create()
        except RuntimeError as e:  # e.g. cgroup v2 only
            self.skipTest(str(e))
        svc = procs.Service("t", [sys.executable, "-c", code], Path(tempfile.mkdtemp()) / "t.log",
                            cgroup_procs=budget.procs_file())
        try:
            svc.start()
            for _ in range(100):
                if len(list(Path(f"/proc/{svc.pid}/task").iterdir())) == 3:
                    break
                __import__("time").sleep(0.02)
            self.assertIn(str(svc.pid), (budget.path / "cgroup.procs").read_text().split())
            self.assertEqual((budget.path / "cpu.cfs_quota_us").read_text().strip(), "7000")
            self.assertEqual((budget.children[0] / "cpu.cfs_quota_us").read_text().strip(), "3500")
            budget.split(svc.pids())
            self.assertEqual(budget.layout, [2, 1])
            moved = [(c / "tasks").read_text().split() for c in budget.children]
            self.assertEqual(sorted(t for g in moved for t in g),
                             sorted(t.name for t in Path(f"/proc/{svc.pid}/task").iterdir()))
            self.assertEqual(set(budget.stat()) >= {"nr_periods", "nr_throttled"}, True)
        finally:
            svc.stop()
            budget.remove()
        self.assertFalse(budget.path.exists())


class PlanTests(unittest.TestCase):
    def test_group_names_expand(self):
        self.assertEqual(scenarios.expand_names(["scale", "ka64", "scale-1t"]), ["scale-1t", "scale-2t", "ka64"])
        self.assertNotIn("ka64-2t", [s.name for s in scenarios.SCENARIOS if s.default])

    def test_round_plan(self):
        by = scenarios.BY_NAME
        units = scenarios.run_units([by["ka64"], by["body16k"], by["scale-1t"], by["scale-2t"]])
        self.assertEqual([[s.name for s in u] for u in units], [["ka64"], ["body16k"], ["scale-1t", "scale-2t"]])
        plan = scenarios.round_plan(units, ["haproxy", "nginx", "switchyard"], 2, 4)
        runs = [(r, s.name, p) for r, s, p in plan]
        # body16k only in the first 2 rounds, the key scenarios in all 4.
        self.assertEqual(sorted({r for r, n, _ in runs if n == "body16k"}), [1, 2])
        self.assertEqual(sorted({r for r, n, _ in runs if n == "scale-2t"}), [1, 2, 3, 4])
        self.assertEqual(len(runs), 4 * (4 + 6) + 2 * 3)
        for rnd in range(1, 5):
            this = [(n, p) for r, n, p in runs if r == rnd]
            # The ceiling runs first; every proxy once per scenario.
            self.assertEqual(this[0], ("ka64", "direct"))
            for n in ("ka64", "scale-1t", "scale-2t"):
                self.assertEqual(sorted(p for m, p in this if m == n and p != "direct"), ["haproxy", "nginx", "switchyard"])
            # A proxy's scale-1t and scale-2t runs are adjacent, their order alternating by round.
            scale = [(n, p) for n, p in this if n.startswith("scale")]
            for i in range(0, 6, 2):
                self.assertEqual(scale[i][1], scale[i + 1][1])
                self.assertEqual(scale[i][0], "scale-1t" if rnd % 2 else "scale-2t")
        first = [[p for r, n, p in runs if r == rnd and n == "ka64" and p != "direct"][0] for rnd in (1, 2, 3)]
        self.assertEqual(len(set(first)), 3)  # the order rotates

    def test_parse_args_rounds(self):
        import importlib.util

        spec = importlib.util.spec_from_file_location("bench_run", Path(__file__).parent.parent / "run.py")
        run = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(run)
        a = run.parse_args([])
        self.assertEqual((a.rounds, a.key_rounds), (3, 9))
        self.assertIn("scale-2t", [s.name for s in a.scenario_list])
        self.assertNotIn("ka64-2t", [s.name for s in a.scenario_list])
        self.assertEqual((lambda x: (x.rounds, x.key_rounds))(run.parse_args(["--rounds", "1"])), (1, 1))
        self.assertEqual((lambda x: (x.rounds, x.key_rounds))(run.parse_args(["--quick"])), (1, 1))
        self.assertEqual((lambda x: (x.rounds, x.key_rounds))(run.parse_args(["--rounds", "2", "--key-rounds", "4"])), (2, 4))
        self.assertEqual((lambda x: (x.rounds, x.key_rounds))(run.parse_args(["--rounds", "6", "--key-rounds", "4"])), (6, 6))
        self.assertEqual([s.name for s in run.parse_args(["--scenarios", "scale"]).scenario_list], ["scale-1t", "scale-2t"])


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
