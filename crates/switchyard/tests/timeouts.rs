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

#[test]
fn maxconn_queue_serves_in_turn_then_times_out_with_503() {
    let srv = slow(700);
    let port2 = free_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port2}\n    default_backend be\n\
         backend be\n    timeout queue 1s\n    server s {} maxconn 1\n",
        srv.addr()
    );
    let _p2 = Proxy::start(&cfg, port2);
    let t = Instant::now();
    let handles: Vec<_> = (0..3)
        .map(|i| {
            std::thread::sleep(Duration::from_millis(if i == 0 { 0 } else { 50 }));
            std::thread::spawn(move || {
                let r = get(port2, "/q", "");
                (r.status, t.elapsed())
            })
        })
        .collect();
    // In arrival order: the first is served at once, the second waits for the
    // slot (FIFO), the third times out in the queue after `timeout queue`.
    let results: Vec<(u16, Duration)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
    assert_eq!(statuses, [200, 200, 503], "{results:?}");
    assert!(results[1].1 >= Duration::from_millis(1350), "{results:?}");
    assert!(
        results[2].1 >= Duration::from_millis(1050) && results[2].1 < Duration::from_millis(1350),
        "{results:?}"
    );
    assert!(srv.requests().len() == 2);
}

#[test]
fn full_server_queue_sends_persisted_requests_elsewhere() {
    let slow = Backend::with("one", |_| {
        Reply::After(Duration::from_millis(800), Box::new(Reply::Ok))
    });
    let other = Backend::start("two");
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    timeout queue 3s\n    option redispatch\n    cookie SRV insert\n\
             server one {} cookie A maxconn 1 maxqueue 1\n    server two {} cookie B\n",
        slow.addr(),
        other.addr()
    );
    let _p = Proxy::start(&cfg, port);
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let h = std::thread::spawn(move || get(port, "/", "Cookie: SRV=A\r\n").text());
            std::thread::sleep(Duration::from_millis(100));
            h
        })
        .collect();
    let bodies: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // One served, one queued behind it, the third finds the queue full and,
    // with `option redispatch`, goes to another server (without it: 503).
    assert_eq!(bodies, ["one", "one", "two"]);
}
