//! `switchyard-app demo` as a user runs it: start-up failures end quickly with a message and a
//! non-zero exit, and a running demo serves through the balancer and stops cleanly on SIGTERM.
//! Each test writes its own configuration on ephemeral ports, so it never touches the seed's.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const APP: &str = env!("CARGO_BIN_EXE_switchyard-app");

/// Kills the demo if a test fails before it stops it.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_ports() -> [u16; 5] {
    let listeners: Vec<TcpListener> = (0..5)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    ports.try_into().unwrap()
}

fn write_config(dir: &Path, [fe, h1, h2, s1, s2]: [u16; 5]) -> PathBuf {
    let text = format!(
        "defaults\n    mode http\n    timeout connect 5000\n    timeout client 10000\n    timeout server 10000\n\
         frontend all\n    bind 127.0.0.1:{fe}\n    acl is_engineio path_beg /engine.io\n    use_backend socket-servers if is_engineio\n    default_backend http-servers\n\
         backend http-servers\n    balance roundrobin\n    server node-1 127.0.0.1:{h1} check\n    server node-2 127.0.0.1:{h2} check\n\
         backend socket-servers\n    balance leastconn\n    cookie SRVNAME insert\n    server node-1 127.0.0.1:{s1} cookie S1 check\n    server node-2 127.0.0.1:{s2} cookie S2 check\n"
    );
    let path = dir.join("demo.cfg");
    std::fs::write(&path, text).unwrap();
    path
}

/// A scratch directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("switchyard-app-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// Runs the demo to completion, failing the test if it takes longer than `limit`.
fn run_demo(args: &[&str], limit: Duration) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = Command::new(APP)
        .arg("demo")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("demo {args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child.wait_with_output().unwrap(), start.elapsed())
}

#[test]
fn a_busy_port_is_named_and_fails_fast() {
    let dir = temp_dir("busy");
    let ports = free_ports();
    let holder = TcpListener::bind(("127.0.0.1", ports[2])).unwrap();
    let config = write_config(&dir, ports);
    let (out, _) = run_demo(
        &["--config", config.to_str().unwrap()],
        Duration::from_secs(10),
    );
    drop(holder);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("port {} for the http node node-2", ports[2])),
        "{stderr}"
    );
}

#[test]
fn unreachable_or_silent_redis_fails_fast() {
    let dir = temp_dir("redis");
    let config = write_config(&dir, free_ports());
    let config = config.to_str().unwrap();
    let (out, _) = run_demo(
        &["--config", config, "--redis", "redis://127.0.0.1:1"],
        Duration::from_secs(10),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Redis at redis://127.0.0.1:1"));

    // A server that accepts and never answers: bounded by the PING timeout, not a hang.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", silent.local_addr().unwrap());
    let (out, took) = run_demo(
        &["--config", config, "--redis", &url],
        Duration::from_secs(15),
    );
    assert!(!out.status.success());
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Redis"));
}

#[test]
fn a_balancer_that_cannot_start_stops_the_nodes() {
    let dir = temp_dir("nolb");
    let ports = free_ports();
    let config = write_config(&dir, ports);
    let (out, _) = run_demo(
        &[
            "--config",
            config.to_str().unwrap(),
            "--switchyard-bin",
            "/bin/false",
        ],
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("exited during start-up"), "{stderr}");
    for port in &ports[1..] {
        assert!(
            TcpListener::bind(("127.0.0.1", *port)).is_ok(),
            "port {port} still held: {stderr}"
        );
    }
}

/// The balancer the demo should drive: switchyard when it is built beside this binary,
/// otherwise HAProxy (the reference), so the test exercises the demo's process handling either way.
fn balancer() -> PathBuf {
    let beside = Path::new(APP).with_file_name("switchyard");
    if beside.is_file() {
        return beside;
    }
    let haproxy = PathBuf::from("/usr/sbin/haproxy");
    assert!(
        haproxy.is_file(),
        "neither {} nor HAProxy is available",
        beside.display()
    );
    haproxy
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn the_demo_serves_through_the_balancer_and_stops_on_sigterm() {
    let dir = temp_dir("run");
    let ports = free_ports();
    let config = write_config(&dir, ports);
    let lb = balancer();
    let child = Command::new(APP)
        .args([
            "demo",
            "--config",
            config.to_str().unwrap(),
            "--switchyard-bin",
        ])
        .arg(&lb)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut guard = Guard(child);
    let mut stdout = BufReader::new(guard.0.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), format!("Open http://127.0.0.1:{}/", ports[0]));

    let mut nodes = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let reply = http_get(ports[0], "/health");
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        let node = reply
            .lines()
            .find_map(|l| l.strip_prefix("x-node: "))
            .expect("x-node header")
            .to_owned();
        nodes.insert(node);
    }
    assert_eq!(
        nodes.into_iter().collect::<Vec<_>>(),
        ["http-node-1", "http-node-2"],
        "through {}",
        lb.display()
    );
    let handshake = http_get(ports[0], "/engine.io/?EIO=4&transport=polling");
    assert!(handshake.contains("x-node: socket-node-"), "{handshake}");

    let pid = nix::unistd::Pid::from_raw(guard.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = guard.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "demo did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    for port in ports {
        assert!(
            TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} still held"
        );
    }
}
