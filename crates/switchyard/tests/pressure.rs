//! `maxconn` pressure (issue 6, RELIABILITY.md R1; `proxy::pressure`): when the
//! cap is full, a new connection takes the slot of the connection that has waited
//! longest for a request head (at least 250 ms); connections whose request is in
//! flight are never closed, and nothing is closed without pressure.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{free_port, Backend, Client, Proxy, Reply};

fn config(port: u16, origin: u16, global: &str, fe: &str) -> String {
    format!(
        "global\n    nbthread 1\n{global}\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n    timeout http-request 5s\n    timeout http-keep-alive 10s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n{fe}    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{origin}\n"
    )
}

/// Reads what a connection got until EOF (true) or `wait` passes (false).
fn drain(s: &mut TcpStream, wait: Duration) -> (Vec<u8>, bool) {
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let start = Instant::now();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while start.elapsed() < wait {
        match s.read(&mut chunk) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, true),
            Err(_) => {}
        }
    }
    (got, false)
}

/// Twice the cap in slow-header connections: a legitimate request is answered
/// within about a second, not after `timeout http-request` (5 s); the evicted
/// connections get the 408 of an expired header deadline.
#[test]
fn slow_headers_give_their_slots_to_new_clients() {
    let origin = Backend::start("o");
    let port = free_port();
    let cfg = config(
        port,
        origin.port,
        "    log stdout format raw local0\n",
        "    maxconn 20\n    option httplog\n    log global\n",
    );
    let p = Proxy::start(&cfg, port);
    let mut attackers: Vec<TcpStream> = (0..40)
        .filter_map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
            s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").ok()?;
            Some(s)
        })
        .collect();
    assert_eq!(attackers.len(), 40);
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..5 {
        let t = Instant::now();
        let r = Client::connect(port).get("/", "Connection: close\r\n");
        assert_eq!(r.status, 200);
        assert!(
            t.elapsed() < Duration::from_millis(1200),
            "answered after {:?} (timeout http-request is 5 s)",
            t.elapsed()
        );
    }
    // Evicted attackers got the raw 408 and were closed, well before 5 s.
    let mut evicted = 0;
    for s in &mut attackers {
        let (got, closed) = drain(s, Duration::from_millis(20));
        if closed {
            let text = String::from_utf8_lossy(&got);
            assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
            evicted += 1;
        }
    }
    assert!(evicted >= 5, "{evicted} attack connections closed");
    // Logged as an expired header deadline: 408, nothing sent, `cR--`.
    let logged_408 = || {
        p.stdout_lines()
            .iter()
            .filter(|l| l.contains(" 408 0 - - cR-- "))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while logged_408() < evicted && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(logged_408() >= evicted, "{:?}", p.stdout_lines());
    assert_eq!(origin.count(), 5, "no attack request reached the origin");
}

/// Under pressure, an idle keep-alive connection is closed silently; one whose
/// response is in flight (slow origin) is not, and gets its response.
#[test]
fn idle_keep_alive_is_evicted_but_not_a_request_in_flight() {
    let origin = Backend::with("o", |seen| {
        if seen.path() == "/slow" {
            Reply::After(Duration::from_millis(1500), Box::new(Reply::Ok))
        } else {
            Reply::Ok
        }
    });
    let port = free_port();
    let _p = Proxy::start(&config(port, origin.port, "    maxconn 2\n", ""), port);
    let mut idle = Client::connect(port);
    assert_eq!(idle.get("/", "").status, 200);
    // The slow request starts after the idle one: it has waited less for a
    // head, but it is busy, so it is never a candidate.
    let mut busy = Client::connect(port);
    busy.send(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n");
    std::thread::sleep(Duration::from_millis(400));
    let t = Instant::now();
    let r = Client::connect(port).get("/", "Connection: close\r\n");
    assert_eq!(r.status, 200);
    assert!(
        t.elapsed() < Duration::from_millis(800),
        "{:?}",
        t.elapsed()
    );
    let (got, closed) = drain(idle.reader.get_mut(), Duration::from_millis(500));
    assert!(
        closed && got.is_empty(),
        "idle keep-alive closed silently: {got:?}"
    );
    let slow = busy
        .read_response(false)
        .expect("in-flight response delivered");
    assert_eq!(slow.status, 200);
}

/// Without pressure, idle and slow-header connections are left alone until
/// their timeouts.
#[test]
fn nothing_is_evicted_below_the_cap() {
    let origin = Backend::start("o");
    let port = free_port();
    let _p = Proxy::start(&config(port, origin.port, "", "    maxconn 10\n"), port);
    let mut idle: Vec<Client> = (0..4).map(|_| Client::connect(port)).collect();
    for c in &mut idle {
        assert_eq!(c.get("/", "").status, 200);
    }
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(600));
    for _ in 0..4 {
        assert_eq!(
            Client::connect(port)
                .get("/", "Connection: close\r\n")
                .status,
            200
        );
    }
    for c in &mut idle {
        assert_eq!(c.get("/", "").status, 200, "idle connection kept");
    }
    slow.write_all(b"\r\n").unwrap();
    let (got, _) = drain(&mut slow, Duration::from_millis(500));
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
}
