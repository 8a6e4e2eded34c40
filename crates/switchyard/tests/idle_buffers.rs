//! Requests on connections that hold no read buffer while idle (`proxy::bufpool`): a
//! connection takes a buffer from its thread's pool when bytes arrive and gives it back
//! once they are consumed; bytes pipelined behind a request, a head arriving in pieces and
//! a body arriving after its head must all survive the give-backs.

mod support;

use std::io::Write;
use std::time::Duration;

use support::*;

fn setup() -> (Backend, Proxy, u16) {
    setup_with(Backend::start("s"))
}

/// A proxy in front of `srv`.
fn setup_with(srv: Backend) -> (Backend, Proxy, u16) {
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    server s {}\n",
        srv.addr()
    );
    let p = Proxy::start(&cfg, port);
    (srv, p, port)
}

/// Writes `bytes` in pieces of `piece` bytes, each its own segment (no Nagle, a pause
/// between them), so the proxy reads them one by one.
fn send_in_pieces(c: &mut Client, bytes: &[u8], piece: usize) {
    let s = c.reader.get_mut();
    s.set_nodelay(true).unwrap();
    for part in bytes.chunks(piece) {
        s.write_all(part).unwrap();
        s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (srv, _p, port) = setup();
    let mut c = Client::connect(port);
    assert_eq!(c.get("/first", "").status, 200);
    // Three requests in one write, the second with a body: the bytes behind each
    // request stay with the connection while it is handled.
    c.send(
        b"GET /p1 HTTP/1.1\r\nHost: t\r\n\r\n\
          POST /p2 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello\
          GET /p3 HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    for _ in 0..3 {
        assert_eq!(c.read_response(false).expect("response").status, 200);
    }
    // And the connection, idle again, serves the next one.
    assert_eq!(c.get("/last", "").status, 200);
    let seen = srv.requests();
    let paths: Vec<&str> = seen.iter().map(|s| s.path()).collect();
    assert_eq!(paths, ["/first", "/p1", "/p2", "/p3", "/last"]);
    assert_eq!(seen[2].body, b"hello");
}

#[test]
fn a_request_arriving_in_small_pieces_is_served() {
    let (srv, _p, port) = setup();
    let mut c = Client::connect(port);
    assert_eq!(c.get("/warm", "").status, 200);
    // An idle keep-alive connection (no buffer) gets its next head in 7-byte pieces,
    // then a body after its head.
    let head = b"POST /pieces HTTP/1.1\r\nHost: t\r\nX-Long: abcdefghijklmnopqrstuvwxyz\r\n\
                 Content-Length: 11\r\n\r\n";
    send_in_pieces(&mut c, head, 7);
    send_in_pieces(&mut c, b"hello world", 3);
    assert_eq!(c.read_response(false).expect("response").status, 200);
    // The first request of a fresh connection, byte by byte.
    let mut fresh = Client::connect(port);
    send_in_pieces(&mut fresh, b"GET /bytes HTTP/1.1\r\nHost: t\r\n\r\n", 1);
    assert_eq!(fresh.read_response(false).expect("response").status, 200);
    let seen = srv.requests();
    let paths: Vec<&str> = seen.iter().map(|s| s.path()).collect();
    assert_eq!(paths, ["/warm", "/pieces", "/bytes"]);
    assert_eq!(seen[1].body, b"hello world");
    assert_eq!(
        seen[1].header("x-long").as_deref(),
        Some("abcdefghijklmnopqrstuvwxyz")
    );
}

/// Many connections alternating on the two threads' pools: each response matches its
/// request (a buffer given back while holding bytes would mix connections' data).
#[test]
fn interleaved_connections_keep_their_own_bytes() {
    let srv = Backend::with("s", |seen| {
        Reply::Raw(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{}",
                seen.path().len(),
                seen.path()
            )
            .into_bytes(),
        )
    });
    let (_srv, _p, port) = setup_with(srv);
    let mut clients: Vec<Client> = (0..20).map(|_| Client::connect(port)).collect();
    for round in 0..5 {
        // Half of each head now, the rest after every other client sent its half.
        for (i, c) in clients.iter_mut().enumerate() {
            c.send(format!("GET /c{i}/r{round} HTTP/1.1\r\n").as_bytes());
        }
        for (i, c) in clients.iter_mut().enumerate() {
            c.send(b"Host: t\r\n\r\n");
            let r = c.read_response(false).expect("response");
            assert_eq!(r.text(), format!("/c{i}/r{round}"));
        }
    }
}
