//! `http-request use-service prometheus-exporter`: HAProxy's metric names,
//! values from the proxy's real counters, a well-formed 0.0.4 exposition.

mod support;

use std::collections::{HashMap, HashSet};

use support::*;

/// Parses the text format strictly: every sample belongs to a family
/// announced by `# HELP` then `# TYPE` (counter or gauge), names and labels
/// are well-formed, values are numbers or NaN, no sample appears twice.
/// Returns `name{labels}` → value.
fn parse_exposition(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    let (mut helped, mut typed) = (HashSet::new(), HashMap::new());
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    assert!(text.ends_with('\n'), "exposition ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(name_ok(name), "{line}");
            assert!(helped.insert(name.to_string()), "HELP twice: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(helped.contains(name), "TYPE before HELP: {line}");
            assert!(matches!(kind, "counter" | "gauge"), "{line}");
            assert!(typed.insert(name.to_string(), kind.to_string()).is_none());
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let (series, value) = line.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap();
        assert!(typed.contains_key(name), "sample without TYPE: {line}");
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            let inner = labels
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .unwrap_or_else(|| panic!("labels: {line}"));
            for pair in inner.split("\",") {
                let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
                assert!(name_ok(k), "{line}");
                assert!(!v.trim_end_matches('"').contains('"'), "{line}");
            }
        }
        let v: f64 = if value == "NaN" {
            f64::NAN
        } else {
            value.parse().unwrap_or_else(|_| panic!("value: {line}"))
        };
        if typed[name] == "counter" {
            assert!(v >= 0.0, "{line}");
        }
        assert!(
            samples.insert(series.to_string(), v).is_none(),
            "duplicate {series}"
        );
    }
    samples
}

#[test]
fn exporter_reports_real_counters_with_haproxy_names() {
    let srv = Backend::start("s1");
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    http-request use-service prometheus-exporter if {{ path /metrics }}\n\
         \x20   use_backend dead if {{ path_beg /dead }}\n    default_backend be\n\
         backend be\n    server s1 {}\n\
         backend dead\n    retries 0\n    server d1 127.0.0.1:1 maxconn 7\n",
        srv.addr()
    );
    let _p = Proxy::start(&cfg, port);
    for _ in 0..3 {
        assert_eq!(get(port, "/app", "").status, 200);
    }
    assert_eq!(get(port, "/dead", "").status, 503);
    // The frontend counts a response once it is sent, so the client may see
    // it a moment before the counter does: scrape until the last one shows.
    let mut scrapes = 0;
    let m = loop {
        scrapes += 1;
        let r = get(port, "/metrics", "");
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("text/plain; version=0.0.4")
        );
        let m = parse_exposition(&r.text());
        let done = m.get("haproxy_frontend_http_responses_total{proxy=\"fe\",code=\"2xx\"}")
            == Some(&(scrapes as f64 + 2.0))
            && m.get("haproxy_frontend_http_responses_total{proxy=\"fe\",code=\"5xx\"}")
                == Some(&1.0);
        if done || scrapes == 50 {
            break m;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(srv.count(), 3, "scrapes never reach a server");
    let v = |k: &str| *m.get(k).unwrap_or_else(|| panic!("missing {k}"));
    let n = f64::from(scrapes);
    // 3 + 1 + the scrapes, each counted when it arrived (as HAProxy does);
    // the earlier scrapes' 2xx answers are counted too, the current one not yet.
    assert_eq!(
        v("haproxy_frontend_http_requests_total{proxy=\"fe\"}"),
        4.0 + n
    );
    // Connections: one per request plus the harness's start-up probe.
    assert_eq!(v("haproxy_frontend_sessions_total{proxy=\"fe\"}"), 5.0 + n);
    assert_eq!(
        v("haproxy_frontend_http_responses_total{proxy=\"fe\",code=\"2xx\"}"),
        2.0 + n
    );
    assert_eq!(
        v("haproxy_frontend_http_responses_total{proxy=\"fe\",code=\"5xx\"}"),
        1.0
    );
    assert_eq!(
        v("haproxy_backend_http_responses_total{proxy=\"be\",code=\"2xx\"}"),
        3.0
    );
    assert_eq!(v("haproxy_backend_http_requests_total{proxy=\"be\"}"), 3.0);
    assert_eq!(
        v("haproxy_backend_http_requests_total{proxy=\"dead\"}"),
        1.0
    );
    assert_eq!(v("haproxy_backend_active_servers{proxy=\"be\"}"), 1.0);
    assert_eq!(
        v("haproxy_backend_connection_errors_total{proxy=\"dead\"}"),
        1.0
    );
    assert_eq!(
        v("haproxy_server_sessions_total{proxy=\"be\",server=\"s1\"}"),
        3.0
    );
    assert_eq!(
        v("haproxy_server_http_responses_total{proxy=\"be\",server=\"s1\",code=\"2xx\"}"),
        3.0
    );
    assert_eq!(
        v("haproxy_server_current_sessions{proxy=\"be\",server=\"s1\"}"),
        0.0
    );
    assert_eq!(
        v("haproxy_server_limit_sessions{proxy=\"dead\",server=\"d1\"}"),
        7.0
    );
    assert!(v("haproxy_server_limit_sessions{proxy=\"be\",server=\"s1\"}").is_nan());
    for (state, on) in [
        ("DOWN", 0.0),
        ("UP", 1.0),
        ("MAINT", 0.0),
        ("DRAIN", 0.0),
        ("NOLB", 0.0),
    ] {
        assert_eq!(
            v(&format!(
                "haproxy_server_status{{proxy=\"be\",server=\"s1\",state=\"{state}\"}}"
            )),
            on,
            "{state}"
        );
    }
    assert!(v("haproxy_server_bytes_out_total{proxy=\"be\",server=\"s1\"}") > 0.0);
    // This scrape's connection, plus earlier ones whose close the proxy may
    // not have processed yet.
    let conns = v("haproxy_process_current_connections");
    assert!((1.0..=n + 5.0).contains(&conns), "{conns}");
}

#[test]
fn exporter_condition_is_honoured_and_other_services_refused() {
    let srv = Backend::start("s1");
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    http-request use-service prometheus-exporter if {{ path /metrics }} {{ src 10.9.9.9 }}\n\
         \x20   default_backend be\nbackend be\n    server s1 {}\n",
        srv.addr()
    );
    let _p = Proxy::start(&cfg, port);
    let r = get(port, "/metrics", "");
    assert_eq!(r.status, 200);
    assert_eq!(srv.count(), 1, "condition false (source): forwarded");
    let bad = std::env::temp_dir().join(format!("sy-metrics-bad-{}.cfg", std::process::id()));
    std::fs::write(
        &bad,
        "frontend fe\n    mode http\n    bind 127.0.0.1:1\n    http-request use-service lua.hello\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["-c", "-f"])
        .arg(&bad)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&bad);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'use-service lua.hello' is not supported by switchyard (only 'prometheus-exporter' is)."),
        "{err}"
    );
}

/// Every family, HELP text, TYPE and series (name and labels) we export is
/// one HAProxy 2.6 exports for the same configuration, so dashboards built
/// on HAProxy's exporter find them (only `build_info`'s version differs).
#[test]
fn families_and_series_are_haproxys() {
    if !haproxy_available() {
        return;
    }
    let srv = Backend::start("s1");
    let scrape = |engine: Engine| -> Vec<String> {
        let port = free_port();
        let cfg = format!(
            "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
             frontend fe\n    bind 127.0.0.1:{port}\n    http-request use-service prometheus-exporter if {{ path /metrics }}\n\
             \x20   default_backend be\nbackend be\n    server s1 {} maxconn 5\n    server s2 127.0.0.1:1 backup\n",
            srv.addr()
        );
        let _p = Proxy::start_engine(engine, &cfg, port);
        let r = get(port, "/metrics", "");
        assert_eq!(r.status, 200, "{engine:?}");
        r.text()
            .lines()
            .filter(|l| !l.contains("build_info{"))
            .map(|l| match l.starts_with('#') {
                true => l.to_string(),
                false => l.rsplit_once(' ').unwrap().0.to_string(),
            })
            .collect()
    };
    let theirs: HashSet<String> = scrape(Engine::Haproxy).into_iter().collect();
    let ours = scrape(Engine::Switchyard);
    assert!(ours.len() > 100, "{ours:?}");
    let missing: Vec<&String> = ours.iter().filter(|l| !theirs.contains(*l)).collect();
    assert!(
        missing.is_empty(),
        "not in HAProxy's exposition: {missing:#?}"
    );
}
