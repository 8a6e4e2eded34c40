//! The reference topology (`../shared/seed/haproxy.cfg`, ports substituted)
//! end to end, with the expectations the behaviour reference observed on
//! HAProxy 2.6.12 (§0.3, §5 "Seed end-to-end tests").

mod support;

use support::*;

#[test]
fn http_traffic_alternates_and_server_sees_haproxy_shaped_request() {
    let seed = Seed::start();
    let mut client = Client::connect(seed.port);
    let mut bodies = Vec::new();
    for _ in 0..4 {
        let r = client.get("/foo", "User-Agent: t\r\nAccept: */*\r\n");
        assert_eq!(r.status, 200);
        assert!(
            r.header("connection").is_none(),
            "client side stays keep-alive: {:?}",
            r.headers
        );
        bodies.push(r.text());
    }
    assert_eq!(bodies, ["http-1", "http-2", "http-1", "http-2"]);
    let seen = &seed.http[0].requests()[0];
    assert_eq!(seen.request_line, "GET /foo HTTP/1.1");
    assert_eq!(
        seen.normalised_headers(),
        [
            "host: test",
            "user-agent: t",
            "accept: */*",
            "x-forwarded-for: 127.0.0.1",
            "connection: close"
        ]
    );
    // Header names are lower-cased on the wire, as HAProxy's HTX does.
    assert!(seen
        .headers
        .iter()
        .all(|(n, _)| n.chars().all(|c| !c.is_ascii_uppercase())));
    // http-server-close: every request gets its own server connection
    // (health checks open connections too, so only distinctness is checked).
    let conns: Vec<usize> = seed.http[0].requests().iter().map(|s| s.conn).collect();
    assert_eq!(conns.len(), 2);
    assert_ne!(conns[0], conns[1]);
}

#[test]
fn engineio_prefix_goes_to_socket_servers_with_cookie() {
    let seed = Seed::start();
    let r = get(seed.port, "/engine.io/?EIO=4&transport=polling", "");
    assert_eq!(r.status, 200);
    let cookie = r.header("set-cookie").expect("persistence cookie inserted");
    let node = if r.text() == "socket-1" { "S1" } else { "S2" };
    assert_eq!(cookie, format!("SRVNAME={node}; path=/"));
    assert_eq!(seed.http[0].count() + seed.http[1].count(), 0);
    // The cookie pins the client; the server sees it unchanged; no new Set-Cookie.
    for _ in 0..3 {
        let again = get(
            seed.port,
            "/engine.io/?EIO=4",
            &format!("Cookie: SRVNAME={node}\r\n"),
        );
        assert_eq!(again.text(), r.text());
        assert!(again.header("set-cookie").is_none());
    }
    let target = if node == "S1" {
        &seed.socket[0]
    } else {
        &seed.socket[1]
    };
    let last = target.requests().pop().unwrap();
    assert_eq!(
        last.header("cookie").as_deref(),
        Some(format!("SRVNAME={node}").as_str())
    );
    assert_eq!(last.header("connection").as_deref(), Some("close"));
}

#[test]
fn http10_client_gets_close_and_request_keeps_its_version() {
    let seed = Seed::start();
    let (raw, _) = raw_exchange(
        seed.port,
        b"GET /v10 HTTP/1.0\r\n\r\n",
        std::time::Duration::from_secs(3),
    );
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("\r\nconnection: close\r\n"), "{text}");
    assert_eq!(seed.http[0].requests()[0].request_line, "GET /v10 HTTP/1.0");
}
