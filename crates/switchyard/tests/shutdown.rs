//! Process life: `nbthread`, clean exit on SIGTERM/SIGINT with requests in
//! flight finished, bind failures.

mod support;

use std::time::Duration;

use support::*;

fn cfg(port: u16, global: &str, srv: &Backend) -> String {
    format!(
        "global\n{global}defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    server s {}\n",
        srv.addr()
    )
}

#[test]
fn sigterm_finishes_the_request_in_flight_then_exits_zero() {
    let srv = Backend::with("s", |_| {
        Reply::After(Duration::from_millis(800), Box::new(Reply::Ok))
    });
    let port = free_port();
    let mut p = Proxy::start(&cfg(port, "", &srv), port);
    let inflight = std::thread::spawn(move || get(port, "/slow", ""));
    std::thread::sleep(Duration::from_millis(200));
    p.signal("TERM");
    let r = inflight.join().unwrap();
    assert_eq!(
        (r.status, r.header("connection").as_deref()),
        (200, Some("close"))
    );
    let status = p.wait_exit(Duration::from_secs(5)).expect("exited");
    assert!(status.success(), "{status}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "listener closed"
    );
}

#[test]
fn sigint_with_idle_keepalive_client_exits_promptly() {
    let srv = Backend::start("s");
    let port = free_port();
    let mut p = Proxy::start(&cfg(port, "", &srv), port);
    let mut c = Client::connect(port);
    assert_eq!(c.get("/", "").status, 200);
    p.signal("INT");
    let status = p.wait_exit(Duration::from_secs(3)).expect("exited");
    assert!(status.success());
    assert!(c.is_closed(Duration::from_secs(1)));
}

#[test]
fn nbthread_serves_with_one_shared_balancer() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let port = free_port();
    let config = format!(
        "global\n    nbthread 2\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    server a {}\n    server b {}\n",
        a.addr(),
        b.addr()
    );
    let _p = Proxy::start(&config, port);
    let bodies: Vec<String> = (0..20).map(|_| get(port, "/", "").text()).collect();
    let t = tally(&bodies);
    assert_eq!((t["a"], t["b"]), (10, 10), "{bodies:?}");
    let threads = std::fs::read_dir(format!("/proc/{}/task", _p.child.id()))
        .unwrap()
        .count();
    // Worker 0 runs on the main thread, worker 1 on its own (runtime.rs).
    assert_eq!(threads, 2, "2 event loops, the first on the main thread");
}

#[test]
fn bind_failure_is_fatal() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let srv = Backend::start("s");
    let path = std::env::temp_dir().join(format!("switchyard-bindfail-{}.cfg", std::process::id()));
    std::fs::write(&path, cfg(port, "", &srv)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot bind socket"), "{err}");
}

#[test]
fn pidfile_and_soft_stop_handover_with_sf() {
    let srv = Backend::with("s", |_| {
        Reply::After(Duration::from_millis(600), Box::new(Reply::Ok))
    });
    let port = free_port();
    let config = cfg(port, "", &srv);
    let pidfile = std::env::temp_dir().join(format!("switchyard-test-{}.pid", std::process::id()));
    let mut old = Proxy::start_args(
        Engine::Switchyard,
        &config,
        port,
        &["-p".into(), pidfile.display().to_string()],
    );
    // The pid file is written right after binding: the port may accept a
    // moment before it is there.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let written = loop {
        let text = std::fs::read_to_string(&pidfile).unwrap_or_default();
        if text.ends_with('\n') || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(written.trim(), old.child.id().to_string());
    let inflight = std::thread::spawn(move || get(port, "/slow", ""));
    std::thread::sleep(Duration::from_millis(150));
    // The new process binds the same port (SO_REUSEPORT) and tells the old one to finish.
    let _new = Proxy::start_args(
        Engine::Switchyard,
        &config,
        port,
        &["-sf".into(), old.child.id().to_string()],
    );
    assert_eq!(
        inflight.join().unwrap().status,
        200,
        "the old process finished its request"
    );
    let status = old
        .wait_exit(Duration::from_secs(5))
        .expect("old process exited");
    assert!(status.success());
    assert_eq!(
        get(port, "/after", "").status,
        200,
        "the new process serves"
    );
    let _ = std::fs::remove_file(&pidfile);
}

#[test]
fn soft_stop_answers_an_idle_keepalive_connections_next_request_with_close() {
    let srv = Backend::start("s");
    let port = free_port();
    let mut p = Proxy::start(&cfg(port, "", &srv), port);
    let mut c = Client::connect(port);
    assert_eq!(c.get("/", "").status, 200);
    p.signal("USR1");
    p.wait_stderr("Proxy fe stopped", Duration::from_secs(2))
        .expect("soft stop");
    // The listener is gone, but the idle connection still takes a request
    // within the linger and says it closes.
    std::thread::sleep(Duration::from_millis(200));
    let r = c.get("/next", "");
    assert_eq!(
        (r.status, r.header("connection").as_deref()),
        (200, Some("close"))
    );
    assert!(c.is_closed(Duration::from_secs(1)));
    let status = p.wait_exit(Duration::from_secs(3)).expect("exited");
    assert!(status.success());
    assert_eq!(srv.count(), 2);
}

#[test]
fn stop_serves_connections_waiting_for_maxconn_and_in_the_accept_queue() {
    // One worker, frontend maxconn 1: the first client holds the only slot
    // with a slow request, the second is accepted and waits for a slot, the
    // third stays in the kernel's accept queue. A stop serves all three
    // (nothing reset), then the process exits.
    let srv = Backend::with("s", |_| {
        Reply::After(Duration::from_millis(1500), Box::new(Reply::Ok))
    });
    let port = free_port();
    let config = cfg(port, "    nbthread 1\n", &srv).replace(
        "    default_backend be\n",
        "    maxconn 1\n    default_backend be\n",
    );
    let mut p = Proxy::start(&config, port);
    let clients: Vec<_> = (0..3)
        .map(|i| {
            std::thread::sleep(Duration::from_millis(if i == 0 { 0 } else { 100 }));
            std::thread::spawn(move || {
                let mut c = Client::connect(port);
                c.send(format!("GET /{i} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
                c.read_response(false)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    p.signal("TERM");
    for (i, c) in clients.into_iter().enumerate() {
        let r = c.join().unwrap();
        assert_eq!(
            r.as_ref().map(|r| (r.status, r.header("connection"))),
            Some((200, Some("close".to_string()))),
            "client {i} (None: closed without an answer); stderr: {:?}",
            p.stderr_lines()
        );
    }
    let status = p.wait_exit(Duration::from_secs(5)).expect("exited");
    assert!(status.success());
    assert_eq!(srv.count(), 3);
}

/// A `mode tcp` proxy with one open tunnel to a server that holds it; `global` lines first.
fn held_tunnel(global: &str) -> (Proxy, std::net::TcpStream) {
    use std::io::{Read, Write};
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let port = free_port();
    let cfg = format!(
        "global\n{global}defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 60s\n    timeout server 60s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    server s {addr}\n"
    );
    let p = Proxy::start(&cfg, port);
    // The server echoes on every connection (the start-up probe's too) until it is closed.
    std::thread::spawn(move || {
        for mut s in server.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    c.write_all(b"ping").unwrap();
    let mut got = [0u8; 4];
    c.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");
    (p, c)
}

/// `hard-stop-after` bounds a soft stop (SIGUSR1, what `-sf` sends): a tunnel still open
/// when it expires is closed and the process exits; before it expires the tunnel works.
#[test]
fn hard_stop_after_closes_what_is_still_open_when_it_expires() {
    use std::io::{Read, Write};
    let (mut p, mut c) = held_tunnel("    hard-stop-after 1500ms\n");
    let stopped = std::time::Instant::now();
    p.signal("USR1");
    std::thread::sleep(Duration::from_millis(500));
    c.write_all(b"pong").unwrap();
    let mut got = [0u8; 4];
    c.read_exact(&mut got)
        .expect("the tunnel still works during the grace period");
    assert_eq!(&got, b"pong");
    let status = p.wait_exit(Duration::from_secs(5)).expect("exited");
    let took = stopped.elapsed();
    assert!(status.success(), "{status}");
    assert!(
        (Duration::from_millis(1400)..Duration::from_millis(4000)).contains(&took),
        "exited {took:?} after the soft stop, hard-stop-after is 1.5 s"
    );
    let mut rest = Vec::new();
    assert!(
        matches!(c.read_to_end(&mut rest), Ok(0) | Err(_)),
        "the tunnel was closed"
    );
}

/// Without `hard-stop-after`, a soft stop waits for an open tunnel longer than that
/// (up to `runtime::GRACE`, 10 s).
#[test]
fn without_hard_stop_after_a_soft_stop_waits_for_open_tunnels() {
    let (mut p, _c) = held_tunnel("");
    p.signal("USR1");
    assert!(
        p.wait_exit(Duration::from_millis(2500)).is_none(),
        "exited while a tunnel was open and no hard-stop-after was set"
    );
}
