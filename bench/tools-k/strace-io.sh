#!/bin/bash
# strace recvfrom/sendto/epoll_wait of a running proxy during a short wrk: usage strace-io.sh <bin-or-haproxy> <out>
cd /work/main
python3 - "$@" <<'PY'
import sys, subprocess, time, tempfile, signal
from pathlib import Path
sys.path.insert(0, "bench")
from benchlib import configs, procs, scenarios
from benchlib.configs import ProxyConfig
root = Path(".").resolve()
lock = procs.exclusive_run()
tmp = Path(tempfile.mkdtemp(prefix="k-io-"))
which, out = sys.argv[1], sys.argv[2]
env = scenarios.Env(root, tmp, root/"target-bench/release", None if which=="haproxy" else Path(which), True, 2, 1, 0, lua=root/"bench/wrk/report.lua")
sc = scenarios.BY_NAME["ka64"]
env.backend = scenarios.start_backend(env)
try:
    cfg = ProxyConfig(sc.mode, 1, fds=configs.fd_limit())
    svc = scenarios.start_proxy(env, "haproxy" if which=="haproxy" else "switchyard", cfg, "io")
    try:
      procs.run_measured(scenarios.wrk_command(env, sc, cfg.port, 1), env.load_cpus(), 30)
      st = subprocess.Popen(["strace","-f","-tt","-o",out,"-e","trace=recvfrom,sendto,epoll_wait,read,write,readv,writev","-s","0","-p",str(svc.pid)])
      time.sleep(0.5)
      procs.run_measured(scenarios.wrk_command(env, sc, cfg.port, 1), env.load_cpus(), 30)
      st.send_signal(signal.SIGINT); st.wait()
    finally:
      svc.stop()
finally:
  env.backend.stop()
PY
