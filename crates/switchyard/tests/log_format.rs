//! Custom `log-format` access-log lines, compared with HAProxy's for the
//! same format (fields that carry timings, ports or dates are left out of
//! the format so the two lines must be equal).

mod support;

use std::time::{Duration, Instant};

use support::*;

const FORMAT: &str = "%ci %{+Q}r %HM %HP %HQ %HV %ST %b/%s %tsc %ts %rc %sq/%bq %{+Q}HU %f %CC %%";

fn line_for(engine: Engine, srv: &Backend) -> String {
    let port = free_port();
    let cfg = format!(
        "global\n    log stdout format raw local0\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    log global\n    log-format \"{FORMAT}\"\n    default_backend be\n\
         backend be\n    server s1 {}\n",
        srv.addr()
    );
    let p = Proxy::start_engine(engine, &cfg, port);
    assert_eq!(get(port, "/lf/a?x=1&y=2", "").status, 200);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if let Some(l) = p.stdout_lines().into_iter().find(|l| l.contains("/lf/")) {
            return l;
        }
        assert!(
            Instant::now() < deadline,
            "{engine:?} logged nothing: {:?}",
            p.stdout_lines()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn custom_log_format_written_like_haproxy() {
    let srv = Backend::start("s1");
    let ours = line_for(Engine::Switchyard, &srv);
    assert_eq!(
        ours,
        "127.0.0.1 \"GET /lf/a?x=1&y=2 HTTP/1.1\" GET /lf/a ?x=1&y=2 HTTP/1.1 200 be/s1 ---- -- 0 0/0 \"/lf/a?x=1&y=2\" fe - %"
    );
    if haproxy_available() {
        assert_eq!(
            ours,
            line_for(Engine::Haproxy, &srv),
            "differs from HAProxy"
        );
    }
}

/// `option dontlognull`: the harness's start-up probe (a connection that
/// sends nothing) and a silent client leave no line; requests still do.
fn logged_with_dontlognull(engine: Engine, srv: &Backend) -> Vec<String> {
    let port = free_port();
    let cfg = format!(
        "global\n    log stdout format raw local0\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    log global\n    option httplog\n    option dontlognull\n    default_backend be\n\
         backend be\n    server s1 {}\n",
        srv.addr()
    );
    let p = Proxy::start_engine(engine, &cfg, port);
    drop(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
    // A partial request is not null: logged (400 CR--).
    let mut partial = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(&mut partial, b"GET /part").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drop(partial);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(get(port, "/dln", "").status, 200);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !p.stdout_lines().iter().any(|l| l.contains("/dln")) {
        assert!(
            Instant::now() < deadline,
            "{engine:?}: {:?}",
            p.stdout_lines()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Keep what does not vary between runs: status, termination state, request.
    p.stdout_lines()
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            format!("{} {} {}", f[5], f[9], &l[l.find('"').unwrap_or(0)..])
        })
        .collect()
}

#[test]
fn dontlognull_skips_null_connections_like_haproxy() {
    let srv = Backend::start("s1");
    let ours = logged_with_dontlognull(Engine::Switchyard, &srv);
    assert_eq!(
        ours,
        ["400 CR-- \"<BADREQ>\"", "200 ---- \"GET /dln HTTP/1.1\""],
        "{ours:?}"
    );
    if haproxy_available() {
        assert_eq!(ours, logged_with_dontlognull(Engine::Haproxy, &srv));
    }
}
