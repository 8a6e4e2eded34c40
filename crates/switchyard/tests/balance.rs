//! Balancing end to end: roundrobin order with weights, per-request balancing
//! on one keep-alive client connection, leastconn preferring the less loaded
//! server, backup and disabled servers.

mod support;

use std::time::Duration;

use support::*;

fn config(port: u16, balance: &str, servers: &str) -> String {
    format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    balance {balance}\n{servers}"
    )
}

#[test]
fn roundrobin_weights_follow_haproxy_order() {
    let (a, b, c) = (
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("c"),
    );
    let port = free_port();
    let servers = format!(
        "    server a {} weight 3\n    server b {} weight 2\n    server c {} weight 1\n",
        a.addr(),
        b.addr(),
        c.addr()
    );
    let _p = Proxy::start(&config(port, "roundrobin", &servers), port);
    let order: Vec<String> = (0..12).map(|_| get(port, "/", "").text()).collect();
    assert_eq!(
        order,
        ["a", "b", "a", "c", "a", "b", "a", "b", "a", "c", "a", "b"]
    );
}

#[test]
fn each_request_on_one_keepalive_connection_is_balanced() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let port = free_port();
    let servers = format!("    server a {}\n    server b {}\n", a.addr(), b.addr());
    let _p = Proxy::start(&config(port, "roundrobin", &servers), port);
    let mut client = Client::connect(port);
    let order: Vec<String> = (0..4).map(|_| client.get("/ka", "").text()).collect();
    assert_eq!(order, ["a", "b", "a", "b"]);
    assert_eq!((a.count(), b.count()), (2, 2));
}

#[test]
fn backend_connections_are_reused_in_keepalive_mode() {
    let a = Backend::start("a");
    let port = free_port();
    let servers = format!("    server a {}\n", a.addr());
    let _p = Proxy::start(&config(port, "roundrobin", &servers), port);
    let mut client = Client::connect(port);
    for _ in 0..5 {
        assert_eq!(client.get("/reuse", "").status, 200);
    }
    let conns: Vec<usize> = a.requests().iter().map(|s| s.conn).collect();
    assert_eq!(conns.len(), 5);
    assert!(
        conns.iter().all(|c| *c == conns[0]),
        "one pooled server connection expected, got {conns:?}"
    );
    // Nothing hop-by-hop is invented in keep-alive mode.
    assert!(a.requests()[0].header("connection").is_none());
}

#[test]
fn leastconn_prefers_the_less_loaded_server() {
    // `/slow` requests hold their server until the gate opens (bounded, so a
    // failing test cannot hang), well inside `timeout server`.
    let gate = std::sync::Arc::new(Gate::default());
    let slow = |name: &'static str| {
        let gate = gate.clone();
        Backend::with(name, move |s| {
            if s.path() == "/slow" {
                gate.wait(Duration::from_secs(20));
            }
            Reply::Ok
        })
    };
    let (a, b, c) = (slow("a"), slow("b"), slow("c"));
    let port = free_port();
    let servers = format!(
        "    server a {}\n    server b {}\n    server c {}\n",
        a.addr(),
        b.addr(),
        c.addr()
    );
    // The access log: a request's line is written after its server slot was
    // released (proxy/forward.rs, step 10).
    let cfg = format!(
        "global\n    log stdout format raw local0\n{}",
        config(port, "leastconn", &servers).replace(
            "timeout server 5s",
            "timeout server 30s\n    log global\n    option httplog"
        )
    );
    let p = Proxy::start(&cfg, port);
    // Occupy two servers with long requests (each waits until the previous
    // one reached its server, so the balancer sees the load).
    let busy = || -> Vec<String> {
        [&a, &b, &c]
            .iter()
            .filter(|s| s.active.load(std::sync::atomic::Ordering::SeqCst) > 0)
            .map(|s| s.name.clone())
            .collect()
    };
    let mut hold = Vec::new();
    for n in 1..=2 {
        hold.push(std::thread::spawn(move || get(port, "/slow", "")));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while busy().len() < n && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let busy = busy();
    assert_eq!(busy.len(), 2, "two servers should be busy");
    // Every short request now goes to the idle one. The proxy releases a
    // request's server slot just after the response's last byte left (as
    // HAProxy does, at the end of the stream), so a client that sends its
    // next request at once can still find the idle server counted busy, and
    // then all three tie: each pick waits until the previous short request
    // was logged, which comes after its slot was released.
    let mut picks = Vec::new();
    for n in 0..3 {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let logged = || {
            p.stdout_lines()
                .iter()
                .filter(|l| l.contains("GET /fast"))
                .count()
        };
        while logged() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "short request {n} not logged: {:?}",
                p.stdout_lines()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        picks.push(get(port, "/fast", "").text());
    }
    // Still held: the picks were made against two loaded servers.
    let held = gate.waiting.load(std::sync::atomic::Ordering::SeqCst);
    gate.set(true);
    let idle: Vec<String> = [&a, &b, &c]
        .iter()
        .map(|s| s.name.clone())
        .filter(|n| !busy.contains(n))
        .collect();
    assert_eq!(held, 2, "the long requests were still in progress");
    assert!(
        picks.iter().all(|p| *p == idle[0]),
        "picks {picks:?}, idle {idle:?}"
    );
    // The long requests were served by the servers seen busy.
    let mut long: Vec<String> = hold
        .into_iter()
        .map(|h| {
            let r = h.join().unwrap();
            assert_eq!(r.status, 200);
            r.text()
        })
        .collect();
    long.sort();
    assert_eq!(long, busy);
}

#[test]
fn backup_only_when_no_active_and_disabled_never() {
    let (a, b, c) = (
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("c"),
    );
    let port = free_port();
    let servers = format!(
        "    server a {} disabled\n    server b {}\n    server c {} backup\n",
        a.addr(),
        b.addr(),
        c.addr()
    );
    let _p = Proxy::start(&config(port, "roundrobin", &servers), port);
    let order: Vec<String> = (0..3).map(|_| get(port, "/", "").text()).collect();
    assert_eq!(order, ["b", "b", "b"]);
    assert_eq!(a.count() + c.count(), 0);
}

#[test]
fn backup_serves_when_actives_are_all_disabled() {
    let (a, b, c) = (
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("c"),
    );
    let port = free_port();
    let servers = format!(
        "    server a {} disabled\n    server b {} backup\n    server c {} backup\n",
        a.addr(),
        b.addr(),
        c.addr()
    );
    let _p = Proxy::start(&config(port, "roundrobin", &servers), port);
    let order: Vec<String> = (0..3).map(|_| get(port, "/", "").text()).collect();
    assert_eq!(
        order,
        ["b", "b", "b"],
        "only the first backup without allbackups"
    );
}
