//! Listener hand-over (`src/handover.rs`): a process started with `-sf PID`
//! (or `-x <stats socket>`) takes the old process's listening sockets instead
//! of binding new ones, so that nothing queued in them is reset when the old
//! process stops. Load: client threads opening one connection per request
//! (raw sockets, `Connection: close`), every failure counted. Proof that the
//! sockets are the same: the listening socket inodes in `/proc/<pid>/fd`.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use support::*;

/// One frontend on each of `ports`, `nbthread`, extra `global` lines.
fn cfg(ports: &[u16], nbthread: u32, global: &str, srv: &Backend) -> String {
    let binds: String = ports
        .iter()
        .map(|p| format!("    bind 127.0.0.1:{p}\n"))
        .collect();
    format!(
        "global\n    nbthread {nbthread}\n{global}\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n{binds}    default_backend be\n\
         backend be\n    server s {}\n",
        srv.addr()
    )
}

/// The inodes of the sockets listening on 127.0.0.1:`port` that process
/// `pid` holds open.
fn listen_inodes(pid: u32, port: u16) -> BTreeSet<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let want = format!("0100007F:{port:04X}");
    let listening: BTreeSet<u64> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 9 && f[1] == want && f[3] == "0A").then(|| f[9].parse().ok())?
        })
        .collect();
    let mut out = BTreeSet::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(link) = std::fs::read_link(e.path()) else {
            continue;
        };
        let link = link.to_string_lossy().into_owned();
        if let Some(n) = link
            .strip_prefix("socket:[")
            .and_then(|s| s.strip_suffix(']'))
            .and_then(|s| s.parse::<u64>().ok())
        {
            if listening.contains(&n) {
                out.insert(n);
            }
        }
    }
    out
}

/// The backlog limit of every socket listening on 127.0.0.1:`port` (`ss`
/// shows it as the send queue of a listening socket): `listen(fd, 0)` by the
/// old process on a shared socket would show here as 0.
fn listen_backlogs(port: u16) -> Vec<u64> {
    let out = Command::new("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .expect("ss (iproute2)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
        .collect()
}

/// Waits until process `pid` holds `n` listening sockets on `port`.
fn wait_inodes(pid: u32, port: u16, n: usize) -> BTreeSet<u64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let set = listen_inodes(pid, port);
        if set.len() >= n || Instant::now() > deadline {
            return set;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Client threads, one connection per request, until stopped (at most `LIMIT`).
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<(usize, Vec<String>)>>,
}

const LIMIT: Duration = Duration::from_secs(60);

impl Load {
    fn start(port: u16, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..clients)
            .map(|_| {
                let stop = stop.clone();
                thread::spawn(move || one_connection_per_request(port, &stop))
            })
            .collect();
        Load { stop, threads }
    }

    /// (requests answered 200, failures).
    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let mut ok = 0;
        let mut failed = Vec::new();
        for t in self.threads {
            let (o, f) = t.join().unwrap();
            ok += o;
            failed.extend(f);
        }
        (ok, failed)
    }
}

fn one_connection_per_request(port: u16, stop: &AtomicBool) -> (usize, Vec<String>) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    let (mut ok, mut failed) = (0, Vec::new());
    while !stop.load(Ordering::SeqCst) && started.elapsed() < LIMIT {
        let mut s = match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(s) => s,
            Err(e) => {
                failed.push(format!("connect: {e}"));
                continue;
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        if let Err(e) = s.write_all(b"GET /h HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n") {
            failed.push(format!("write: {e}"));
            continue;
        }
        let mut answer = Vec::new();
        match s.read_to_end(&mut answer) {
            Ok(_) if answer.starts_with(b"HTTP/1.1 200") => ok += 1,
            Ok(_) => failed.push(format!(
                "answer: {:?}",
                String::from_utf8_lossy(&answer[..answer.len().min(40)])
            )),
            Err(e) => failed.push(format!("read: {e}")),
        }
    }
    (ok, failed)
}

fn sf(pid: u32) -> Vec<String> {
    vec!["-sf".into(), pid.to_string()]
}

/// Starts the successor of `old` with `args`, waits for `old` to exit 0.
fn hand_over(old: &mut Proxy, config: &str, port: u16, args: &[String]) -> Proxy {
    let new = Proxy::start_args(Engine::Switchyard, config, port, args);
    let status = old
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("old process still running: {:?}", old.stderr_lines()));
    assert!(status.success(), "{status}: {:?}", old.stderr_lines());
    new
}

#[test]
fn x_and_sf_on_the_command_line_name_the_sources() {
    fn args(s: &str) -> Vec<String> {
        let words = s.split(' ').map(String::from);
        std::iter::once("switchyard".to_string())
            .chain(words)
            .collect()
    }
    let cli = switchyard::cli::try_parse_args(args("-f a.cfg -x /run/lb.sock -sf 12 34")).unwrap();
    let sources = switchyard::cli::handover_sources(&cli);
    assert_eq!(sources.pids, [12, 34]);
    assert_eq!(
        sources.stats_socket.as_deref(),
        Some(std::path::Path::new("/run/lb.sock"))
    );
    let cli = switchyard::cli::try_parse_args(args("-f a.cfg -st 7")).unwrap();
    let sources = switchyard::cli::handover_sources(&cli);
    assert_eq!((sources.pids, sources.stats_socket), (vec![7], None));
    assert!(switchyard::cli::try_parse_args(args("-f a.cfg -x")).is_err());
}

#[test]
fn twelve_sf_handovers_under_connection_per_request_load_fail_nothing_and_keep_the_sockets() {
    let srv = Backend::start("s");
    let port = free_port();
    let config = cfg(&[port], 2, "", &srv);
    let mut old = Proxy::start(&config, port);
    let first = wait_inodes(old.child.id(), port, 2);
    assert_eq!(first.len(), 2, "one socket per thread");
    let load = Load::start(port, 6);
    thread::sleep(Duration::from_millis(200));
    let mut kept = Vec::new();
    let mut generations = Vec::new();
    for _ in 0..12 {
        let before = listen_inodes(old.child.id(), port);
        let args = sf(old.child.id());
        let new = hand_over(&mut old, &config, port, &args);
        kept.push((before, wait_inodes(new.child.id(), port, 2)));
        let backlogs = listen_backlogs(port);
        assert!(
            backlogs.len() == 2 && backlogs.iter().all(|&b| b >= 128),
            "the old process left the shared sockets' backlog alone: {backlogs:?}"
        );
        generations.push(std::mem::replace(&mut old, new));
        thread::sleep(Duration::from_millis(150));
    }
    let (ok, failed) = load.finish();
    eprintln!(
        "12 x -sf, connection per request: {ok} ok, {} failed: {failed:?}",
        failed.len()
    );
    assert!(ok > 300, "load too small to mean anything: {ok}");
    assert!(failed.is_empty(), "{failed:?}");
    for (i, (before, after)) in kept.iter().enumerate() {
        assert_eq!(before, after, "hand-over {i}: the very same sockets");
    }
    assert_eq!(kept.last().unwrap().1, first, "still the first sockets");
    let last = old.stderr_lines();
    assert!(
        last.iter()
            .any(|l| l.contains("took over 2 listening socket(s) from process")),
        "{last:?}"
    );
}

#[test]
fn a_different_nbthread_keeps_every_inherited_socket_and_binds_what_is_missing() {
    let srv = Backend::start("s");
    let port = free_port();
    let mut three = Proxy::start(&cfg(&[port], 3, "", &srv), port);
    let sockets = wait_inodes(three.child.id(), port, 3);
    assert_eq!(sockets.len(), 3);
    let load = Load::start(port, 4);
    thread::sleep(Duration::from_millis(100));
    // Fewer threads: all three sockets are kept (one thread accepts on two).
    let pid = three.child.id();
    let mut one = hand_over(&mut three, &cfg(&[port], 1, "", &srv), port, &sf(pid));
    assert_eq!(listen_inodes(one.child.id(), port), sockets);
    thread::sleep(Duration::from_millis(200));
    // More threads: the three kept, one bound fresh.
    let pid = one.child.id();
    let four = hand_over(&mut one, &cfg(&[port], 4, "", &srv), port, &sf(pid));
    let now = wait_inodes(four.child.id(), port, 4);
    assert_eq!(now.len(), 4, "{now:?}");
    assert!(now.is_superset(&sockets), "{now:?} {sockets:?}");
    thread::sleep(Duration::from_millis(200));
    let (ok, failed) = load.finish();
    eprintln!("nbthread 3 -> 1 -> 4: {ok} ok, {} failed", failed.len());
    assert!(ok > 50, "{ok}");
    assert!(failed.is_empty(), "{failed:?}");
}

#[test]
fn only_addresses_of_the_new_configuration_are_taken() {
    let srv = Backend::start("s");
    let (kept, dropped, added) = (free_port(), free_port(), free_port());
    let mut old = Proxy::start(&cfg(&[kept, dropped], 1, "", &srv), kept);
    let kept_inode = wait_inodes(old.child.id(), kept, 1);
    let pid = old.child.id();
    let new = hand_over(&mut old, &cfg(&[kept, added], 1, "", &srv), kept, &sf(pid));
    assert_eq!(wait_inodes(new.child.id(), kept, 1), kept_inode);
    assert_eq!(
        wait_inodes(new.child.id(), added, 1).len(),
        1,
        "bound fresh"
    );
    assert_eq!(get(added, "/", "").status, 200);
    assert!(
        TcpStream::connect(("127.0.0.1", dropped)).is_err(),
        "the old process closed the address the new configuration dropped"
    );
}

/// A unix socket path for this test.
fn sock_path(tag: &str) -> String {
    std::env::temp_dir()
        .join(format!(
            "switchyard-handover-{}-{tag}.sock",
            std::process::id()
        ))
        .display()
        .to_string()
}

#[test]
fn x_takes_the_sockets_through_a_stats_socket_with_expose_fd_listeners() {
    let srv = Backend::start("s");
    let port = free_port();
    let path = sock_path("x");
    let global = format!("    stats socket {path} level admin expose-fd listeners\n");
    let config = cfg(&[port], 2, &global, &srv);
    let mut old = Proxy::start(&config, port);
    let sockets = wait_inodes(old.child.id(), port, 2);
    let pid = old.child.id();
    let mut args = vec!["-x".to_string(), path.clone()];
    args.extend(sf(pid));
    let new = hand_over(&mut old, &config, port, &args);
    assert_eq!(wait_inodes(new.child.id(), port, 2), sockets);
    assert_eq!(get(port, "/", "").status, 200);
    // The new process serves the stats socket in turn.
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.write_all(b"show info\n").unwrap();
    let mut info = String::new();
    s.read_to_string(&mut info).unwrap();
    assert!(info.contains(&format!("Pid: {}", new.child.id())), "{info}");
    drop(new);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn x_without_expose_fd_or_without_a_socket_is_fatal_like_haproxy() {
    let srv = Backend::start("s");
    let port = free_port();
    let path = sock_path("noexpose");
    let config = cfg(
        &[port],
        1,
        &format!("    stats socket {path} level admin\n"),
        &srv,
    );
    let old = Proxy::start(&config, port);
    let run = |socket: &str| {
        Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["-db", "-f"])
            .arg(&old.config_path)
            .args(["-x", socket])
            .output()
            .unwrap()
    };
    let out = run(&path);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("expose-fd listeners"), "{err}");
    assert!(
        err.contains("Failed to get the sockets from the old process!"),
        "{err}"
    );
    let out = run("/nonexistent/switchyard.sock");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Failed to connect to the old process socket '/nonexistent/switchyard.sock'"),
        "{err}"
    );
    // The old process was not disturbed.
    assert_eq!(get(port, "/", "").status, 200);
    drop(old);
    let _ = std::fs::remove_file(&path);
}

/// A process that holds PID-named hand-over socket but never answers (and
/// ignores `-sf`'s SIGUSR1); killed on drop.
struct Mute(Child);

impl Mute {
    fn start() -> Option<Mute> {
        let script = "import socket,os,signal,time\n\
                      signal.signal(signal.SIGUSR1, signal.SIG_IGN)\n\
                      s=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n\
                      s.bind(b'\\0switchyard.handover.%d' % os.getpid())\n\
                      s.listen(8)\n\
                      print('ready', flush=True)\n\
                      time.sleep(60)\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take()?)
            .read_line(&mut line)
            .ok()?;
        (line.trim() == "ready").then_some(Mute(child))
    }
}

impl Drop for Mute {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a process with `-sf pid` and checks that it serves on fresh
/// sockets soon, with a warning giving `reason`.
fn falls_back(pid: u32, srv: &Backend, reason: &str) {
    let port = free_port();
    let started = Instant::now();
    let p = Proxy::start_args(
        Engine::Switchyard,
        &cfg(&[port], 1, "", srv),
        port,
        &sf(pid),
    );
    let waited = started.elapsed();
    assert_eq!(get(port, "/", "").status, 200);
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    p.wait_stderr("binding new ones", Duration::from_secs(2))
        .unwrap_or_else(|| panic!("no warning: {:?}", p.stderr_lines()));
    let lines = p.stderr_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("[WARNING]") && l.contains(reason)),
        "{lines:?}"
    );
}

#[test]
fn sf_falls_back_to_fresh_sockets_with_a_warning_when_the_old_process_does_not_answer() {
    let srv = Backend::start("s");
    // Not a switchyard process: nobody listens on its hand-over name.
    let mut other = Command::new("sleep").arg("30").spawn().unwrap();
    falls_back(other.id(), &srv, "not a running switchyard process");
    let _ = other.kill();
    let _ = other.wait();
    // A process that accepts the connection but never answers: bounded wait.
    let Some(mute) = Mute::start() else {
        eprintln!("python3 not available: the silent peer case is not run");
        return;
    };
    falls_back(mute.0.id(), &srv, "no answer within 1000 ms");
}

#[test]
fn x_dev_null_turns_the_handover_off() {
    let srv = Backend::start("s");
    let port = free_port();
    let config = cfg(&[port], 1, "", &srv);
    let mut old = Proxy::start(&config, port);
    let sockets = wait_inodes(old.child.id(), port, 1);
    let pid = old.child.id();
    let mut args = vec!["-x".to_string(), "/dev/null".to_string()];
    args.extend(sf(pid));
    let new = hand_over(&mut old, &config, port, &args);
    let now = wait_inodes(new.child.id(), port, 1);
    assert_eq!(now.len(), 1);
    assert!(
        now.is_disjoint(&sockets),
        "bound fresh: {now:?} {sockets:?}"
    );
    let lines = new.stderr_lines();
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("took over") || l.contains("WARNING")),
        "{lines:?}"
    );
}

/// A process of another user asking for the sockets gets none and says why,
/// and the old process refuses it (needs root to start it as `nobody`).
#[test]
fn a_process_of_another_user_gets_no_socket() {
    let srv = Backend::start("s");
    let (port, other_port) = (free_port(), free_port());
    let old = Proxy::start(&cfg(&[port], 1, "", &srv), port);
    // The port differs: SO_REUSEPORT would refuse another user's bind anyway.
    let path = std::env::temp_dir().join(format!(
        "switchyard-handover-{}-nobody.cfg",
        std::process::id()
    ));
    std::fs::write(&path, cfg(&[other_port], 1, "", &srv)).unwrap();
    let child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_switchyard"))
        .args(["-db", "-f"])
        .arg(&path)
        .args(sf(old.child.id()))
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("setpriv not available: not run");
        return;
    };
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    while Instant::now() < deadline && !seen.iter().any(|l: &String| l.contains("binding new ones"))
    {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.push(line);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&path);
    // Not root (setresuid refused), or the binary is not reachable by uid
    // 65534 (a checkout under a private home directory): setpriv itself
    // reports it, and the test cannot run here.
    if seen
        .iter()
        .any(|l| l.contains("Operation not permitted") || l.starts_with("setpriv:"))
    {
        eprintln!("cannot run switchyard as uid 65534 here: not run ({seen:?})");
        return;
    }
    // Both sides check: the new process sees the old one is not its user,
    // the old one that the peer is not its user.
    assert!(
        seen.iter()
            .any(|l| l.contains("belongs to uid 0, not to ours (65534)")),
        "{seen:?}"
    );
    assert!(
        old.wait_stderr("of uid 65534: not our user", Duration::from_secs(2))
            .is_some(),
        "{:?}",
        old.stderr_lines()
    );
    // The old process still owns and serves its socket.
    assert_eq!(get(port, "/", "").status, 200);
}
