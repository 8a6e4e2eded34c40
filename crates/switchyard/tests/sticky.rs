//! Cookie persistence through the proxy (`cookie NAME insert`): where the
//! cookie is inserted, which server a cookie selects, invalid cookies and
//! cookies naming a DOWN server (behaviour reference §0.4, §0.5).

mod support;

use std::time::Duration;

use support::*;

#[test]
fn bogus_cookie_is_rebalanced_and_reinserted_with_cookie_forwarded_unchanged() {
    let seed = Seed::start();
    let r = get(
        seed.port,
        "/engine.io/",
        "Cookie: a=1; SRVNAME=BOGUS; b=2\r\n",
    );
    let expect = if r.text() == "socket-1" {
        "SRVNAME=S1; path=/"
    } else {
        "SRVNAME=S2; path=/"
    };
    assert_eq!(r.header("set-cookie").as_deref(), Some(expect));
    let seen = seed
        .socket
        .iter()
        .flat_map(|b| b.requests())
        .next()
        .unwrap();
    assert_eq!(
        seen.header("cookie").as_deref(),
        Some("a=1; SRVNAME=BOGUS; b=2")
    );
}

#[test]
fn valid_cookie_wins_over_balancing_every_time() {
    let seed = Seed::start();
    for _ in 0..4 {
        let r = get(seed.port, "/engine.io/", "Cookie: SRVNAME=S2; other=1\r\n");
        assert_eq!(r.text(), "socket-2");
        assert!(r.header("set-cookie").is_none());
    }
    assert_eq!(
        seed.socket[1].requests()[0].header("cookie").as_deref(),
        Some("SRVNAME=S2; other=1")
    );
}

#[test]
fn cookie_for_a_down_server_is_rebalanced_with_a_new_cookie() {
    let live = Backend::start("live");
    let dead = free_port();
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode http\n    retries 3\n    timeout connect 5s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    balance leastconn\n    cookie SRVNAME insert\n\
             server node-1 {} cookie S1 check inter 300ms\n    server node-2 127.0.0.1:{dead} cookie S2 check inter 300ms\n",
        live.addr()
    );
    let p = Proxy::start(&cfg, port);
    p.wait_stderr("Server be/node-2 is DOWN", Duration::from_secs(3))
        .expect("node-2 DOWN");
    let t = std::time::Instant::now();
    let r = get(port, "/", "Cookie: SRVNAME=S2\r\n");
    assert_eq!(r.text(), "live");
    assert_eq!(
        r.header("set-cookie").as_deref(),
        Some("SRVNAME=S1; path=/")
    );
    assert!(t.elapsed() < Duration::from_millis(500));
}
