//! The statistics page: HAProxy's CSV columns and rows, the HTML page,
//! `stats auth` with HAProxy's 401.

mod support;

use std::time::Duration;
use support::*;

fn start(srv: &Backend, extra: &str) -> (Proxy, u16) {
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    stats enable\n    stats uri /stats\n{extra}    default_backend be\n\
         backend be\n    balance leastconn\n    server s1 {} check inter 200ms\n    server s2 127.0.0.1:1 backup\n",
        srv.addr()
    );
    (Proxy::start(&cfg, port), port)
}

fn column(header: &str, row: &str, name: &str) -> String {
    let cols: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
    let i = cols.iter().position(|c| *c == name).unwrap();
    row.split(',').nth(i).unwrap_or("").to_owned()
}

#[test]
fn csv_has_haproxy_columns_rows_and_counts() {
    let srv = Backend::start("s");
    let (_p, port) = start(&srv, "");
    for _ in 0..3 {
        assert_eq!(get(port, "/app", "").status, 200);
    }
    let r = get(port, "/stats;csv", "");
    assert_eq!(
        (r.status, r.header("content-type").as_deref()),
        (200, Some("text/plain"))
    );
    let text = r.text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,"));
    let ncols = lines[0].split(',').count();
    assert!(
        lines[1..].iter().all(|l| l.split(',').count() == ncols),
        "every row has every column"
    );
    let find = |sv: &str| {
        *lines
            .iter()
            .find(|l| l.split(',').nth(1) == Some(sv))
            .unwrap()
    };
    let (fe, s1, s2, be) = (find("FRONTEND"), find("s1"), find("s2"), find("BACKEND"));
    assert_eq!(column(lines[0], fe, "pxname"), "fe");
    assert_eq!(column(lines[0], fe, "status"), "OPEN");
    assert_eq!(column(lines[0], s1, "status"), "UP");
    assert_eq!(column(lines[0], s1, "hrsp_2xx"), "3");
    assert_eq!(column(lines[0], s1, "type"), "2");
    assert_eq!(
        (column(lines[0], s2, "status"), column(lines[0], s2, "bck")),
        ("no check".into(), "1".into())
    );
    assert_eq!(
        column(lines[0], be, "weight"),
        "1",
        "backups weigh only when no active server is up"
    );
    assert_eq!(column(lines[0], be, "req_tot"), "3");
    assert_eq!(column(lines[0], be, "type"), "1");
}

#[test]
fn html_page_and_auth() {
    let srv = Backend::start("s");
    let (_p, port) = start(&srv, "    stats auth admin:secret\n    stats refresh 10s\n");
    let denied = get(port, "/stats", "");
    assert_eq!(denied.status, 401);
    assert_eq!(
        denied.header("www-authenticate").as_deref(),
        Some("Basic realm=\"HAProxy Statistics\"")
    );
    assert_eq!(denied.header("content-length").as_deref(), Some("112"));
    let wrong = get(port, "/stats", "Authorization: Basic YWRtaW46d3Jvbmc=\r\n");
    assert_eq!(wrong.status, 401);
    let ok = get(port, "/stats", "Authorization: Basic YWRtaW46c2VjcmV0\r\n");
    assert_eq!(
        (ok.status, ok.header("refresh").as_deref()),
        (200, Some("10"))
    );
    assert!(ok.text().contains("<td>s1</td>"), "{}", ok.text());
    assert_eq!(srv.count(), 0, "stats requests never reach a server");
}

/// `show stat` on the runtime socket answers the page's CSV (plus the CLI's
/// closing empty line), and a server put in maintenance there shows `MAINT`
/// on the page at once.
#[test]
fn runtime_socket_show_stat_matches_the_page() {
    let srv = Backend::start("s");
    let port = free_port();
    let sock = std::env::temp_dir().join(format!("sy-stats-{}.sock", std::process::id()));
    let cfg = format!(
        "global\n    stats socket {} level admin\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    stats enable\n    stats uri /stats\n    default_backend be\n\
         backend be\n    server s1 {}\n",
        sock.display(),
        srv.addr()
    );
    let _p = Proxy::start(&cfg, port);
    let cli = |cmd: &str| {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        s.write_all(format!("{cmd}\n").as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    assert_eq!(get(port, "/app", "").status, 200);
    // Stats requests change the frontend's counters: compare the other rows
    // of the page with those of the socket answers around it.
    let mut same = false;
    for _ in 0..20 {
        let before = cli("show stat");
        let page = get(port, "/stats;csv", "").text();
        let after = cli("show stat");
        let rows = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| !l.starts_with("fe,"))
                .map(str::to_owned)
                .collect()
        };
        assert!(before.ends_with("\n\n"));
        if rows(&page) == rows(before.trim_end_matches('\n')) && rows(&after) == rows(&before) {
            same = true;
            break;
        }
    }
    assert!(same, "show stat and ;csv give the same backend/server rows");
    assert_eq!(cli("set server be/s1 state maint"), "\n");
    let page = get(port, "/stats;csv", "").text();
    let s1 = page.lines().find(|l| l.starts_with("be,s1,")).unwrap();
    assert_eq!(column(page.lines().next().unwrap(), s1, "status"), "MAINT");
    let _ = std::fs::remove_file(&sock);
}

#[test]
fn scur_counts_requests_in_flight_on_server_and_backend_rows() {
    // A `/slow` request holds s1 until the gate opens (bounded). HAProxy 2.6 shows it
    // as `scur` 1 on the server and backend rows while it waits.
    let gate = std::sync::Arc::new(Gate::default());
    let g = gate.clone();
    let srv = Backend::with("s", move |s| {
        if s.path() == "/slow" {
            g.wait(Duration::from_secs(20));
        }
        Reply::Ok
    });
    let (_p, port) = start(&srv, "");
    let held = std::thread::spawn(move || get(port, "/slow", "").status);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while gate.waiting.load(std::sync::atomic::Ordering::SeqCst) == 0
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let text = get(port, "/stats;csv", "").text();
    gate.set(true);
    assert_eq!(held.join().unwrap(), 200);
    let lines: Vec<&str> = text.lines().collect();
    let find = |sv: &str| {
        *lines
            .iter()
            .find(|l| l.split(',').nth(1) == Some(sv))
            .unwrap()
    };
    assert_eq!(column(lines[0], find("s1"), "scur"), "1");
    assert_eq!(column(lines[0], find("s2"), "scur"), "0");
    assert_eq!(column(lines[0], find("BACKEND"), "scur"), "1");
}
