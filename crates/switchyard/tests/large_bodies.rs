//! Long bodies through the proxy: moved in bigger reads once they fill the buffer
//! (`proxy::body::BIG_READ`), byte for byte, with the framing still deciding where
//! each body ends, over kept-alive connections on both sides.

mod support;

use support::*;

/// A body of `len` bytes that is not a repetition of 16 or 64 KiB blocks, so that a
/// piece moved twice or skipped shows up.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 4093) as u8)
        .collect()
}

fn start(backend: Backend) -> (Backend, Proxy, u16) {
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    server s {}\n",
        backend.addr()
    );
    let p = Proxy::start(&cfg, port);
    (backend, p, port)
}

fn sized(body: &[u8]) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    r.extend_from_slice(body);
    r
}

fn chunked(body: &[u8], piece: usize) -> Vec<u8> {
    let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for c in body.chunks(piece) {
        r.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        r.extend_from_slice(c);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"0\r\n\r\n");
    r
}

#[test]
fn sized_and_chunked_megabyte_bodies_arrive_whole_and_the_connections_stay_usable() {
    let big = pattern((1 << 20) + 12_345);
    let (sized_reply, chunked_reply) = (sized(&big), chunked(&big, 100_000));
    let srv = Backend::with("s", move |seen| match seen.path() {
        "/sized" => Reply::Raw(sized_reply.clone()),
        "/chunked" => Reply::Raw(chunked_reply.clone()),
        _ => Reply::Raw(sized(b"small")),
    });
    let (srv, _p, port) = start(srv);
    let mut c = Client::connect(port);
    for path in ["/sized", "/small", "/chunked", "/small", "/sized"] {
        let r = c.get(path, "");
        assert_eq!(r.status, 200, "{path}");
        if path == "/small" {
            assert_eq!(r.body, b"small", "{path}");
        } else {
            assert!(r.body == big, "{path}: {} bytes, differs", r.body.len());
        }
    }
    // One client connection and one reused server connection carried all five.
    let seen = srv.requests();
    assert_eq!(seen.len(), 5);
    assert!(
        seen.iter().all(|s| s.conn == seen[0].conn),
        "server connection not reused"
    );
}

#[test]
fn a_long_request_body_reaches_the_server_whole() {
    let body = pattern(700_000);
    let srv = Backend::start("s");
    let (srv, _p, port) = start(srv);
    let mut c = Client::connect(port);
    let mut req = format!(
        "POST /up HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    c.send(&req);
    assert_eq!(c.read_response(false).expect("response").status, 200);
    assert_eq!(c.get("/after", "").status, 200);
    let seen = srv.requests();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[0].body == body,
        "request body differs ({} bytes)",
        seen[0].body.len()
    );
}
