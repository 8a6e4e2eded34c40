//! `retries` and `option redispatch` (behaviour reference §0.5, §2.7).

mod support;

use std::time::{Duration, Instant};

use support::*;

/// A port with nothing listening on it.
fn dead_port() -> u16 {
    free_port()
}

fn cfg(port: u16, be_extra: &str, servers: &str) -> String {
    format!(
        "defaults\n    mode http\n    retries 3\n    timeout connect 5000\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n{be_extra}{servers}"
    )
}

#[test]
fn dead_server_without_redispatch_is_retried_then_503() {
    let dead = dead_port();
    let port = free_port();
    let _p = Proxy::start(
        &cfg(port, "", &format!("    server a 127.0.0.1:{dead}\n")),
        port,
    );
    let t = Instant::now();
    let r = get(port, "/", "");
    let took = t.elapsed();
    assert_eq!(r.status, 503);
    // Four attempts, 1 s turn-around between them.
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_millis(4000),
        "{took:?}"
    );
}

#[test]
fn roundrobin_redispatch_moves_to_another_server_at_once() {
    let live = Backend::start("live");
    let dead = dead_port();
    let port = free_port();
    let servers = format!(
        "    server dead 127.0.0.1:{dead}\n    server live {}\n",
        live.addr()
    );
    let _p = Proxy::start(&cfg(port, "    option redispatch\n", &servers), port);
    let t = Instant::now();
    let r = get(port, "/", "");
    assert_eq!((r.status, r.text().as_str()), (200, "live"));
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn persistent_request_is_redispatched_on_the_last_retry() {
    let live = Backend::start("live");
    let dead = dead_port();
    let port = free_port();
    let servers = format!("    cookie SRV insert\n    server dead 127.0.0.1:{dead} cookie D\n    server live {} cookie L\n", live.addr());
    let _p = Proxy::start(&cfg(port, "    option redispatch\n", &servers), port);
    let t = Instant::now();
    let r = get(port, "/", "Cookie: SRV=D\r\n");
    let took = t.elapsed();
    assert_eq!((r.status, r.text().as_str()), (200, "live"));
    assert_eq!(r.header("set-cookie").as_deref(), Some("SRV=L; path=/"));
    // Waits before attempts 2 and 3; the redispatched 4th goes at once (roundrobin).
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_millis(2800),
        "{took:?}"
    );
}

#[test]
fn request_that_reached_a_server_is_not_replayed() {
    let flaky = Backend::with("flaky", |_| Reply::Close);
    let live = Backend::start("live");
    let port = free_port();
    let servers = format!(
        "    server flaky {}\n    server live {}\n",
        flaky.addr(),
        live.addr()
    );
    let _p = Proxy::start(&cfg(port, "    option redispatch\n", &servers), port);
    let r = get(port, "/once", "");
    assert_eq!(r.status, 502);
    assert_eq!((flaky.count(), live.count()), (1, 0));
}
