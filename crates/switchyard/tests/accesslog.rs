//! The access log (`option httplog`): one line per request, HAProxy's format,
//! to stdout and to a UDP syslog target with the rfc3164 header.

mod support;

use std::net::UdpSocket;
use std::time::Duration;

use support::*;

#[test]
fn httplog_lines_on_stdout_and_syslog() {
    let srv = Backend::start("s");
    let syslog = UdpSocket::bind("127.0.0.1:0").unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let port = free_port();
    let cfg = format!(
        "global\n    log stdout format raw local0\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    option httplog\n    log global\n    log {} local1\n    default_backend be\n\
         backend be\n    server s1 {}\n",
        syslog.local_addr().unwrap(),
        srv.addr()
    );
    let p = Proxy::start(&cfg, port);
    let mut c = Client::connect(port);
    assert_eq!(c.get("/logged?x=1", "").status, 200);
    // The harness's start-up probe (a connection closed without a request) is
    // logged first, `CR--` as HAProxy does without `option dontlognull`.
    let mut buf = [0u8; 2048];
    let mut line = String::new();
    for _ in 0..3 {
        let n = syslog.recv(&mut buf).expect("syslog line");
        line = String::from_utf8_lossy(&buf[..n]).into_owned();
        if line.contains("/logged") {
            break;
        }
        assert!(line.contains(" 400 0 - - CR-- "), "{line}");
    }
    let re = regex::Regex::new(
        r#"^<142>\w{3} [ \d]\d \d\d:\d\d:\d\d haproxy\[\d+\]: 127\.0\.0\.1:\d+ \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] fe be/s1 \d+/\d+/\d+/\d+/\d+ 200 \d+ - - ---- \d+/\d+/\d+/\d+/0 0/0 "GET /logged\?x=1 HTTP/1\.1"$"#,
    )
    .unwrap();
    assert!(re.is_match(&line), "{line}");
    // The same line, raw, on stdout (global target).
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let logged = || -> Vec<String> {
        p.stdout_lines()
            .into_iter()
            .filter(|l| l.contains("/logged"))
            .collect()
    };
    while logged().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stdout = logged();
    assert_eq!(stdout.len(), 1, "{stdout:?}");
    assert!(line.ends_with(&stdout[0]), "{stdout:?} vs {line}");
}

#[test]
fn no_httplog_no_lines() {
    let srv = Backend::start("s");
    let port = free_port();
    let cfg = format!(
        "global\n    log stdout format raw local0\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    log global\n    default_backend be\n\
         backend be\n    server s1 {}\n",
        srv.addr()
    );
    let p = Proxy::start(&cfg, port);
    assert_eq!(get(port, "/", "").status, 200);
    std::thread::sleep(Duration::from_millis(200));
    assert!(p.stdout_lines().is_empty(), "{:?}", p.stdout_lines());
    drop(p);
}

#[test]
fn monitor_uri_answers_locally_and_is_not_logged() {
    let srv = Backend::start("s");
    let port = free_port();
    let cfg = format!(
        "global\n    log stdout format raw local0\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    option httplog\n    log global\n    monitor-uri /health\n    default_backend be\n\
         backend be\n    server s1 {}\n",
        srv.addr()
    );
    let p = Proxy::start(&cfg, port);
    let r = get(port, "/health", "");
    assert_eq!(
        format!("{}{}", r.raw_head, r.text()),
        "HTTP/1.1 200 OK\r\ncontent-length: 58\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n\r\n<html><body><h1>200 OK</h1>\nService ready.\n</body></html>\n"
    );
    // Exact match only: anything else is proxied.
    assert_eq!(get(port, "/health?x=1", "").text(), "s");
    std::thread::sleep(Duration::from_millis(200));
    let lines = p.stdout_lines();
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("\"GET /health HTTP/1.1\"")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"GET /health?x=1 HTTP/1.1\"")),
        "{lines:?}"
    );
    assert_eq!(srv.count(), 1);
}
