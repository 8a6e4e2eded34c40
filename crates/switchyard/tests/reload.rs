//! Reloads without loss: SIGHUP swaps the configuration in-process, `-sf PID`
//! hands over to a new process; both under load from keep-alive clients and
//! from clients opening one connection per request, counting every failed
//! request (connect error, reset, EOF instead of a response, non-200).

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use support::*;

/// A config with frontend `fe` on `port` balancing roundrobin over `servers`.
/// `timeout client` is long so that the probe connection, idle while a test
/// waits for a reload on a busy machine, is never closed for inactivity.
fn cfg(port: u16, servers: &[&Backend]) -> String {
    let mut s = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    balance roundrobin\n"
    );
    for b in servers {
        s.push_str(&format!("    server {} {}\n", b.name, b.addr()));
    }
    s
}

/// What one client thread of the load saw.
#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    failed: Vec<String>,
}

/// Client threads looping requests until stopped (bounded by `LOAD_LIMIT`).
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Tally>>,
}

const LOAD_LIMIT: Duration = Duration::from_secs(30);

impl Load {
    /// `keep_alive`: reuse each connection until the proxy says `close`;
    /// else one connection per request (`Connection: close`).
    fn start(port: u16, clients: usize, keep_alive: bool) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..clients)
            .map(|_| {
                let stop = stop.clone();
                thread::spawn(move || client_loop(port, keep_alive, &stop))
            })
            .collect();
        Load { stop, threads }
    }

    fn finish(self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        let mut total = Tally::default();
        for t in self.threads {
            let t = t.join().unwrap();
            total.ok += t.ok;
            total.failed.extend(t.failed);
        }
        total
    }
}

fn client_loop(port: u16, keep_alive: bool, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    let mut conn: Option<Client> = None;
    let started = Instant::now();
    let extra = if keep_alive {
        ""
    } else {
        "Connection: close\r\n"
    };
    let request = format!("GET /load HTTP/1.1\r\nHost: test\r\n{extra}\r\n");
    while !stop.load(Ordering::SeqCst) && started.elapsed() < LOAD_LIMIT {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => {
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    conn.insert(Client {
                        reader: std::io::BufReader::new(s),
                    })
                }
                Err(e) => {
                    tally.failed.push(format!("connect: {e}"));
                    thread::sleep(Duration::from_millis(5));
                    continue;
                }
            },
        };
        if let Err(e) = c.reader.get_mut().write_all(request.as_bytes()) {
            tally.failed.push(format!("write: {e}"));
            conn = None;
            continue;
        }
        match c.read_response(false) {
            Some(r) if r.status == 200 => {
                tally.ok += 1;
                let close = r
                    .header("connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close"));
                if close || !keep_alive {
                    conn = None;
                }
            }
            Some(r) => {
                tally.failed.push(format!("status {}", r.status));
                conn = None;
            }
            None => {
                tally.failed.push("no response (EOF or reset)".into());
                conn = None;
            }
        }
    }
    tally
}

/// Number of stderr lines containing `needle`.
fn count_lines(p: &Proxy, needle: &str) -> usize {
    p.stderr_lines()
        .iter()
        .filter(|l| l.contains(needle))
        .count()
}

/// Waits until `needle` has appeared `n` times on the proxy's stderr.
fn wait_count(p: &Proxy, needle: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while count_lines(p, needle) < n {
        assert!(
            Instant::now() < deadline,
            "no {n}th '{needle}'; stderr: {:?}",
            p.stderr_lines()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// Writes `config` over the running proxy's file and sends SIGHUP.
fn reload(p: &Proxy, config: &str) {
    std::fs::write(&p.config_path, config).unwrap();
    p.signal("HUP");
}

/// One request on the probe connection: the name of the server that
/// answered. A closed connection fails the test with the proxy's stderr.
fn probe(c: &mut Client, p: &Proxy) -> String {
    c.send(b"GET /probe HTTP/1.1\r\nHost: test\r\n\r\n");
    match c.read_response(false) {
        Some(r) if r.header("connection").is_none() => r.text(),
        other => panic!(
            "probe connection: {:?}; stderr: {:?}",
            other.map(|r| (r.status, r.headers)),
            p.stderr_lines()
        ),
    }
}

/// Requests on one keep-alive connection until `name` answers (up to 30).
fn reaches(c: &mut Client, p: &Proxy, name: &str) -> bool {
    (0..30).any(|_| probe(c, p) == name)
}

/// 20 reloads alternating two configurations under load; after each one a
/// keep-alive connection opened before the reload follows the new routing.
fn reloads_under_load(keep_alive: bool) -> Tally {
    let (a, b, c) = (
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("c"),
    );
    let port = free_port();
    let two = cfg(port, &[&a, &b]);
    let three = cfg(port, &[&a, &b, &c]);
    let p = Proxy::start(&two, port);
    let load = Load::start(port, 3, keep_alive);
    let mut conn = Client::connect(port);
    thread::sleep(Duration::from_millis(100));
    for i in 0..20 {
        let with_c = i % 2 == 0;
        reload(&p, if with_c { &three } else { &two });
        wait_count(&p, "reloaded configuration", i + 1);
        if with_c {
            assert!(reaches(&mut conn, &p, "c"), "reload {i}: c never answered");
        } else {
            let names: Vec<String> = (0..12).map(|_| probe(&mut conn, &p)).collect();
            assert!(!names.contains(&"c".to_string()), "reload {i}: {names:?}");
        }
        thread::sleep(Duration::from_millis(100));
    }
    thread::sleep(Duration::from_millis(200));
    let tally = load.finish();
    assert_eq!(count_lines(&p, "reload refused"), 0);
    assert_eq!(
        count_lines(&p, "listener(s) kept, 0 added, 0 closed"),
        20,
        "the listener stays open across reloads: {:?}",
        p.stderr_lines()
    );
    tally
}

/// Prints the measured figures and asserts that nothing failed.
fn assert_lossless(label: &str, t: &Tally) {
    eprintln!(
        "{label}: {} requests, {} failed: {:?}",
        t.ok,
        t.failed.len(),
        t.failed
    );
    assert!(t.ok > 200, "load too small to mean anything: {}", t.ok);
    assert!(t.failed.is_empty(), "{:?}", t.failed);
}

#[test]
fn twenty_sighup_reloads_under_keepalive_load_fail_nothing() {
    assert_lossless("keep-alive", &reloads_under_load(true));
}

#[test]
fn twenty_sighup_reloads_with_one_connection_per_request_fail_nothing() {
    assert_lossless("connection per request", &reloads_under_load(false));
}

#[test]
fn invalid_configuration_on_sighup_is_refused_and_the_old_one_keeps_serving() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let port = free_port();
    let mut p = Proxy::start(&cfg(port, &[&a]), port);
    let mut c = Client::connect(port);
    assert_eq!(c.get("/", "").text(), "a");
    let broken = cfg(port, &[&b]).replace("balance roundrobin", "balance nosuchalgo");
    reload(&p, &broken);
    wait_count(&p, "reload refused, keeping the running configuration", 1);
    let lines = p.stderr_lines();
    assert!(
        lines.iter().any(|l| l.starts_with("[ALERT]")),
        "the reason is reported: {lines:?}"
    );
    assert_eq!(p.child.try_wait().unwrap(), None, "still running");
    // Old routing, on the open connection and on new ones.
    assert_eq!(c.get("/", "").text(), "a");
    assert_eq!(get(port, "/", "").text(), "a");
    // A valid file afterwards is taken.
    reload(&p, &cfg(port, &[&b]));
    wait_count(&p, "reloaded configuration", 1);
    assert_eq!(c.get("/", "").text(), "b");
    assert_eq!(get(port, "/", "").text(), "b");
    assert_eq!(p.child.try_wait().unwrap(), None);
    // A new address that cannot be bound refuses the whole reload.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let clash = cfg(port, &[&a]).replace(
        "    default_backend be\n",
        &format!("    bind 127.0.0.1:{taken_port}\n    default_backend be\n"),
    );
    reload(&p, &clash);
    wait_count(&p, "reload refused", 2);
    assert!(p
        .stderr_lines()
        .iter()
        .any(|l| l.contains("cannot bind socket")));
    assert_eq!(get(port, "/", "").text(), "b");
    drop(taken);
    p.signal("TERM");
    assert!(p.wait_exit(Duration::from_secs(5)).unwrap().success());
}

#[test]
fn reload_adds_and_removes_listeners_without_touching_the_kept_one() {
    let a = Backend::start("a");
    let (port, extra) = (free_port(), free_port());
    let base = cfg(port, &[&a]);
    let p = Proxy::start(&base, port);
    let mut kept = Client::connect(port);
    assert_eq!(kept.get("/", "").status, 200);
    let more = base.replace(
        "    default_backend be\n",
        &format!("    bind 127.0.0.1:{extra}\n    default_backend be\n"),
    );
    reload(&p, &more);
    wait_count(&p, "1 listener(s) kept, 1 added, 0 closed", 1);
    assert_eq!(get(extra, "/", "").text(), "a");
    // A keep-alive connection on the listener about to go away.
    let mut leaving = Client::connect(extra);
    assert_eq!(leaving.get("/", "").status, 200);
    reload(&p, &base);
    wait_count(&p, "1 listener(s) kept, 0 added, 1 closed", 1);
    // Its next request is still answered, with `connection: close`.
    let r = leaving.get("/", "");
    assert_eq!(
        (r.status, r.header("connection").as_deref()),
        (200, Some("close"))
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while TcpStream::connect(("127.0.0.1", extra)).is_ok() {
        assert!(Instant::now() < deadline, "removed listener still open");
        thread::sleep(Duration::from_millis(20));
    }
    let r = kept.get("/", "");
    assert_eq!((r.status, r.header("connection")), (200, None));
}

#[test]
fn server_health_survives_a_reload() {
    let a = Backend::start("a");
    let dead = free_port(); // nothing listens there
    let port = free_port();
    let config = |weight: u32| {
        format!(
            "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
             frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
             backend be\n    server d 127.0.0.1:{dead} check inter 5s\n    server a {} check inter 200ms weight {weight}\n",
            a.addr()
        )
    };
    let p = Proxy::start(&config(1), port);
    p.wait_stderr("Server be/d is DOWN", Duration::from_secs(5))
        .expect("d goes down");
    reload(&p, &config(2));
    wait_count(&p, "reloaded configuration", 1);
    // d is still known DOWN: every request goes to a, none fails, and d's
    // check (every 5 s) has not run yet to find out again.
    for _ in 0..10 {
        let r = get(port, "/", "");
        assert_eq!((r.status, r.text()), (200, "a".to_string()));
    }
    assert_eq!(count_lines(&p, "Server be/d is DOWN"), 1);
}

#[test]
fn sf_handover_under_load_fails_nothing_and_the_old_process_drains_and_exits() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let port = free_port();
    let mut old = Proxy::start(&cfg(port, &[&a]), port);
    let keep = Load::start(port, 2, true);
    let close = Load::start(port, 2, false);
    let mut generations = Vec::new();
    thread::sleep(Duration::from_millis(150));
    for round in 0..5 {
        let next_backend = if round % 2 == 0 { &b } else { &a };
        let new = Proxy::start_args(
            Engine::Switchyard,
            &cfg(port, &[next_backend]),
            port,
            &["-sf".to_string(), old.child.id().to_string()],
        );
        let status = old
            .wait_exit(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("round {round}: old process still running"));
        assert!(status.success(), "round {round}: {status}");
        assert!(
            old.stderr_lines()
                .iter()
                .any(|l| l.contains("Proxy fe stopped")),
            "{:?}",
            old.stderr_lines()
        );
        // Only the new process serves now.
        assert_eq!(get(port, "/", "").text(), next_backend.name);
        generations.push(std::mem::replace(&mut old, new));
        thread::sleep(Duration::from_millis(150));
    }
    let (k, c) = (keep.finish(), close.finish());
    eprintln!(
        "-sf x5: keep-alive {} ok {} failed {:?}; connection per request {} ok {} failed {:?}",
        k.ok,
        k.failed.len(),
        k.failed,
        c.ok,
        c.failed.len(),
        c.failed
    );
    assert!(k.ok > 100 && c.ok > 100, "{} {}", k.ok, c.ok);
    assert!(k.failed.is_empty(), "keep-alive: {:?}", k.failed);
    assert!(
        c.failed.is_empty(),
        "connection per request: {:?}",
        c.failed
    );
}

const UPGRADE: &str = "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn ws_backend(name: &str) -> Backend {
    Backend::with(name, |s: &Seen| {
        if s.header("upgrade").is_some() {
            Reply::Upgrade {
                accept: true,
                extra_headers: String::new(),
            }
        } else {
            Reply::Ok
        }
    })
}

fn echo(c: &mut Client, bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    c.reader.get_mut().write_all(bytes).unwrap();
    let mut buf = vec![0u8; bytes.len()];
    c.reader.read_exact(&mut buf).unwrap();
    buf
}

#[test]
fn websocket_tunnel_survives_a_reload_and_a_soft_stop() {
    let (a, b) = (ws_backend("a"), ws_backend("b"));
    let port = free_port();
    let mut p = Proxy::start(&cfg(port, &[&a]), port);
    let mut ws = Client::connect(port);
    ws.send(UPGRADE.as_bytes());
    assert_eq!(ws.read_response(false).unwrap().status, 101);
    assert_eq!(echo(&mut ws, b"before"), b"before");
    reload(&p, &cfg(port, &[&b]));
    wait_count(&p, "reloaded configuration", 1);
    assert_eq!(echo(&mut ws, b"after-reload"), b"after-reload");
    assert_eq!(get(port, "/", "").text(), "b");
    // Soft stop: the listener closes, the tunnel goes on until it ends.
    p.signal("USR1");
    p.wait_stderr("Proxy fe stopped", Duration::from_secs(2))
        .expect("soft stop");
    thread::sleep(Duration::from_millis(300));
    assert_eq!(p.child.try_wait().unwrap(), None, "waits for the tunnel");
    assert_eq!(echo(&mut ws, b"during-stop"), b"during-stop");
    drop(ws);
    let status = p
        .wait_exit(Duration::from_secs(3))
        .expect("exits once the tunnel ends");
    assert!(status.success());
}

#[test]
fn requests_queued_for_maxconn_across_a_reload_share_one_queue() {
    // s takes one request at a time; the first holds it 600 ms. A request
    // that queues after a reload must get the slot when the first one (from
    // the previous generation) ends, not wait for `timeout queue`.
    let s = Backend::with("s", |seen: &Seen| {
        if seen.path() == "/slow" {
            Reply::After(Duration::from_millis(600), Box::new(Reply::Ok))
        } else {
            Reply::Ok
        }
    });
    let port = free_port();
    let config = |weight: u32| {
        format!(
            "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n    timeout queue 2s\n\
             frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
             backend be\n    server s {} maxconn 1 weight {weight}\n",
            s.addr()
        )
    };
    let p = Proxy::start(&config(1), port);
    let slow = thread::spawn(move || get(port, "/slow", ""));
    thread::sleep(Duration::from_millis(150));
    reload(&p, &config(2));
    wait_count(&p, "reloaded configuration", 1);
    let started = Instant::now();
    let r = get(port, "/queued", "");
    let waited = started.elapsed();
    assert_eq!(r.status, 200);
    assert_eq!(slow.join().unwrap().status, 200);
    assert!(
        waited < Duration::from_millis(1500),
        "served when the slot freed, not at timeout queue: {waited:?}"
    );
}

#[test]
fn changing_a_frontends_mode_rebinds_its_listener() {
    let a = Backend::start("a");
    let port = free_port();
    let http = cfg(port, &[&a]).replace(
        "    default_backend be\n",
        "    option forwardfor\n    default_backend be\n",
    );
    let tcp = format!(
        "defaults\n    timeout connect 1s\n    timeout client 30s\n    timeout server 5s\n\
         frontend fe\n    mode tcp\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    mode tcp\n    server a {}\n",
        a.addr()
    );
    let p = Proxy::start(&http, port);
    assert_eq!(get(port, "/http", "").status, 200);
    reload(&p, &tcp);
    wait_count(&p, "0 listener(s) kept, 1 added, 1 closed", 1);
    // The reload's log line is written once every worker has closed the old
    // listener: from then on every new connection is tunnelled.
    let forwarded = |path: &str| {
        a.requests()
            .iter()
            .find(|s| s.path() == path)
            .map(|s| s.header("x-forwarded-for").is_some())
    };
    assert_eq!(forwarded("/http"), Some(true));
    for i in 0..10 {
        let path = format!("/tcp{i}");
        assert_eq!(get(port, &path, "").status, 200);
        assert_eq!(forwarded(&path), Some(false), "{path}");
    }
}
