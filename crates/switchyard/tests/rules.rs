//! `http-request` / `http-response` rules through the proxy: deny pages,
//! redirects, header rewriting in both directions, in HAProxy's order
//! (frontend request rules, `use_backend`, backend request rules; backend
//! response rules, then frontend's).

mod support;

use support::*;

fn start(srv: &Backend) -> (Proxy, u16) {
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n\
             http-request deny if {{ path_beg /deny }}\n\
             http-request deny deny_status 429 if {{ path_beg /limit }}\n\
             http-request redirect location /new if {{ path_beg /old }}\n\
             http-request redirect prefix https://example.com if {{ path_beg /pfx }}\n\
             http-request set-header X-Fe fe\n\
             http-response set-header X-Order fe\n\
             default_backend be\n\
         backend be\n    http-request set-header X-Be yes\n    http-request del-header X-Drop\n\
             http-response set-header X-Order be\n    http-response add-header X-Be-Resp 1\n    server s {}\n",
        srv.addr()
    );
    (Proxy::start(&cfg, port), port)
}

#[test]
fn deny_answers_haproxy_pages_and_keeps_the_client() {
    let srv = Backend::start("s");
    let (_p, port) = start(&srv);
    let mut c = Client::connect(port);
    let r = c.get("/deny", "");
    assert_eq!(r.status_line, "HTTP/1.1 403 Forbidden");
    assert_eq!(r.header("content-length").as_deref(), Some("93"));
    assert!(r
        .text()
        .contains("Request forbidden by administrative rules."));
    let r = c.get("/limit", "");
    assert_eq!(
        (r.status, r.header("content-length").as_deref()),
        (429, Some("117"))
    );
    assert_eq!(srv.count(), 0);
}

#[test]
fn redirects_are_shaped_like_haproxy() {
    let srv = Backend::start("s");
    let (_p, port) = start(&srv);
    let mut c = Client::connect(port);
    let r = c.get("/old", "");
    assert_eq!(
        r.raw_head,
        "HTTP/1.1 302 Found\r\ncontent-length: 0\r\nlocation: /new\r\ncache-control: no-cache\r\n\r\n"
    );
    let r = c.get("/pfx/a?b=1", "");
    assert_eq!(
        r.header("location").as_deref(),
        Some("https://example.com/pfx/a?b=1")
    );
}

#[test]
fn headers_are_rewritten_in_both_directions() {
    let srv = Backend::start("s");
    let (_p, port) = start(&srv);
    let r = get(port, "/x", "X-Drop: 1\r\n");
    assert_eq!(r.status, 200);
    let seen = srv.requests().remove(0);
    assert_eq!(seen.header("x-fe").as_deref(), Some("fe"));
    assert_eq!(seen.header("x-be").as_deref(), Some("yes"));
    assert!(seen.header("x-drop").is_none());
    // Backend response rules run first, the frontend's last (its set-header wins).
    assert_eq!(r.all("x-order"), ["fe"]);
    assert_eq!(r.header("x-be-resp").as_deref(), Some("1"));
}
