//! Health checks with default timings (inter 2s, rise 2, fall 3): start-up
//! semantics, DOWN/UP transitions in HAProxy's words, HTTP checks.

mod support;

use std::time::{Duration, Instant};

use support::*;

fn cfg(port: u16, be_extra: &str, servers: &str) -> String {
    format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n{be_extra}{servers}"
    )
}

#[test]
fn dead_server_goes_down_at_first_check_and_comes_back_after_rise() {
    let a = Backend::start("a");
    let b_port = free_port();
    let port = free_port();
    let servers = format!(
        "    server a {} check\n    server b 127.0.0.1:{b_port} check\n",
        a.addr()
    );
    let p = Proxy::start(&cfg(port, "", &servers), port);
    // First failed check marks it DOWN, within the first inter (2 s).
    let took = p
        .wait_stderr("Server be/b is DOWN", Duration::from_secs(4))
        .expect("b marked DOWN");
    assert!(took < Duration::from_millis(3000), "{took:?}");
    let line = p
        .stderr_lines()
        .into_iter()
        .find(|l| l.contains("Server be/b is DOWN"))
        .unwrap();
    assert!(line.starts_with("[WARNING]  ("), "{line}");
    assert!(
        line.contains("is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: ")
            && line.ends_with("ms. 1 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue."),
        "{line}"
    );
    let bodies: Vec<String> = (0..4).map(|_| get(port, "/", "").text()).collect();
    assert_eq!(bodies, ["a", "a", "a", "a"]);
    // Bring b up: two passing checks (downinter = inter = 2 s) bring it back.
    let b = Backend::on_port("b", b_port);
    let t = Instant::now();
    p.wait_stderr("Server be/b is UP", Duration::from_secs(7))
        .expect("b back UP");
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "needs rise=2 passes: {:?}",
        t.elapsed()
    );
    let line = p
        .stderr_lines()
        .into_iter()
        .find(|l| l.contains("Server be/b is UP"))
        .unwrap();
    assert!(
        line.ends_with(
            "2 active and 0 backup servers online. 0 sessions requeued, 0 total in queue."
        ),
        "{line}"
    );
    let bodies: Vec<String> = (0..4).map(|_| get(port, "/", "").text()).collect();
    assert_eq!(tally(&bodies).len(), 2, "both serve again: {bodies:?}");
    drop(b);
}

#[test]
fn last_server_down_raises_the_no_server_alert_and_503() {
    let dead = free_port();
    let port = free_port();
    let servers = format!("    server only 127.0.0.1:{dead} check inter 200ms\n");
    let p = Proxy::start(&cfg(port, "", &servers), port);
    p.wait_stderr(
        "backend 'be' has no server available!",
        Duration::from_secs(3),
    )
    .expect("alert");
    let alert = p
        .stderr_lines()
        .into_iter()
        .find(|l| l.contains("no server available"))
        .unwrap();
    assert!(alert.starts_with("[ALERT]    ("), "{alert}");
    let t = Instant::now();
    assert_eq!(get(port, "/", "").status, 503);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "all DOWN: 503 immediately"
    );
}

#[test]
fn http_check_uses_status_and_expect() {
    let sick = Backend::with("sick", |s| {
        if s.path() == "/health" {
            Reply::Raw(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n".to_vec())
        } else {
            Reply::Ok
        }
    });
    let well = Backend::start("well");
    let port = free_port();
    let servers = format!(
        "    option httpchk GET /health\n    server sick {} check inter 300ms\n    server well {} check inter 300ms\n",
        sick.addr(),
        well.addr()
    );
    let p = Proxy::start(&cfg(port, "", &servers), port);
    p.wait_stderr("Server be/sick is DOWN", Duration::from_secs(3))
        .expect("sick DOWN");
    let line = p
        .stderr_lines()
        .into_iter()
        .find(|l| l.contains("be/sick is DOWN"))
        .unwrap();
    assert!(
        line.contains("reason: Layer7 wrong status, code: 503, info: \"Service Unavailable\""),
        "{line}"
    );
    let check = sick
        .requests()
        .into_iter()
        .find(|s| s.path() == "/health")
        .unwrap();
    assert_eq!(check.request_line, "GET /health HTTP/1.0");
    assert!(check.headers.is_empty(), "HTTP/1.0 checks send no header");
    assert!(p
        .stderr_lines()
        .iter()
        .all(|l| !l.contains("be/well is DOWN")));
}

#[test]
fn http_check_expect_string() {
    let srv = Backend::with("s", |_| {
        Reply::Raw(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nzombie".to_vec())
    });
    let port = free_port();
    let servers = format!(
        "    option httpchk GET /\n    http-check expect string alive\n    server s {} check inter 300ms\n",
        srv.addr()
    );
    let p = Proxy::start(&cfg(port, "", &servers), port);
    p.wait_stderr("Server be/s is DOWN", Duration::from_secs(3))
        .expect("expect string fails");
}

#[test]
fn downinter_paces_checks_of_a_down_server() {
    let sick = Backend::with("sick", |_| {
        Reply::Raw(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n".to_vec())
    });
    let port = free_port();
    let servers = format!(
        "    option httpchk GET /health\n    server sick {} check inter 100ms fastinter 100ms downinter 1s\n",
        sick.addr()
    );
    let p = Proxy::start(&cfg(port, "", &servers), port);
    p.wait_stderr("Server be/sick is DOWN", Duration::from_secs(3))
        .expect("DOWN");
    let before = sick.count();
    std::thread::sleep(Duration::from_millis(2500));
    let during = sick.count() - before;
    // Fully DOWN: one check per second (inter would give ~25).
    assert!((2..=4).contains(&during), "{during} checks in 2.5 s");
}
