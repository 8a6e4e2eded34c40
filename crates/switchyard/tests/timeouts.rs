//! Timeouts: `server` (504), `http-request` (408), `http-keep-alive` and
//! `client` (silent close), `queue` (503 with `maxconn`).

mod support;

use std::time::{Duration, Instant};

use support::*;

const RAW_408: &str = "HTTP/1.1 408 Request Time-out\r\nContent-length: 110\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n<html><body><h1>408 Request Time-out</h1>\nYour browser didn't send a complete request in time.\n</body></html>\n";

fn start(backend: &Backend, fe_extra: &str, be_extra: &str) -> (Proxy, u16) {
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 3s\n    timeout server 1s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n{fe_extra}    default_backend be\n\
         backend be\n{be_extra}    server s {}\n",
        backend.addr()
    );
    (Proxy::start(&cfg, port), port)
}

fn slow(ms: u64) -> Backend {
    Backend::with("s", move |_| {
        Reply::After(Duration::from_millis(ms), Box::new(Reply::Ok))
    })
}

#[test]
fn server_timeout_gives_504_after_timeout_server() {
    let srv = slow(2500);
    let (_p, port) = start(&srv, "", "");
    let t = Instant::now();
    let r = get(port, "/sleep", "");
    let took = t.elapsed();
    assert_eq!(r.status, 504);
    assert_eq!(r.header("content-length").as_deref(), Some("92"));
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(2000),
        "{took:?}"
    );
}

#[test]
fn http_request_timeout_gives_raw_408() {
    let srv = Backend::start("s");
    let (_p, port) = start(&srv, "    timeout http-request 500ms\n", "");
    let (out, took) = raw_exchange(port, b"GET / HTTP/1.1\r\nHost: x", Duration::from_secs(3));
    assert_eq!(String::from_utf8_lossy(&out), RAW_408);
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert_eq!(srv.count(), 0);
}

#[test]
fn keepalive_idle_connection_closes_silently() {
    let srv = Backend::start("s");
    let (_p, port) = start(&srv, "    timeout http-keep-alive 300ms\n", "");
    let mut c = Client::connect(port);
    assert_eq!(c.get("/", "").status, 200);
    let t = Instant::now();
    assert!(c.is_closed(Duration::from_secs(2)));
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
}

/// Three requests for a one-slot server: the first is served at once, the
/// second waits for the slot (FIFO), the third times out in the queue after
/// `timeout queue`. Each step waits for what it needs to be observable (a
/// request at the server, the queue length on the runtime API), and the
/// server answers when the test opens its gate, not after fixed times that a
/// loaded machine overruns.
#[test]
fn maxconn_queue_serves_in_turn_then_times_out_with_503() {
    let gates: std::sync::Arc<[Gate; 2]> = std::sync::Arc::default();
    let g = gates.clone();
    let srv = Backend::with("s", move |s| {
        match s.path() {
            "/q1" => g[0].wait(Duration::from_secs(15)),
            "/q2" => g[1].wait(Duration::from_secs(15)),
            _ => {}
        }
        Reply::Ok
    });
    let port2 = free_port();
    let sock = std::env::temp_dir().join(format!("sy-timeouts-{}.sock", std::process::id()));
    let cfg = format!(
        "global\n    stats socket {}\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 20s\n    timeout server 20s\n\
         frontend fe\n    bind 127.0.0.1:{port2}\n    default_backend be\n\
         backend be\n    timeout queue 1500ms\n    server s {} maxconn 1\n",
        sock.display(),
        srv.addr()
    );
    let _p2 = Proxy::start(&cfg, port2);
    let queued = || qcur(&sock, "be,BACKEND,");
    let send = |path: &'static str| {
        std::thread::spawn(move || {
            let t = Instant::now();
            let r = get(port2, path, "");
            (r.status, t.elapsed())
        })
    };
    let first = send("/q1");
    until("first at the server", &|| srv.count() == 1);
    let second = send("/q2");
    until("second queued", &|| queued() == "1");
    let third = send("/q3");
    until("third queued", &|| queued() == "2");
    // The slot frees: the head of the queue (the second) takes it.
    gates[0].set(true);
    until("second at the server", &|| srv.count() == 2);
    assert_eq!(srv.requests()[1].path(), "/q2", "FIFO");
    let first = first.join().unwrap();
    // The third stays queued behind the busy slot until `timeout queue`.
    let third = third.join().unwrap();
    gates[1].set(true);
    let second = second.join().unwrap();
    let results = [first, second, third];
    let statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
    assert_eq!(statuses, [200, 200, 503], "{results:?}");
    // Timed from its own send: not before `timeout queue`, and well before
    // the client or server timeouts (20 s).
    assert!(
        results[2].1 >= Duration::from_millis(1500) && results[2].1 < Duration::from_secs(5),
        "{results:?}"
    );
    assert_eq!(srv.requests().len(), 2);
    let _ = std::fs::remove_file(&sock);
}

/// The server holds its request until the test opens a gate; the second
/// request is sent once the first is at the server, the third once the
/// second is queued (runtime API `qcur`), instead of 100 ms apart against an
/// 800 ms service time.
#[test]
fn full_server_queue_sends_persisted_requests_elsewhere() {
    let gate = std::sync::Arc::new(Gate::default());
    let g = gate.clone();
    let slow = Backend::with("one", move |_| {
        g.wait(Duration::from_secs(15));
        Reply::Ok
    });
    let other = Backend::start("two");
    let port = free_port();
    let sock = std::env::temp_dir().join(format!("sy-timeouts-full-{}.sock", std::process::id()));
    let cfg = format!(
        "global\n    stats socket {}\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 20s\n    timeout server 20s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    timeout queue 10s\n    option redispatch\n    cookie SRV insert\n\
             server one {} cookie A maxconn 1 maxqueue 1\n    server two {} cookie B\n",
        sock.display(),
        slow.addr(),
        other.addr()
    );
    let _p = Proxy::start(&cfg, port);
    let queued_on_one = || qcur(&sock, "be,one,");
    let send = || std::thread::spawn(move || get(port, "/", "Cookie: SRV=A\r\n").text());
    let first = send();
    until("first at the server", &|| slow.count() == 1);
    let second = send();
    until("second queued", &|| queued_on_one() == "1");
    // The queue is full: the third is redispatched without waiting.
    let third = send().join().unwrap();
    gate.set(true);
    let bodies = [first.join().unwrap(), second.join().unwrap(), third];
    // One served, one queued behind it, the third finds the queue full and,
    // with `option redispatch`, goes to another server (without it: 503).
    assert_eq!(bodies, ["one", "one", "two"]);
    let _ = std::fs::remove_file(&sock);
}

/// `qcur` of the `show stat` row starting with `row` on the runtime API socket `sock`.
fn qcur(sock: &std::path::Path, row: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
    s.write_all(b"show stat\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let line = out.lines().find(|l| l.starts_with(row));
    line.and_then(|l| l.split(',').nth(2))
        .unwrap_or("")
        .to_owned()
}

/// Waits (bounded, 10 s) until `cond` holds; panics naming `what` otherwise.
fn until(what: &str, cond: &dyn Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "never {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
