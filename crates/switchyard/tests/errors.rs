//! Error answers shaped byte for byte like HAProxy 2.6's (behaviour reference
//! §0.6, captured from HAProxy 2.6.12), and malformed requests never reaching a
//! server.

mod support;

use std::time::Duration;

use support::*;

const RAW_400: &str = "HTTP/1.1 400 Bad request\r\nContent-length: 90\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n";
const PAGE_503: &str = "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 107\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n\r\n<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n";

fn start(backend: &Backend, extra_be: &str) -> (Proxy, u16) {
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 3s\n    timeout server 1s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    use_backend empty if {{ path_beg /empty }}\n    default_backend be\n\
         backend be\n{extra_be}    server s {}\nbackend empty\n",
        backend.addr()
    );
    (Proxy::start(&cfg, port), port)
}

#[test]
fn malformed_requests_get_raw_400_and_never_reach_a_server() {
    let srv = Backend::start("s");
    let (_p, port) = start(&srv, "");
    let bad: [&[u8]; 6] = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
    ];
    for req in bad {
        let (out, _) = raw_exchange(port, req, Duration::from_secs(2));
        assert_eq!(
            String::from_utf8_lossy(&out),
            RAW_400,
            "for {:?}",
            String::from_utf8_lossy(req)
        );
    }
    assert_eq!(srv.count(), 0);
}

#[test]
fn bad_chunked_body_is_rejected() {
    let srv = Backend::start("s");
    let (_p, port) = start(&srv, "");
    let (out, _) = raw_exchange(
        port,
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        Duration::from_secs(2),
    );
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 400 Bad request\r\n"));
}

#[test]
fn no_server_gives_haproxy_503_and_keeps_the_client() {
    let srv = Backend::start("s");
    let (_p, port) = start(&srv, "");
    let mut c = Client::connect(port);
    let r = c.get("/empty", "");
    assert_eq!(format!("{}{}", r.raw_head, r.text()), PAGE_503);
    assert_eq!(
        c.get("/ok", "").status,
        200,
        "client connection kept after a 503"
    );
}

#[test]
fn invalid_response_gives_502() {
    let srv = Backend::with("s", |_| Reply::Raw(b"NOT HTTP AT ALL\r\n\r\n".to_vec()));
    let (_p, port) = start(&srv, "");
    let r = get(port, "/", "");
    assert_eq!(r.status, 502);
    assert_eq!(r.header("content-length").as_deref(), Some("107"));
    assert!(r
        .text()
        .contains("The server returned an invalid or incomplete response."));
}

#[test]
fn server_closing_without_answer_gives_502() {
    let srv = Backend::with("s", |_| Reply::Close);
    let (_p, port) = start(&srv, "");
    let r = get(port, "/", "");
    assert_eq!(r.status, 502);
    assert_eq!(srv.count(), 1, "not replayed");
}
