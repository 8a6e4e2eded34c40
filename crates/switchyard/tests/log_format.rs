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
