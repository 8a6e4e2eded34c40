//! Connection modes (behaviour reference §2.10): what the server is told, which
//! side closes, HTTP/1.0 clients, pretend-keepalive.

mod support;

use std::time::Duration;

use support::*;

fn start(fe_opts: &str, be_opts: &str) -> (Backend, Proxy, u16) {
    let srv = Backend::start("s");
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n{fe_opts}    default_backend be\n\
         backend be\n{be_opts}    server s {}\n",
        srv.addr()
    );
    let p = Proxy::start(&cfg, port);
    (srv, p, port)
}

#[test]
fn keepalive_default_reuses_server_connection_and_strips_client_connection_header() {
    let (srv, _p, port) = start("", "");
    let mut c = Client::connect(port);
    c.get("/1", "Connection: keep-alive\r\n");
    c.get("/2", "");
    let seen = srv.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].conn, seen[1].conn);
    assert!(seen.iter().all(|s| s.header("connection").is_none()));
}

#[test]
fn server_close_sends_close_upstream_and_keeps_client() {
    let (srv, _p, port) = start("    option http-server-close\n", "");
    let mut c = Client::connect(port);
    let r1 = c.get("/1", "");
    let r2 = c.get("/2", "");
    assert!(r1.header("connection").is_none() && r2.header("connection").is_none());
    let seen = srv.requests();
    assert!(seen
        .iter()
        .all(|s| s.header("connection").as_deref() == Some("close")));
    assert_ne!(seen[0].conn, seen[1].conn);
}

#[test]
fn httpclose_in_backend_closes_only_the_server_side() {
    let (srv, _p, port) = start("", "    option httpclose\n");
    let mut c = Client::connect(port);
    assert!(c.get("/1", "").header("connection").is_none());
    assert_eq!(c.get("/2", "").status, 200);
    assert_eq!(
        srv.requests()[0].header("connection").as_deref(),
        Some("close")
    );
}

#[test]
fn httpclose_in_frontend_closes_the_client() {
    let (_srv, _p, port) = start("    option httpclose\n", "");
    let mut c = Client::connect(port);
    let r = c.get("/1", "");
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    assert!(c.is_closed(Duration::from_secs(2)));
}

#[test]
fn pretend_keepalive_sends_no_connection_header_but_still_closes() {
    let (srv, _p, port) = start(
        "",
        "    option httpclose\n    option http-pretend-keepalive\n",
    );
    let mut c = Client::connect(port);
    c.get("/1", "");
    c.get("/2", "");
    let seen = srv.requests();
    assert!(
        seen.iter().all(|s| s.header("connection").is_none()),
        "{seen:?}"
    );
    assert_ne!(seen[0].conn, seen[1].conn, "server connection not reused");
}

#[test]
fn http10_keepalive_client_is_kept_with_keepalive_header() {
    let (_srv, _p, port) = start("", "");
    let mut c = Client::connect(port);
    c.send(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.header("connection").as_deref(), Some("keep-alive"));
    c.send(b"GET /b HTTP/1.0\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    assert!(c.is_closed(Duration::from_secs(2)));
}

#[test]
fn client_connection_close_is_honoured() {
    let (_srv, _p, port) = start("", "");
    let mut c = Client::connect(port);
    let r = c.get("/", "Connection: close\r\n");
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    assert!(c.is_closed(Duration::from_secs(2)));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (srv, _p, port) = start("", "");
    let mut c = Client::connect(port);
    c.send(b"GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /p2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /p3 HTTP/1.1\r\nHost: x\r\n\r\n");
    for _ in 0..3 {
        assert_eq!(c.read_response(false).unwrap().status, 200);
    }
    let paths: Vec<String> = srv.requests().iter().map(|s| s.path().to_owned()).collect();
    assert_eq!(paths, ["/p1", "/p2", "/p3"]);
    assert_eq!(srv.requests()[1].body, b"abc");
}

#[test]
fn chunked_request_and_response_bodies_pass_through() {
    let srv = Backend::with("s", |_| {
        Reply::Raw(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n".to_vec())
    });
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\nbackend be\n    server s {}\n",
        srv.addr()
    );
    let _p = Proxy::start(&cfg, port);
    let mut c = Client::connect(port);
    c.send(
        b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwxyz\r\n0\r\n\r\n",
    );
    let r = c.read_response(false).unwrap();
    assert_eq!(r.text(), "abcde");
    assert_eq!(srv.requests()[0].body, b"wxyz");
    assert_eq!(c.get("/again", "").status, 200, "connection still usable");
}

#[test]
fn connection_tokens_are_consumed_like_haproxy() {
    let (srv, _p, port) = start("", "");
    let mut c = Client::connect(port);
    c.get("/t", "Connection: keep-alive, foo\r\nFoo: bar\r\n");
    c.send(b"GET /v10 HTTP/1.0\r\n\r\n");
    c.read_response(false).unwrap();
    let seen = srv.requests();
    // Only the persistence tokens are consumed; others stay in place.
    assert_eq!(
        seen[0].normalised_headers(),
        ["host: test", "connection: foo", "foo: bar"]
    );
    // An HTTP/1.0 request in keep-alive mode asks the server to keep alive.
    assert_eq!(seen[1].normalised_headers(), ["connection: keep-alive"]);
}

#[test]
fn framing_headers_are_normalised_before_forwarding() {
    let srv = Backend::with("s", |_| {
        Reply::Raw(b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n".to_vec())
    });
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\nbackend be\n    server s {}\n",
        srv.addr()
    );
    let _p = Proxy::start(&cfg, port);
    let mut c = Client::connect(port);
    c.send(b"POST /cl HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc");
    let r = c.read_response(false).unwrap();
    // Chunked wins over a length in the response; the length is not forwarded.
    assert_eq!(
        (r.text().as_str(), r.header("content-length")),
        ("ok", None)
    );
    let seen = srv.requests().remove(0);
    assert_eq!(seen.all("content-length"), ["3"], "one length forwarded");
    assert_eq!(seen.body, b"abc");
}

#[test]
fn server_without_port_uses_the_client_destination_port() {
    // The backend listens on 127.0.0.1:P, the frontend on 127.0.0.2:P.
    let srv = Backend::start("s");
    let port = srv.port;
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.2:{port}\n    default_backend be\nbackend be\n    server s 127.0.0.1\n"
    );
    let _p = Proxy::start(&cfg, port);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let stream = loop {
        match std::net::TcpStream::connect(("127.0.0.2", port)) {
            Ok(s) => break s,
            Err(e) if std::time::Instant::now() > deadline => panic!("{e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut c = Client {
        reader: std::io::BufReader::new(stream),
    };
    let r = c.get("/np", "");
    assert_eq!((r.status, r.text().as_str()), (200, "s"));
}

#[test]
fn pooled_connections_closed_by_the_server_are_released() {
    // A server that answers one request keep-alive, then closes after 100 ms.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let srv_port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut s = s;
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
                std::thread::sleep(Duration::from_millis(100));
            });
        }
    });
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\nbackend be\n    server s 127.0.0.1:{srv_port}\n"
    );
    let p = Proxy::start(&cfg, port);
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", p.child.id()))
            .unwrap()
            .count()
    };
    std::thread::sleep(Duration::from_millis(200));
    let before = fds();
    assert_eq!(get(port, "/", "").status, 200);
    // The idle pooled connection is closed once the periodic purge sees the server's FIN.
    let deadline = std::time::Instant::now() + Duration::from_secs(6);
    while fds() > before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(fds(), before, "no socket left behind");
}

/// The idle server-connection pool keeps every connection that carried a
/// request at the same time (HAProxy's `pool-max-conn` is unlimited by
/// default): 100 clients in flight at once, then 100 again, and the second
/// wave opens no new server connection. A pool capped at 64 opened 36 more.
#[test]
fn idle_pool_keeps_more_server_connections_than_64() {
    const N: usize = 100;
    let srv = Backend::with("s", |_| {
        Reply::After(Duration::from_millis(800), Box::new(Reply::Ok))
    });
    let port = free_port();
    let cfg = format!(
        "global\n    nbthread 1\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    server s {}\n",
        srv.addr()
    );
    let _p = Proxy::start(&cfg, port);
    let mut clients: Vec<Client> = (0..N).map(|_| Client::connect(port)).collect();
    let wave = |clients: &mut Vec<Client>| {
        let barrier = std::sync::Barrier::new(N);
        std::thread::scope(|s| {
            for c in clients.iter_mut() {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    assert_eq!(c.get("/", "").status, 200);
                });
            }
        });
    };
    wave(&mut clients);
    let first = srv.connections.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        first, N,
        "every request of the first wave was in flight at once"
    );
    wave(&mut clients);
    let second = srv.connections.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        second, first,
        "the second wave reused the pooled connections"
    );
}

/// In `http-server-close` mode the proxy closes the server connection right after the
/// response, even when the server keeps it open (it ignores `Connection: close`) and the
/// client's connection stays open and idle. The close is deferred to the end of the
/// worker's pass over its ready tasks (`upstream::close_later`, run when the worker
/// parks): this checks that the deferred close happens then, not at the once-a-second
/// sweep that is its backstop.
#[test]
fn server_close_closes_the_server_connection_right_after_the_response() {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::Instant;

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    option http-server-close\n    default_backend be\n\
         backend be\n    server s {addr}\n"
    );
    let _p = Proxy::start(&cfg, port);
    let mut c = Client::connect(port);
    for i in 0..5 {
        let mut srv = {
            let mut got = None;
            std::thread::scope(|s| {
                let t = s.spawn(|| listener.accept().unwrap().0);
                c.send(format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
                got = Some(t.join().unwrap());
            });
            got.unwrap()
        };
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(srv.read(&mut byte).unwrap(), 1, "request head cut short");
            head.push(byte[0]);
        }
        // A keep-alive answer: only the proxy can close this connection.
        srv.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .unwrap();
        let sent = Instant::now();
        let r = c.read_response(false).expect("the response");
        assert_eq!((r.status, r.text()), (200, "ok".to_string()));
        srv.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let n = srv
            .read(&mut byte)
            .expect("EOF from the proxy, not a timeout");
        assert_eq!(n, 0, "stray byte from the proxy");
        let waited = sent.elapsed();
        assert!(
            waited < Duration::from_millis(300),
            "request {i}: the server connection closed {waited:?} after the response"
        );
    }
}
