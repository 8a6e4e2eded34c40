"""Start switchyard, HAProxy or nginx with equivalent configurations (Python 3.11 stdlib).

switchyard and HAProxy get the *same* HAProxy configuration file; nginx gets the closest
equivalent. Used by run_corpus.py and scorecard.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = ("switchyard", "haproxy", "nginx")

DEFAULTS = {
    "maxconn": 2000,
    "timeout_connect": "500ms",
    "timeout_client": "5s",
    "timeout_server": "5s",
    "timeout_http_request": "2s",
    "retries": 0,
    "redispatch": False,
    "retry_on": "",  # e.g. "conn-failure empty-response response-timeout"
    "check": False,
    "inter": "500ms",
    "rise": 2,
    "fall": 2,
    "balance": "roundrobin",
    "frontend_maxconn": 0,
    "timeout_tunnel": "60s",
}


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def kill_group(proc: subprocess.Popen | None) -> None:
    """SIGKILL to the process group a process was started in (start_new_session=True)."""
    if proc and proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


def wait_listening(port: int, proc: subprocess.Popen, seconds: float, what: str) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    kill_group(proc)
    raise RuntimeError(f"{what} did not listen on {port}")


def ms(v: str) -> int:
    if v.endswith("ms"):
        return int(v[:-2])
    if v.endswith("s"):
        return int(float(v[:-1]) * 1000)
    return int(v)


def haproxy_cfg(port: int, backends: list[int], o: dict, kind: str = "haproxy") -> str:
    """The HAProxy configuration both HAProxy and switchyard run (switchyard reads
    `retry-on` too; it replays only idempotent requests, see proxy/retry.rs)."""
    lines = [
        "global",
        f"    maxconn {o['maxconn']}",
        "defaults",
        "    mode http",
        f"    timeout connect {o['timeout_connect']}",
        f"    timeout client {o['timeout_client']}",
        f"    timeout server {o['timeout_server']}",
        f"    timeout http-request {o['timeout_http_request']}",
        f"    timeout tunnel {o['timeout_tunnel']}",
        "    option forwardfor",
        f"    retries {o['retries']}",
    ]
    if o["redispatch"]:
        lines.append("    option redispatch 1")
    if o["retry_on"]:
        lines.append(f"    retry-on {o['retry_on']}")
    lines += [
        "frontend fe",
        f"    bind 127.0.0.1:{port}",
        *([f"    maxconn {o['frontend_maxconn']}"] if o["frontend_maxconn"] else []),
        "    acl internal path_beg /internal",
        "    http-request deny if internal",
        "    default_backend be",
        "backend be",
        f"    balance {o['balance']}",
    ]
    chk = f" check inter {o['inter']} rise {o['rise']} fall {o['fall']}" if o["check"] else ""
    for i, b in enumerate(backends):
        lines.append(f"    server s{i + 1} 127.0.0.1:{b}{chk}")
    return "\n".join(lines) + "\n"


def nginx_cfg(port: int, backends: list[int], o: dict, d: str) -> str:
    servers = "".join(f"server 127.0.0.1:{b} max_fails=1 fail_timeout=2s; " for b in backends)
    retry = "error timeout" if o["retries"] else "off"
    tries = f"proxy_next_upstream_tries {o['retries'] + 1};" if o["retries"] else ""
    return f"""
user root root;
worker_processes 1;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections {o['maxconn']}; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  client_header_timeout {ms(o['timeout_http_request'])}ms;
  client_body_timeout {ms(o['timeout_client'])}ms;
  send_timeout {ms(o['timeout_client'])}ms;
  upstream be {{ {servers} keepalive 32; }}
  server {{
    listen 127.0.0.1:{port};
    location /internal {{ return 403; }}
    location /ws {{
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host $host;
      proxy_read_timeout {ms(o['timeout_tunnel'])}ms;
      proxy_send_timeout {ms(o['timeout_tunnel'])}ms;
    }}
    location / {{
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_connect_timeout {ms(o['timeout_connect'])}ms;
      proxy_read_timeout {ms(o['timeout_server'])}ms;
      proxy_next_upstream {retry};
      {tries}
    }}
  }}
}}
"""


def switchyard_bin() -> str:
    env = os.environ.get("SWITCHYARD_BIN")
    if env:
        return env
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "debug", "switchyard")


class Proxy:
    """A running proxy process; ``stop()`` (or the context manager) kills it."""

    def __init__(self, kind: str, port: int, backends: list[int], workdir: str, **opts):
        self.kind, self.port, self.backends, self.workdir = kind, port, backends, workdir
        self.opts = dict(DEFAULTS, **opts)
        os.makedirs(workdir, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.log = open(os.path.join(workdir, f"{kind}.log"), "ab")

    def command(self) -> list[str]:
        if self.kind == "nginx":
            cfg = os.path.join(self.workdir, "nginx.conf")
            with open(cfg, "w") as f:
                f.write(nginx_cfg(self.port, self.backends, self.opts, self.workdir))
            return ["nginx", "-p", self.workdir, "-c", cfg, "-g", "daemon off;"]
        cfg = os.path.join(self.workdir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(haproxy_cfg(self.port, self.backends, self.opts, self.kind))
        if self.kind == "haproxy":
            return [shutil.which("haproxy") or "/usr/sbin/haproxy", "-f", cfg, "-db"]
        return [switchyard_bin(), "-f", cfg]

    def start(self, wait: float = 10.0) -> "Proxy":
        self.proc = subprocess.Popen(
            self.command(), stdout=self.log, stderr=self.log, start_new_session=True
        )
        wait_listening(self.port, self.proc, wait, f"{self.kind} (log: {self.log.name})")
        return self

    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        kill_group(self.proc)
        self.proc = None

    def __enter__(self) -> "Proxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class NginxOrigin:
    """A fast origin for the load rows: nginx answering `200 ok` to everything and logging
    each request's `X-Req-Id` and method, so duplicate executions can be counted."""

    def __init__(self, port: int, workdir: str):
        self.port, self.workdir = port, workdir
        os.makedirs(workdir, exist_ok=True)
        self.access_log = os.path.join(workdir, "access.log")
        self.cfg = os.path.join(workdir, "origin.conf")
        d = workdir
        with open(self.cfg, "w") as f:
            f.write(f"""
user root root;
worker_processes 1;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  log_format reqid '$http_x_req_id $request_method $status';
  access_log {self.access_log} reqid;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  keepalive_requests 100000;
  server {{
    listen 127.0.0.1:{port};
    location / {{ return 200 "ok\\n"; }}
  }}
}}
""")
        self.proc: subprocess.Popen | None = None

    def start(self) -> "NginxOrigin":
        self.proc = subprocess.Popen(
            ["nginx", "-p", self.workdir, "-c", self.cfg, "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        wait_listening(self.port, self.proc, 5, "nginx origin")
        return self

    def kill(self) -> None:
        """kill -9 of the whole origin (master and worker)."""
        kill_group(self.proc)
        self.proc = None

    def request_ids(self) -> list[str]:
        try:
            with open(self.access_log) as f:
                return [line.split(" ", 1)[0] for line in f if line.strip()]
        except FileNotFoundError:
            return []
